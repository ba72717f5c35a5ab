package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/graph"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// TestSchemaFile: GET /graphql/schema.graphql serves the SDL while
// introspection is allowed and refuses it, like an introspection query,
// when it is not.
func TestSchemaFile(t *testing.T) {
	c := newClient(t)
	baseURL, _, _ := startServer(t, nil)
	r := get(t, c, baseURL+"/graphql/schema.graphql")
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "text/plain; charset=utf-8" || string(r.body) != graph.SDL() {
		t.Fatalf("development: HTTP %d, Content-Type %q, body %.100q", r.status, r.header.Get("Content-Type"), r.body)
	}
	if !strings.Contains(string(r.body), `scalar Decimal @specifiedBy(url: "https://www.rfc-editor.org/rfc/rfc8259#section-6")`) {
		t.Errorf("SDL lacks Decimal's @specifiedBy")
	}
	// No CSRF header is needed: it is not /graphql, and holds no data.
	req, _ := http.NewRequest(http.MethodGet, baseURL+"/graphql/schema.graphql", nil)
	if r := do(t, c, req); r.status != http.StatusOK {
		t.Errorf("plain GET: HTTP %d, want 200", r.status)
	}
	// Introspection reports the same URLs.
	q := postGraphQL(t, c, baseURL, gqlRequest{Query: `{ d: __type(name: "Decimal") { specifiedByURL } t: __type(name: "DateTime") { specifiedByURL } }`})
	if !strings.Contains(string(q.body), `"specifiedByURL":"https://www.rfc-editor.org/rfc/rfc8259#section-6"`) ||
		!strings.Contains(string(q.body), `"specifiedByURL":"https://scalars.graphql.org/andimarek/date-time"`) {
		t.Errorf("introspection of specifiedByURL: %s", q.body)
	}

	refused := func(t *testing.T, baseURL string) {
		t.Helper()
		r := get(t, c, baseURL+"/graphql/schema.graphql")
		var doc gqlResponse
		if err := json.Unmarshal(r.body, &doc); err != nil || r.status != http.StatusNotFound || len(doc.Errors) != 1 ||
			doc.Errors[0].Extensions["code"] != "facade.introspection_disabled" {
			t.Errorf("introspection off: HTTP %d %s, want 404 facade.introspection_disabled", r.status, r.body)
		}
	}
	t.Run("MKGRAPH_INTROSPECTION=false", func(t *testing.T) {
		baseURL, _, _ := startServer(t, map[string]string{"MKGRAPH_INTROSPECTION": "false"})
		refused(t, baseURL)
	})
	env := map[string]string{
		"MKGRAPH_ENV":              "production",
		"MONEYKIT_BASE_URL":        startUpstream(t, sandbox.New(sandbox.Options{})),
		"MONEYKIT_CLIENT_ID":       sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET":   sandbox.DefaultClientSecret,
		"MKGRAPH_JWT_HS256_SECRET": "an-hs256-secret-of-at-least-32-bytes!!",
	}
	t.Run("production", func(t *testing.T) {
		baseURL, _, _ := startServer(t, env)
		refused(t, baseURL)
	})
	t.Run("production, MKGRAPH_INTROSPECTION=true", func(t *testing.T) {
		env["MKGRAPH_INTROSPECTION"] = "true"
		baseURL, _, _ := startServer(t, env)
		if r := get(t, c, baseURL+"/graphql/schema.graphql"); r.status != http.StatusOK {
			t.Errorf("introspection on in production: HTTP %d, want 200", r.status)
		}
	})
}
