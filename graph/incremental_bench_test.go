package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/upstream"
)

// BenchmarkDefer: issue 10's query through the handler (per-request
// loaders over an identity answer kept in memory, as the identity cache
// serves repeat reads), without @defer, with @defer merged into one JSON
// answer, as multipart/mixed parts and as SSE events.
//
//	go test -run '^$' -bench BenchmarkDefer -benchmem ./graph
func BenchmarkDefer(b *testing.B) {
	ts := newTestServer(b, testOptions{WrapFetcher: func(f loader.Fetcher) loader.Fetcher { return &memoFetcher{Fetcher: f} }})
	for _, bc := range []struct{ name, query, accept string }{
		{"plain", withoutDefer(issueQuery), "application/json"},
		{"deferred-json", issueQuery, "application/json"},
		{"deferred-multipart", issueQuery, acceptDefer},
		{"deferred-sse", issueQuery, "text/event-stream"},
	} {
		body, _ := json.Marshal(map[string]any{"query": bc.query})
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", bc.accept)
				rec := httptest.NewRecorder()
				ts.handler.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("HTTP %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// memoFetcher keeps each link's first answer.
type memoFetcher struct {
	loader.Fetcher
	mu   sync.Mutex
	seen map[string]*upstream.Identity
}

func (m *memoFetcher) GetIdentity(ctx context.Context, id string) (*upstream.Identity, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.seen[id]; ok {
		return v, nil
	}
	v, err := m.Fetcher.GetIdentity(ctx, id)
	if err == nil {
		if m.seen == nil {
			m.seen = map[string]*upstream.Identity{}
		}
		m.seen[id] = v
	}
	return v, err
}
