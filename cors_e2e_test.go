package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// corsPreflight sends a preflight for a POST to /graphql from origin asking
// for the request headers hdrs.
func corsPreflight(t *testing.T, c *http.Client, baseURL, origin, hdrs string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodOptions, baseURL+"/graphql", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", http.MethodPost)
	req.Header.Set("Access-Control-Request-Headers", hdrs)
	return do(t, c, req)
}

// browserHeaders are what Apollo Client, OpenTelemetry's browser SDKs and
// the CSRF prevention make browsers ask for.
var browserHeaders = []string{
	"apollographql-client-name", "apollographql-client-version",
	"traceparent", "tracestate", "baggage",
	"apollo-require-preflight", "x-apollo-operation-name", "x-requested-with",
	"authorization", "content-type",
}

// TestCORSBrowsers: on the sandbox, a listed origin and a dev server on
// localhost:5173 may send every header a browser client adds; with a real
// upstream or in production, localhost is just another unlisted origin.
func TestCORSBrowsers(t *testing.T) {
	c := newClient(t)
	allows := func(r result, origin string) bool {
		return r.header.Get("Access-Control-Allow-Origin") == origin && r.header.Get("Access-Control-Allow-Credentials") == "true"
	}

	t.Run("sandbox", func(t *testing.T) {
		baseURL, logs, _ := startServer(t, map[string]string{"MKGRAPH_CORS_ORIGINS": "https://app.example.com"})
		for _, origin := range []string{"https://app.example.com", "http://localhost:5173", "http://127.0.0.1:5173"} {
			// Browsers send the list lowercase and sorted (the fetch standard).
			all := slices.Sorted(slices.Values(browserHeaders))
			for _, h := range append(browserHeaders, strings.Join(all, ",")) {
				r := corsPreflight(t, c, baseURL, origin, h)
				if r.status != http.StatusNoContent || !allows(r, origin) || r.header.Get("Access-Control-Allow-Headers") != h {
					t.Errorf("%s asking for %s: HTTP %d, headers %v; want 204 allowing it", origin, h, r.status, r.header)
				}
			}
		}
		if r := corsPreflight(t, c, baseURL, "https://evil.example", "content-type"); allows(r, "https://evil.example") {
			t.Errorf("unlisted origin allowed: %v", r.header)
		}
		// A real request from the dev server is answered with the CORS headers.
		r := postGraphQL(t, c, baseURL, gqlRequest{Query: `{ link(id: "mk_eqkWN34UEoa2NxyALG8pcV") { id } }`}, "Origin", "http://localhost:5173")
		if r.status != http.StatusOK || !allows(r, "http://localhost:5173") {
			t.Errorf("POST from localhost:5173: HTTP %d, headers %v", r.status, r.header)
		}
		line := logs.waitFor(t, "CORS start-up line", func(f map[string]any) bool { return strings.HasPrefix(f["message"].(string), "CORS") })
		if line["localhost_any_port"] != true || !strings.Contains(strings.Join(strs(line["origins"]), ","), "https://app.example.com") {
			t.Errorf("CORS start-up line = %v, want the origin listed and localhost_any_port true", line)
		}
	})

	// A real upstream (here a sandbox behind MONEYKIT_BASE_URL), in development
	// and in production: localhost is refused, the listed origin is not.
	up := startUpstream(t, sandbox.New(sandbox.Options{}))
	for name, env := range map[string]map[string]string{
		"real upstream": {},
		"production":    {"MKGRAPH_ENV": "production", "MKGRAPH_JWT_HS256_SECRET": "an-hs256-secret-of-at-least-32-bytes!!"},
	} {
		t.Run(name, func(t *testing.T) {
			env["MONEYKIT_BASE_URL"] = up
			env["MONEYKIT_CLIENT_ID"] = sandbox.DefaultClientID
			env["MONEYKIT_CLIENT_SECRET"] = sandbox.DefaultClientSecret
			env["MKGRAPH_CORS_ORIGINS"] = "https://app.example.com"
			baseURL, logs, _ := startServer(t, env)
			for _, origin := range []string{"http://localhost:5173", "http://127.0.0.1:5173"} {
				if r := corsPreflight(t, c, baseURL, origin, "content-type"); allows(r, origin) || r.header.Get("Access-Control-Allow-Origin") != "" {
					t.Errorf("%s allowed with a real upstream: %v", origin, r.header)
				}
			}
			r := corsPreflight(t, c, baseURL, "https://app.example.com", "apollographql-client-name,traceparent")
			if !allows(r, "https://app.example.com") {
				t.Errorf("listed origin refused: HTTP %d %v", r.status, r.header)
			}
			line := logs.waitFor(t, "CORS start-up line", func(f map[string]any) bool { return strings.HasPrefix(f["message"].(string), "CORS") })
			if line["localhost_any_port"] != false {
				t.Errorf("CORS start-up line = %v, want localhost_any_port false", line)
			}
		})
	}

	t.Run("configured headers", func(t *testing.T) {
		baseURL, _, _ := startServer(t, map[string]string{
			"MKGRAPH_CORS_ORIGINS": "https://app.example.com", "MKGRAPH_CORS_HEADERS": "Content-Type, X-Custom", "MKGRAPH_CORS_MAX_AGE": "30s",
		})
		r := corsPreflight(t, c, baseURL, "https://app.example.com", "content-type,x-custom")
		if !allows(r, "https://app.example.com") || r.header.Get("Access-Control-Max-Age") != "30" {
			t.Errorf("configured headers: HTTP %d %v", r.status, r.header)
		}
		if r := corsPreflight(t, c, baseURL, "https://app.example.com", "traceparent"); allows(r, "https://app.example.com") {
			t.Errorf("a header outside MKGRAPH_CORS_HEADERS was allowed: %v", r.header)
		}
	})

	t.Run("bad header name", func(t *testing.T) {
		_, err := parseAndBuild(t, map[string]string{"MKGRAPH_CORS_HEADERS": "content-type,bad header"})
		if err == nil || !strings.Contains(err.Error(), "MKGRAPH_CORS_HEADERS") {
			t.Errorf("bad header name: %v, want an error naming MKGRAPH_CORS_HEADERS", err)
		}
	})
}

// parseAndBuild parses env and builds the CORS policy, as newHandler does.
func parseAndBuild(t *testing.T, env map[string]string) (*config, error) {
	t.Helper()
	c, err := parseConfig("mkgraph", nil, func(k string) string { return env[k] }, &strings.Builder{})
	if err != nil {
		return nil, err
	}
	_, err = corsPolicy(c)
	return c, err
}

// strs reads a JSON array of strings from a decoded log line.
func strs(v any) []string {
	var out []string
	if a, ok := v.([]any); ok {
		for _, e := range a {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}
