package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestSeedAllFieldsEndToEnd(t *testing.T) {
	baseURL, _, _ := startServer(t, nil)
	c := newClient(t)

	post := postGraphQL(t, c, baseURL, gqlRequest{Query: seedQuery})
	if post.status != http.StatusOK {
		t.Fatalf("POST /graphql: HTTP %d, want 200\n%s", post.status, post.body)
	}
	if g := decodeGQL(t, post); len(g.Errors) > 0 {
		t.Errorf("POST /graphql: errors %s", post.body)
	}
	checkJSONContentType(t, "POST /graphql", post)
	if got := post.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("POST /graphql: Cache-Control = %q, want no-store", got)
	}
	checkNoSniff(t, "POST /graphql", post)
	checkGolden(t, "seed_all_fields.golden", post.body)

	getRes := get(t, c, baseURL+"/graphql?"+url.Values{"query": {seedQuery}}.Encode())
	if getRes.status != http.StatusOK {
		t.Fatalf("GET /graphql: HTTP %d, want 200\n%s", getRes.status, getRes.body)
	}
	checkJSONContentType(t, "GET /graphql", getRes)
	if got := getRes.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("GET /graphql: Cache-Control = %q, want no-store", got)
	}
	checkNoSniff(t, "GET /graphql", getRes)
	if diff := cmp.Diff(string(post.body), string(getRes.body)); diff != "" {
		t.Errorf("GET and POST answers differ (-post +get):\n%s", diff)
	}

	// Every response carries nosniff, whatever the route and status.
	for _, path := range []string{"/", "/healthz", "/readyz", "/no/such/path", "/graphql"} {
		checkNoSniff(t, "GET "+path, get(t, c, baseURL+path))
	}
	req, _ := http.NewRequest(http.MethodOptions, baseURL+"/graphql", nil)
	checkNoSniff(t, "OPTIONS /graphql", do(t, c, req))
}

func TestRoutes(t *testing.T) {
	baseURL, _, _ := startServer(t, nil)
	c := newClient(t)

	r := get(t, c, baseURL+"/")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !bytes.Contains(r.body, []byte("/graphql")) {
		t.Errorf("GET /: HTTP %d, Content-Type %q, mentions /graphql: %v; want 200, text/html, true",
			r.status, r.header.Get("Content-Type"), bytes.Contains(r.body, []byte("/graphql")))
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if r := get(t, c, baseURL+path); r.status != http.StatusOK {
			t.Errorf("GET %s: HTTP %d, want 200\n%s", path, r.status, r.body)
		}
	}
	if r := get(t, c, baseURL+"/no/such/path"); r.status != http.StatusNotFound {
		t.Errorf("GET /no/such/path: HTTP %d, want 404", r.status)
	}

	noGraphiQL, _, _ := startServer(t, map[string]string{"MKGRAPH_GRAPHIQL": "false"})
	if r := get(t, c, noGraphiQL+"/"); r.status != http.StatusNotFound {
		t.Errorf("MKGRAPH_GRAPHIQL=false: GET /: HTTP %d, want 404", r.status)
	}
	if r := get(t, c, noGraphiQL+"/healthz"); r.status != http.StatusOK {
		t.Errorf("MKGRAPH_GRAPHIQL=false: GET /healthz: HTTP %d, want 200", r.status)
	}
}

// TestGraphQLErrorResponsesAreJSON: every /graphql answer is a JSON GraphQL
// document, labelled as one.
func TestGraphQLErrorResponsesAreJSON(t *testing.T) {
	baseURL, _, _ := startServer(t, nil)
	c := newClient(t)
	for _, tc := range []struct{ method, contentType string }{
		{http.MethodPost, "application/json"},
		{http.MethodPut, "application/json"},
		{http.MethodPost, "text/plain"},
	} {
		req, _ := http.NewRequest(tc.method, baseURL+"/graphql", strings.NewReader(`{"query":"{ nosuchfield }"}`))
		req.Header.Set("Content-Type", tc.contentType)
		r := do(t, c, req)
		if r.status >= 500 {
			t.Errorf("%s %s: HTTP %d", tc.method, tc.contentType, r.status)
		}
		if len(decodeGQL(t, r).Errors) == 0 {
			t.Errorf("%s %s: no errors in %s", tc.method, tc.contentType, r.body)
		}
		checkJSONContentType(t, tc.method+" "+tc.contentType, r)
	}
}

func TestBodyLimit(t *testing.T) {
	baseURL, _, _ := startServer(t, nil)
	c := newClient(t)

	// bigQuery is a valid request of n bytes.
	bigQuery := func(n int) []byte {
		b, _ := json.Marshal(gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id } }`})
		return append(b[:len(b)-1], append(bytes.Repeat([]byte(" "), n-len(b)), '}')...)
	}
	check413 := func(t *testing.T, r result) {
		t.Helper()
		if r.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("HTTP %d, want 413\n%.300s", r.status, r.body)
		}
		checkJSONContentType(t, "413", r)
		checkNoSniff(t, "413", r)
		if diff := cmp.Diff([]string{"facade.query_too_large"}, decodeGQL(t, r).errorCodes()); diff != "" {
			t.Errorf("error codes mismatch (-want +got):\n%s", diff)
		}
	}
	post := func(t *testing.T, url string, body io.Reader, length int64) result {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, url+"/graphql", body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = length
		req.Header.Set("Content-Type", "application/json")
		return do(t, c, req)
	}

	t.Run("2 MiB with length", func(t *testing.T) {
		body := bigQuery(2 << 20)
		check413(t, post(t, baseURL, bytes.NewReader(body), int64(len(body))))
	})
	t.Run("2 MiB chunked", func(t *testing.T) {
		body := bigQuery(2 << 20)
		check413(t, post(t, baseURL, io.MultiReader(bytes.NewReader(body)), -1))
	})
	t.Run("just under the limit", func(t *testing.T) {
		body := bigQuery(1<<20 - 10)
		if r := post(t, baseURL, bytes.NewReader(body), int64(len(body))); r.status != http.StatusOK {
			t.Errorf("a body of %d bytes: HTTP %d, want 200\n%.300s", len(body), r.status, r.body)
		}
	})

	t.Run("MKGRAPH_MAX_BODY_BYTES", func(t *testing.T) {
		small, _, _ := startServer(t, map[string]string{"MKGRAPH_MAX_BODY_BYTES": "1000"})
		body := bigQuery(1001)
		check413(t, post(t, small, bytes.NewReader(body), int64(len(body))))
		check413(t, post(t, small, io.MultiReader(bytes.NewReader(body)), -1))
		body = bigQuery(1000)
		if r := post(t, small, io.MultiReader(bytes.NewReader(body)), -1); r.status != http.StatusOK {
			t.Errorf("a chunked body of 1000 bytes: HTTP %d, want 200\n%.300s", r.status, r.body)
		}
	})

	for _, body := range []string{`{"query": "{ link(id: \"x\") { id } }"`, `not json`, `{"query": 5}`, `[]`, ``} {
		t.Run(fmt.Sprintf("malformed %q", body), func(t *testing.T) {
			r := post(t, baseURL, strings.NewReader(body), int64(len(body)))
			if r.status >= 500 || r.status == http.StatusOK && len(decodeGQL(t, r).Errors) == 0 {
				t.Fatalf("HTTP %d, want an error response below 500\n%s", r.status, r.body)
			}
			checkJSONContentType(t, "malformed", r)
			if g := decodeGQL(t, r); len(g.Errors) == 0 {
				t.Errorf("no errors in %s", r.body)
			}
		})
	}
}
