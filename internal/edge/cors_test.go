package edge_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/internal/edge"
)

// MustCORS returns the CORS middleware for origins or fails the test.
func MustCORS(tb testing.TB, origins ...string) func(http.Handler) http.Handler {
	tb.Helper()
	mw, err := edge.CORS(origins)
	if err != nil {
		tb.Fatalf("CORS(%q): %v", origins, err)
	}
	return mw
}

var corsHeaders = []string{
	"Access-Control-Allow-Origin",
	"Access-Control-Allow-Credentials",
	"Access-Control-Allow-Methods",
	"Access-Control-Allow-Headers",
	"Access-Control-Expose-Headers",
	"Access-Control-Max-Age",
}

func TestCORS(t *testing.T) {
	allowlist := []string{"https://app.example.com", "http://localhost:3000"}
	tests := []struct {
		name      string
		origins   []string
		method    string
		origin    string
		reqMethod string // Access-Control-Request-Method: makes a preflight
		reqHdrs   string // Access-Control-Request-Headers: lowercase and sorted, as the fetch standard sends them
		wantAllow bool   // CORS headers for origin expected
		wantNext  bool   // the request reaches the next handler
	}{
		{name: "listed origin, POST", origins: allowlist, method: "POST", origin: "https://app.example.com", wantAllow: true, wantNext: true},
		{name: "second listed origin, GET", origins: allowlist, method: "GET", origin: "http://localhost:3000", wantAllow: true, wantNext: true},
		{name: "unlisted origin, POST", origins: allowlist, method: "POST", origin: "https://evil.example", wantNext: true},
		{name: "subdomain of a listed origin", origins: allowlist, method: "POST", origin: "https://evil.app.example.com", wantNext: true},
		{name: "listed host as a suffix", origins: allowlist, method: "POST", origin: "https://app.example.com.evil.example", wantNext: true},
		{name: "listed host, other scheme", origins: allowlist, method: "POST", origin: "http://app.example.com", wantNext: true},
		{name: "listed host, other port", origins: allowlist, method: "POST", origin: "http://localhost:3001", wantNext: true},
		{name: "null origin", origins: allowlist, method: "POST", origin: "null", wantNext: true},
		{name: "no origin (same-origin or not a browser)", origins: allowlist, method: "POST", wantNext: true},
		{name: "preflight, listed origin", origins: allowlist, method: "OPTIONS", origin: "https://app.example.com",
			reqMethod: "POST", reqHdrs: "apollo-require-preflight,authorization,content-type", wantAllow: true},
		{name: "preflight, every allowed header", origins: allowlist, method: "OPTIONS", origin: "https://app.example.com",
			reqMethod: "POST", reqHdrs: "accept,apollo-require-preflight,authorization,content-type,x-api-key,x-apollo-operation-name,x-request-id,x-requested-with", wantAllow: true},
		{name: "preflight, unlisted origin", origins: allowlist, method: "OPTIONS", origin: "https://evil.example",
			reqMethod: "POST", reqHdrs: "content-type"},
		{name: "preflight, listed origin, method not allowed", origins: allowlist, method: "OPTIONS", origin: "https://app.example.com",
			reqMethod: "DELETE"},
		{name: "preflight, listed origin, header not allowed", origins: allowlist, method: "OPTIONS", origin: "https://app.example.com",
			reqMethod: "POST", reqHdrs: "content-type,x-evil"},
		{name: "empty list, cross-origin POST", origins: nil, method: "POST", origin: "https://app.example.com", wantNext: true},
		{name: "empty list, preflight passes on", origins: []string{"", "  "}, method: "OPTIONS", origin: "https://app.example.com",
			reqMethod: "POST", reqHdrs: "content-type", wantNext: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/graphql", nil)
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if tt.reqMethod != "" {
				r.Header.Set("Access-Control-Request-Method", tt.reqMethod)
			}
			if tt.reqHdrs != "" {
				r.Header.Set("Access-Control-Request-Headers", tt.reqHdrs)
			}
			var called bool
			w := httptest.NewRecorder()
			MustCORS(t, tt.origins...)(okHandler(&called)).ServeHTTP(w, r)
			if called != tt.wantNext {
				t.Errorf("next called = %v, want %v", called, tt.wantNext)
			}
			h := w.Header()
			if !tt.wantAllow {
				for _, k := range corsHeaders {
					if v := h.Values(k); len(v) > 0 {
						t.Errorf("%s = %q, want none", k, v)
					}
				}
				return
			}
			if got := h.Get("Access-Control-Allow-Origin"); got != tt.origin {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tt.origin)
			}
			if got := h.Get("Access-Control-Allow-Credentials"); got != "true" {
				t.Errorf("Access-Control-Allow-Credentials = %q, want true", got)
			}
			if !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
				t.Errorf("Vary = %q, want Origin in it (caches must key on it)", h.Values("Vary"))
			}
			if tt.reqMethod == "" {
				if got := h.Get("Access-Control-Expose-Headers"); got != "X-Request-Id, Retry-After" {
					t.Errorf("Access-Control-Expose-Headers = %q, want X-Request-Id, Retry-After", got)
				}
				return
			}
			if w.Code != http.StatusNoContent {
				t.Errorf("preflight status = %d, want 204", w.Code)
			}
			if got := h.Get("Access-Control-Allow-Methods"); got != tt.reqMethod {
				t.Errorf("Access-Control-Allow-Methods = %q, want %q", got, tt.reqMethod)
			}
			if got := h.Get("Access-Control-Allow-Headers"); got != tt.reqHdrs {
				t.Errorf("Access-Control-Allow-Headers = %q, want %q", got, tt.reqHdrs)
			}
			if got := h.Get("Access-Control-Max-Age"); got != "600" {
				t.Errorf("Access-Control-Max-Age = %q, want 600", got)
			}
		})
	}
}

