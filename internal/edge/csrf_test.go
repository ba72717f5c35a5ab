package edge_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/edge"
)

// errorDoc is the GraphQL error document httperr writes.
type errorDoc struct {
	Data   any `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

func decodeErrorDoc(t *testing.T, body string) errorDoc {
	t.Helper()
	var doc errorDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("body %q is not JSON: %v", body, err)
	}
	if len(doc.Errors) != 1 {
		t.Fatalf("body %q: want exactly one error", body)
	}
	return doc
}

// okHandler answers 200 "ok" and records that it ran.
func okHandler(called *bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*called = true
		w.Write([]byte("ok"))
	})
}

func TestCSRFMatrix(t *testing.T) {
	methods := []struct {
		method string
		simple bool // a browser sends it cross-site without a preflight
	}{
		{http.MethodGet, true},
		{http.MethodHead, true},
		{http.MethodPost, true},
		{http.MethodOptions, false},
		{http.MethodPut, false},
		{http.MethodDelete, false},
	}
	contentTypes := []struct {
		ct     string // "-" means no Content-Type header at all
		simple bool   // a browser can send it cross-site without a preflight (or nothing)
	}{
		{"-", true},
		{"", true},
		{"text/plain", true},
		{"text/plain;charset=UTF-8", true},
		{"Text/Plain; charset=utf-8", true},
		{"  text/plain  ", true},
		{"text/plain; garbage", true},
		{"text/plain x", true},
		{"application/x-www-form-urlencoded", true},
		{"multipart/form-data; boundary=----abc", true},
		{"text/plain, application/json", true},
		{"application/json, text/plain", true},
		{"application/json", false},
		{"application/json; charset=utf-8", false},
		{"APPLICATION/JSON", false},
		{"application/graphql-response+json", false},
		{"application/graphql", false},
	}
	headers := []struct {
		name, value string
		proves      bool // the header lets a simple request through
	}{
		{"", "", false},
		{"X-Apollo-Operation-Name", "GetLink", true},
		{"Apollo-Require-Preflight", "true", true},
		{"X-Requested-With", "XMLHttpRequest", true},
		{"x-requested-with", "fetch", true},
		{"X-Requested-With", "", false},
		{"Apollo-Require-Preflight", "   ", false},
		{"X-Custom", "1", false},
	}
	for _, m := range methods {
		for _, ct := range contentTypes {
			for _, h := range headers {
				wantRefused := m.simple && ct.simple && !h.proves
				name := m.method + "/" + ct.ct + "/" + h.name + "=" + h.value
				t.Run(name, func(t *testing.T) {
					r := httptest.NewRequest(m.method, "/graphql", strings.NewReader(`{"query":"{__typename}"}`))
					if ct.ct != "-" {
						r.Header.Set("Content-Type", ct.ct)
					}
					if h.name != "" {
						r.Header.Set(h.name, h.value)
					}
					var called bool
					w := httptest.NewRecorder()
					edge.CSRF(okHandler(&called)).ServeHTTP(w, r)
					if called == wantRefused {
						t.Fatalf("next called = %v, want %v", called, !wantRefused)
					}
					if !wantRefused {
						if w.Code != http.StatusOK {
							t.Fatalf("status = %d, want 200", w.Code)
						}
						return
					}
					if w.Code != http.StatusBadRequest {
						t.Fatalf("status = %d, want 400", w.Code)
					}
					if m.method == http.MethodHead {
						return // httptest.ResponseRecorder keeps the body; nothing more to check
					}
					doc := decodeErrorDoc(t, w.Body.String())
					if got := doc.Errors[0].Extensions["code"]; got != apierr.CodeCSRFRefused {
						t.Errorf("code = %v, want %s", got, apierr.CodeCSRFRefused)
					}
				})
			}
		}
	}
}

// TestCSRFRefusal pins what a refused client is told.
func TestCSRFRefusal(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/graphql?query=%7B__typename%7D", nil)
	w := httptest.NewRecorder()
	var called bool
	edge.CSRF(okHandler(&called)).ServeHTTP(w, r)
	if called {
		t.Fatal("next was called")
	}
	if got := w.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	doc := decodeErrorDoc(t, w.Body.String())
	if doc.Data != nil {
		t.Errorf("data = %v, want null", doc.Data)
	}
	msg := doc.Errors[0].Message
	for _, want := range []string{"CSRF", "Content-Type: application/json", "Apollo-Require-Preflight", "X-Apollo-Operation-Name", "X-Requested-With"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not mention %q", msg, want)
		}
	}
	if _, ok := doc.Errors[0].Extensions["retryAfter"]; ok {
		t.Errorf("extensions = %v: a CSRF refusal has no retryAfter", doc.Errors[0].Extensions)
	}
}
