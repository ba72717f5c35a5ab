package limits_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/graph/limits"
	"github.com/mkgraph/mkgraph/internal/apierr"
)

// benchReject sends a request through Middleware b.N times and checks it is
// refused with code. The request is built once: parsing its URL and headers
// is the server's work, done before any middleware.
func benchReject(b *testing.B, cfg limits.Config, method, target string, body []byte, code string) {
	b.Helper()
	h := cfg.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.Fatalf("next called: want %s", code)
	}))
	r := httptest.NewRequest(method, target, nil)
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
		r.ContentLength = int64(len(body))
	}
	do := func() *httptest.ResponseRecorder {
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	rec := do()
	var got refusal
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusBadRequest || len(got.Errors) != 1 || got.Errors[0].Extensions.Code != code {
		b.Fatalf("answer %d %.200s, want 400 with %s", rec.Code, rec.Body, code)
	}
	b.SetBytes(int64(len(body) + len(target)))
	for b.Loop() {
		do()
	}
}

func queryBody(b *testing.B, query string) []byte {
	b.Helper()
	body, err := json.Marshal(map[string]string{"query": query})
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkRejectDeep: 600 nested fields, within the token limit, so the
// query is parsed and walked.
func BenchmarkRejectDeep(b *testing.B) {
	benchReject(b, limits.Config{}, http.MethodPost, "/graphql", queryBody(b, nest(600)), apierr.CodeQueryTooDeep)
}

// BenchmarkReject10000Aliases: 10,000 aliases of one link (refused on size).
func BenchmarkReject10000Aliases(b *testing.B) {
	q := numbered("{", ` a%d: link(id: "x") { id }`, "}", 10000)
	benchReject(b, limits.Config{}, http.MethodPost, "/graphql", queryBody(b, q), apierr.CodeQueryTooLarge)
}

// BenchmarkRejectAliases: 500 aliases, within the size and token limits, so
// the query is parsed and walked.
func BenchmarkRejectAliases(b *testing.B) {
	benchReject(b, limits.Config{}, http.MethodPost, "/graphql", queryBody(b, aliases(500)), apierr.CodeTooManyAliases)
}

// BenchmarkRejectFragmentAliases: aliases that only fragment expansion
// multiplies past the limit, so the query is parsed and walked.
func BenchmarkRejectFragmentAliases(b *testing.B) {
	benchReject(b, limits.Config{}, http.MethodPost, "/graphql", queryBody(b, fragmentChain(40)), apierr.CodeTooManyAliases)
}

// BenchmarkRejectDeepAfterVariables: a deep query after 1 MiB of escaped
// quotes in variables, the slowest JSON to skip.
func BenchmarkRejectDeepAfterVariables(b *testing.B) {
	body := fmt.Appendf(nil, `{"variables": {"v": "%s"}, "query": %q}`, strings.Repeat(`\"`, 1<<19), nest(600))
	benchReject(b, limits.Config{}, http.MethodPost, "/graphql", body, apierr.CodeQueryTooDeep)
}

// BenchmarkReject100000Tokens: 100,000 tokens (refused on size).
func BenchmarkReject100000Tokens(b *testing.B) {
	benchReject(b, limits.Config{}, http.MethodPost, "/graphql", queryBody(b, tokens(100000)), apierr.CodeQueryTooLarge)
}

// BenchmarkRejectTokens: 8,000 tokens in 16 KiB, so they are counted.
func BenchmarkRejectTokens(b *testing.B) {
	benchReject(b, limits.Config{}, http.MethodPost, "/graphql", queryBody(b, tokens(8000)), apierr.CodeTooManyTokens)
}

// BenchmarkReject1MiBQuery: a 1 MiB query in a POST body.
func BenchmarkReject1MiBQuery(b *testing.B) {
	benchReject(b, limits.Config{}, http.MethodPost, "/graphql", queryBody(b, sized(1<<20)), apierr.CodeQueryTooLarge)
}

// BenchmarkReject1MiBQueryGET: a 1 MiB query in a URL (the server's header
// limit refuses it first; this is the middleware's own cost).
func BenchmarkReject1MiBQueryGET(b *testing.B) {
	benchReject(b, limits.Config{}, http.MethodGet, "/graphql?"+url.Values{"query": {sized(1 << 20)}}.Encode(), nil, apierr.CodeQueryTooLarge)
}

// BenchmarkReject64KiBQueryGET: a query as large as the URL the server
// reads (its 64 KiB header limit).
func BenchmarkReject64KiBQueryGET(b *testing.B) {
	benchReject(b, limits.Config{}, http.MethodGet, "/graphql?"+url.Values{"query": {sized(60 << 10)}}.Encode(), nil, apierr.CodeQueryTooLarge)
}

func batch(b *testing.B, n int) []byte {
	b.Helper()
	ops := make([]map[string]string, n)
	for i := range ops {
		ops[i] = map[string]string{"query": `{ link(id: "x") { id } }`}
	}
	body, err := json.Marshal(ops)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkRejectBatch1000: a JSON array of 1,000 operations, batching off.
func BenchmarkRejectBatch1000(b *testing.B) {
	benchReject(b, limits.Config{}, http.MethodPost, "/graphql", batch(b, 1000), apierr.CodeBatchingDisabled)
}

// BenchmarkRejectBatch1000Capped: the same with batches of 10 allowed.
func BenchmarkRejectBatch1000Capped(b *testing.B) {
	benchReject(b, limits.Config{MaxBatch: 10}, http.MethodPost, "/graphql", batch(b, 1000), apierr.CodeBatchingDisabled)
}

// BenchmarkAcceptEverything is what the limits add to a real request.
func BenchmarkAcceptEverything(b *testing.B) {
	body := queryBody(b, mustRead(b, "testdata/everything.graphql"))
	h := limits.Config{}.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	r := httptest.NewRequest(http.MethodPost, "/graphql", nil)
	r.Header.Set("Content-Type", "application/json")
	r.ContentLength = int64(len(body))
	for b.Loop() {
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
}
