package edge_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/edge"
	"github.com/mkgraph/mkgraph/internal/edge/httperr"
)

// testMux stands for the server's routes: /graphql, GraphiQL on /, errors.
func testMux() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/graphql", edge.CSRF(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"data":{"__typename":"Query"}}`)
	})))
	mux.Handle("GET /{$}", edge.GraphiQL(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!DOCTYPE html><title>GraphiQL</title>")
	})))
	mux.HandleFunc("GET /boom", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "internal error", http.StatusInternalServerError)
	})
	mux.HandleFunc("GET /limited", func(w http.ResponseWriter, r *http.Request) {
		httperr.Write(w, r, http.StatusTooManyRequests, &apierr.Error{Code: apierr.CodeCallerRateLimited, Message: "slow down", RetryAfter: 3e9, HasRetryAfter: true})
	})
	return edge.SecurityHeaders(mux)
}

func TestSecurityHeaders(t *testing.T) {
	common := map[string]string{
		"X-Content-Type-Options":       "nosniff",
		"Referrer-Policy":              "no-referrer",
		"X-Frame-Options":              "DENY",
		"Cross-Origin-Opener-Policy":   "same-origin",
		"Cross-Origin-Resource-Policy": "same-origin",
	}
	tests := []struct {
		name       string
		method     string
		target     string
		header     http.Header
		wantStatus int
		wantCSP    string
	}{
		{"graphql POST", "POST", "http://mkgraph.test/graphql", http.Header{"Content-Type": {"application/json"}}, 200, edge.APICSP},
		{"graphql over TLS", "POST", "https://mkgraph.test/graphql", http.Header{"Content-Type": {"application/json"}}, 200, edge.APICSP},
		{"CSRF refusal", "POST", "http://mkgraph.test/graphql", http.Header{"Content-Type": {"text/plain"}}, 400, edge.APICSP},
		{"method not allowed", "DELETE", "http://mkgraph.test/boom", nil, 405, edge.APICSP},
		{"not found", "GET", "http://mkgraph.test/nope", nil, 404, edge.APICSP},
		{"not found over TLS", "GET", "https://mkgraph.test/nope", nil, 404, edge.APICSP},
		{"server error", "GET", "http://mkgraph.test/boom", nil, 500, edge.APICSP},
		{"rate limited", "GET", "http://mkgraph.test/limited", nil, 429, edge.APICSP},
		{"GraphiQL", "GET", "http://mkgraph.test/", nil, 200, edge.GraphiQLCSP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, strings.NewReader(`{"query":"{__typename}"}`))
			for k, v := range tt.header {
				r.Header[k] = v
			}
			w := httptest.NewRecorder()
			testMux().ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			// Result has the headers as written with the status, not later changes.
			h := w.Result().Header
			for k, want := range common {
				if got := h.Values(k); len(got) != 1 || got[0] != want {
					t.Errorf("%s = %q, want [%q]", k, got, want)
				}
			}
			if got := h.Values("Content-Security-Policy"); len(got) != 1 || got[0] != tt.wantCSP {
				t.Errorf("Content-Security-Policy = %q, want [%q]", got, tt.wantCSP)
			}
			pp := h.Get("Permissions-Policy")
			for _, f := range []string{"camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"} {
				if !strings.Contains(pp, f) {
					t.Errorf("Permissions-Policy = %q, want %s in it", pp, f)
				}
			}
			hsts := h.Get("Strict-Transport-Security")
			if tls := strings.HasPrefix(tt.target, "https:"); tls != (hsts != "") {
				t.Errorf("Strict-Transport-Security = %q over TLS=%v: want it exactly over TLS", hsts, tls)
			}
			if hsts != "" && !strings.HasPrefix(hsts, "max-age=31536000") {
				t.Errorf("Strict-Transport-Security = %q, want max-age=31536000", hsts)
			}
		})
	}
}

// TestSecurityHeadersOverHTTP checks the headers on the wire, through a real
// server and client, for an answer the mux itself writes.
func TestSecurityHeadersOverHTTP(t *testing.T) {
	srv := httptest.NewServer(testMux())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status = %d, want 404", resp.StatusCode)
	}
	for k, want := range map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": edge.APICSP,
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "" {
		t.Errorf("Strict-Transport-Security = %q over plain HTTP, want none", got)
	}
}
