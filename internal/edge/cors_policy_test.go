package edge_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/edge"
)

// preflight sends a CORS preflight for a POST with the request headers hdrs
// (lowercase, comma-separated, as the fetch standard sends them) through mw.
func preflight(t *testing.T, mw func(http.Handler) http.Handler, origin, hdrs string) (*httptest.ResponseRecorder, bool) {
	t.Helper()
	r := httptest.NewRequest(http.MethodOptions, "/graphql", nil)
	r.Header.Set("Origin", origin)
	r.Header.Set("Access-Control-Request-Method", http.MethodPost)
	if hdrs != "" {
		r.Header.Set("Access-Control-Request-Headers", hdrs)
	}
	var called bool
	w := httptest.NewRecorder()
	mw(okHandler(&called)).ServeHTTP(w, r)
	return w, called
}

func mustPolicy(t *testing.T, cfg edge.CORSConfig) *edge.CORSPolicy {
	t.Helper()
	p, err := edge.NewCORS(cfg)
	if err != nil {
		t.Fatalf("NewCORS(%+v): %v", cfg, err)
	}
	return p
}

// The headers Apollo Client and OpenTelemetry's browser SDKs add are allowed
// by default, one by one and all together.
func TestCORSDefaultHeaders(t *testing.T) {
	browserHeaders := []string{
		"apollographql-client-name", "apollographql-client-version",
		"traceparent", "tracestate", "baggage",
		"apollo-require-preflight", "x-apollo-operation-name", "x-requested-with",
		"authorization", "content-type", "accept", "x-api-key", "x-request-id",
	}
	p := mustPolicy(t, edge.CORSConfig{Origins: []string{"https://app.example.com"}})
	for _, h := range append(browserHeaders, "apollographql-client-name,apollographql-client-version,baggage,content-type,traceparent,tracestate") {
		t.Run(h, func(t *testing.T) {
			w, called := preflight(t, p.Middleware, "https://app.example.com", h)
			if called {
				t.Error("preflight reached the next handler")
			}
			if got := w.Header().Get("Access-Control-Allow-Origin"); got != "https://app.example.com" {
				t.Errorf("Access-Control-Allow-Origin = %q, want the origin", got)
			}
			if got := w.Header().Get("Access-Control-Allow-Headers"); got != h {
				t.Errorf("Access-Control-Allow-Headers = %q, want %q", got, h)
			}
			if got := w.Header().Get("Access-Control-Max-Age"); got != "600" {
				t.Errorf("Access-Control-Max-Age = %q, want 600", got)
			}
		})
	}
	// The same headers from an unlisted origin get nothing.
	w, _ := preflight(t, p.Middleware, "https://evil.example", "traceparent")
	if v := w.Header().Get("Access-Control-Allow-Origin"); v != "" {
		t.Errorf("unlisted origin: Access-Control-Allow-Origin = %q", v)
	}
}

func TestCORSConfiguredHeaders(t *testing.T) {
	p := mustPolicy(t, edge.CORSConfig{
		Origins: []string{"https://app.example.com"},
		Headers: []string{" Content-Type", "X-Custom-Thing ", "", "content-type", "AUTHORIZATION"},
		MaxAge:  90 * time.Second,
	})
	if got, want := strings.Join(p.Headers, ","), "content-type,x-custom-thing,authorization"; got != want {
		t.Errorf("Headers = %q, want %q (lowercase, deduplicated)", got, want)
	}
	w, _ := preflight(t, p.Middleware, "https://app.example.com", "authorization,x-custom-thing")
	if got := w.Header().Get("Access-Control-Allow-Headers"); got != "authorization,x-custom-thing" {
		t.Errorf("Access-Control-Allow-Headers = %q, want the request's", got)
	}
	if got := w.Header().Get("Access-Control-Max-Age"); got != "90" {
		t.Errorf("Access-Control-Max-Age = %q, want 90", got)
	}
	// A listed set replaces the default: traceparent is no longer allowed.
	w, _ = preflight(t, p.Middleware, "https://app.example.com", "traceparent")
	if v := w.Header().Get("Access-Control-Allow-Origin"); v != "" {
		t.Errorf("unlisted header: Access-Control-Allow-Origin = %q, want none", v)
	}

	// Not cached: Access-Control-Max-Age: 0.
	p = mustPolicy(t, edge.CORSConfig{Origins: []string{"https://app.example.com"}, MaxAge: -1})
	w, _ = preflight(t, p.Middleware, "https://app.example.com", "content-type")
	if got := w.Header().Get("Access-Control-Max-Age"); got != "0" {
		t.Errorf("MaxAge -1: Access-Control-Max-Age = %q, want 0", got)
	}
}