func TestCORSConfig(t *testing.T) {
	good := [][]string{
		nil,
		{},
		{""},
		{"https://app.example.com"},
		{" https://app.example.com ", "", "http://localhost:3000"},
		{"https://app.example.com:8443"},
		{"http://127.0.0.1:8080"},
		{"http://[::1]:3000"},
		{"https://xn--bcher-kva.example"},
	}
	for _, origins := range good {
		if _, err := edge.CORS(origins); err != nil {
			t.Errorf("CORS(%q): %v, want nil", origins, err)
		}
	}
	bad := []string{
		"*",
		"null",
		"https://*.example.com",
		"app.example.com",
		"//app.example.com",
		"https://app.example.com/",
		"https://app.example.com/graphql",
		"https://app.example.com?x=1",
		"https://app.example.com?",
		"https://app.example.com#top",
		"https://app.example.com#",
		"https://user:pw@app.example.com",
		"ftp://app.example.com",
		"file:///etc/passwd",
		"https://",
		"https://app.example.com:443",
		"http://app.example.com:80",
		"https://app.example.com:",
		"https://app.example.com:0",
		"https://app.example.com:99999",
		"https://app.example.com:08443",
		"https://App.Example.com",
		"HTTPS://app.example.com",
		"https://bücher.example",
		"https://app..example.com",
		"https://-app.example.com",
		"https://app_x.example.com",
		"https://app example.com",
		"https://[::g]:3000",
	}
	for _, o := range bad {
		_, err := edge.CORS([]string{"https://ok.example", o})
		if err == nil {
			t.Errorf("CORS(%q): nil error, want one", o)
			continue
		}
		if !strings.Contains(err.Error(), "MKGRAPH_CORS_ORIGINS") {
			t.Errorf("CORS(%q): %v, want it to name MKGRAPH_CORS_ORIGINS", o, err)
		}
	}
	// Every bad entry is reported at once.
	_, err := edge.CORS([]string{"*", "https://ok.example", "null"})
	if err == nil || strings.Count(err.Error(), "MKGRAPH_CORS_ORIGINS") != 2 {
		t.Errorf("CORS with two bad entries: %v, want both named", err)
	}
}
