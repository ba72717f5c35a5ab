package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// TestBrowserSafety: CORS answers only listed origins, CSRF refuses what a
// browser could send cross-site without a preflight, and turning auth off
// with a real upstream is logged loudly.
func TestBrowserSafety(t *testing.T) {
	baseURL, logs, _ := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":      startUpstream(t, sandbox.New(sandbox.Options{})),
		"MONEYKIT_CLIENT_ID":     sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET": sandbox.DefaultClientSecret,
		"MKGRAPH_AUTH":           "none",
		"MKGRAPH_CORS_ORIGINS":   "https://app.example.com",
	})
	if !strings.Contains(logs.String(), "AUTHENTICATION IS OFF") {
		t.Errorf("MKGRAPH_AUTH=none with a real upstream was not logged loudly")
	}
	c := newClient(t)
	preflight := func(origin string) result {
		req, _ := http.NewRequest(http.MethodOptions, baseURL+"/graphql", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type") // as browsers send it: lower case, sorted
		return do(t, c, req)
	}
	if r := preflight("https://app.example.com"); r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || r.header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("preflight from a listed origin: %d %v", r.status, r.header)
	}
	if r := preflight("https://evil.example.net"); r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("preflight from another origin got CORS headers: %v", r.header)
	}
	req, _ := http.NewRequest(http.MethodPost, baseURL+"/graphql", strings.NewReader(`{"query":"{ __typename }"}`))
	req.Header.Set("Content-Type", "text/plain")
	if r := do(t, c, req); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "facade.csrf_refused") {
		t.Errorf("text/plain POST: %d %s, want 400 facade.csrf_refused", r.status, r.body)
	}
	req, _ = http.NewRequest(http.MethodGet, baseURL+"/graphql?query=%7B__typename%7D", nil)
	if r := do(t, c, req); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "facade.csrf_refused") {
		t.Errorf("GET without a preflight header: %d %s, want 400 facade.csrf_refused", r.status, r.body)
	}
}