func TestCORSBadHeaders(t *testing.T) {
	for _, h := range []string{"*", "x y", "x:y", "x\ny", "é", "(x)", "a,b"} {
		_, err := edge.NewCORS(edge.CORSConfig{Origins: []string{"https://ok.example"}, Headers: []string{"content-type", h}})
		if err == nil || !strings.Contains(err.Error(), "MKGRAPH_CORS_HEADERS") {
			t.Errorf("Headers %q: %v, want an error naming MKGRAPH_CORS_HEADERS", h, err)
		}
	}
	if _, err := edge.NewCORS(edge.CORSConfig{MaxAge: 25 * time.Hour}); err == nil || !strings.Contains(err.Error(), "MKGRAPH_CORS_MAX_AGE") {
		t.Errorf("MaxAge 25h: %v, want an error naming MKGRAPH_CORS_MAX_AGE", err)
	}
}

func TestCORSLocalhostAnyPort(t *testing.T) {
	allowed := []string{"http://localhost:5173", "http://127.0.0.1:5173", "http://localhost:3000", "http://localhost", "http://127.0.0.1:65535", "http://localhost:1"}
	refused := []string{
		"https://localhost:5173", // not the dev-server form: listed explicitly if wanted
		"http://localhost.evil.example", "http://localhost:5173.evil.example", "http://localhost:5173@evil.example",
		"http://127.0.0.1.evil.example", "http://127.0.0.2:5173", "http://localhost:", "http://localhost:0",
		"http://localhost:05173", "http://localhost:65536", "http://localhost:80", "http://localhost:5173/",
		"http://LOCALHOST:5173", "http://[::1]:5173", "null", "http://evil.example",
	}
	on := mustPolicy(t, edge.CORSConfig{LocalhostAnyPort: true, Origins: []string{"https://app.example.com"}})
	off := mustPolicy(t, edge.CORSConfig{Origins: []string{"https://app.example.com"}})
	for _, o := range allowed {
		w, _ := preflight(t, on.Middleware, o, "content-type,traceparent")
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != o {
			t.Errorf("localhost rule on, %s: Access-Control-Allow-Origin = %q, want it", o, got)
		}
		if got := w.Header().Get("Access-Control-Allow-Credentials"); got != "true" {
			t.Errorf("localhost rule on, %s: Access-Control-Allow-Credentials = %q", o, got)
		}
		w, _ = preflight(t, off.Middleware, o, "content-type")
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("localhost rule off, %s: Access-Control-Allow-Origin = %q, want none", o, got)
		}
	}
	for _, o := range refused {
		w, _ := preflight(t, on.Middleware, o, "content-type")
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("localhost rule on, %q: Access-Control-Allow-Origin = %q, want none", o, got)
		}
	}
	// The listed origin still works beside the rule.
	w, _ := preflight(t, on.Middleware, "https://app.example.com", "content-type")
	if got := w.Header().Get("Access-Control-Allow-Origin"); got != "https://app.example.com" {
		t.Errorf("listed origin with the rule on: Access-Control-Allow-Origin = %q", got)
	}
	// With no origins listed, the rule alone turns CORS on.
	alone := mustPolicy(t, edge.CORSConfig{LocalhostAnyPort: true})
	w, called := preflight(t, alone.Middleware, "http://localhost:5173", "content-type")
	if called || w.Header().Get("Access-Control-Allow-Origin") != "http://localhost:5173" {
		t.Errorf("rule alone: next called %v, Access-Control-Allow-Origin = %q", called, w.Header().Get("Access-Control-Allow-Origin"))
	}
}
