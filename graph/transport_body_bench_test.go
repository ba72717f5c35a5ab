package graph_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/graph"
	"github.com/mkgraph/mkgraph/graph/limits"
	"github.com/mkgraph/mkgraph/graph/loader"
)

// BenchmarkPostThroughLimits is a POST of the query of every field (1.4
// KB, graph/limits/testdata) through the limits middleware and the
// handler, over a fetcher that answers at once: the cost of reading,
// decoding and checking the body, beside that of running the query.
func BenchmarkPostThroughLimits(b *testing.B) {
	q, err := os.ReadFile("limits/testdata/everything.graphql")
	if err != nil {
		b.Fatal(err)
	}
	benchPostThroughLimits(b, map[string]any{"query": string(q), "variables": map[string]any{"ids": []string{"mk_a", "mk_b"}}})
}

// BenchmarkPost1MiBVariablesThroughLimits: a small query beside 1 MiB of
// variables (the body limit), which the limits let through: a decoding
// of the whole body, whoever does it.
func BenchmarkPost1MiBVariablesThroughLimits(b *testing.B) {
	benchPostThroughLimits(b, map[string]any{"query": "{ __typename }", "variables": map[string]any{"pad": strings.Repeat("x", 1<<20-64)}})
}

func benchPostThroughLimits(b *testing.B, req map[string]any) {
	body, _ := json.Marshal(req)
	loaders := loader.NewFactory(loader.Config{Fetcher: &countingFetcher{}})
	guard := limits.Config{}.Guard()
	h := guard.Middleware(loaders.Middleware(graph.NewHandler(graph.HandlerConfig{Limits: guard, Loaders: loaders})))
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK || bytes.Contains(rec.Body.Bytes(), []byte(`"errors"`)) {
			b.Fatalf("%d %.300s", rec.Code, rec.Body)
		}
	}
}
