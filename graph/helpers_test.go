package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/graph"
	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/internal/obs/reqlog"
	"github.com/mkgraph/mkgraph/internal/testing/logtest"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// testOptions configures newTestServer. The zero value is the production
// shape: default concurrency and batch window, no latency.
type testOptions struct {
	Latency     time.Duration // sandbox latency per identity call
	Concurrency int           // loader.Config.Concurrency; 0: default
	MaxLinkIDs  int           // graph.HandlerConfig.MaxLinkIDs; 0: default
	Timeout     time.Duration // upstream per-attempt timeout; 0: default
	// BaseURL, when set, points the upstream client there instead of at the sandbox.
	BaseURL string
	// WrapFetcher, when set, wraps the upstream client given to the loaders.
	WrapFetcher func(loader.Fetcher) loader.Fetcher
	// Per-request limits; 0: the defaults.
	MaxLinks, MaxAccounts, MaxComplexity int
	// Authorize, when set, is graph.HandlerConfig.Authorize.
	Authorize func(ctx context.Context, linkID string) error
	// Trusted documents.
	APQCacheSize int
	Persisted    *graph.PersistedQueries
}

// testServer is the facade's GraphQL handler chain over a sandbox upstream.
type testServer struct {
	sbx     *sandbox.Server
	url     string // the sandbox's base URL
	handler http.Handler
	logs    *syncBuffer

	mu        sync.Mutex
	summaries []reqlog.Summary // one per request, in order
}

// newTestServer builds sandbox → httptest server → upstream client → loader
// factory → graph handler, with a zerolog logger and a reqlog.Record in every
// request's context, as server.go wires them.
func newTestServer(tb testing.TB, opts testOptions) *testServer {
	tb.Helper()
	sbx := sandbox.New(sandbox.Options{Latency: opts.Latency})
	hs := httptest.NewServer(sbx)
	tb.Cleanup(hs.Close)

	base := hs.URL
	if opts.BaseURL != "" {
		base = opts.BaseURL
	}
	up, err := upstream.New(upstream.Config{
		BaseURL:      base,
		ClientID:     sandbox.DefaultClientID,
		ClientSecret: sandbox.DefaultClientSecret,
		Timeout:      opts.Timeout,
	})
	if err != nil {
		tb.Fatalf("upstream.New: %v", err)
	}
	var fetcher loader.Fetcher = up
	if opts.WrapFetcher != nil {
		fetcher = opts.WrapFetcher(up)
	}
	factory := loader.NewFactory(loader.Config{Fetcher: fetcher, Concurrency: opts.Concurrency,
		MaxLinks: opts.MaxLinks, MaxAccounts: opts.MaxAccounts})
	gql := graph.NewHandler(graph.HandlerConfig{Introspection: true, Suggestions: true, MaxLinkIDs: opts.MaxLinkIDs,
		MaxComplexity: opts.MaxComplexity, Authorize: opts.Authorize, APQCacheSize: opts.APQCacheSize, Persisted: opts.Persisted})

	ts := &testServer{sbx: sbx, url: hs.URL, logs: &syncBuffer{}}
	logger := zerolog.New(ts.logs)
	withLogger := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(logger.WithContext(r.Context())))
		})
	}
	withRecord := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, rec := reqlog.NewContext(r.Context())
			next.ServeHTTP(w, r.WithContext(ctx))
			ts.mu.Lock()
			ts.summaries = append(ts.summaries, rec.Summary())
			ts.mu.Unlock()
		})
	}
	ts.handler = withLogger(withRecord(factory.Middleware(gql)))
	return ts
}

// lastSummary returns the reqlog summary of the latest request.
func (s *testServer) lastSummary() reqlog.Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.summaries) == 0 {
		return reqlog.Summary{}
	}
	return s.summaries[len(s.summaries)-1]
}

// post sends one GraphQL request, a new HTTP request each time so that it
// gets fresh loaders, and returns the HTTP status and body.
func (s *testServer) post(tb testing.TB, query string, vars map[string]any) (int, []byte) {
	tb.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		tb.Fatalf("marshal request: %v", err)
	}
	rec := s.send(context.Background(), body)
	return rec.Code, rec.Body.Bytes()
}

// send posts a JSON body through the handler chain under ctx; the one place
// the tests build a GraphQL request.
func (s *testServer) send(ctx context.Context, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	return rec
}

// gqlResponse is a GraphQL response with the data left raw.
type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// MustQuery posts query and decodes the response; the raw body is kept for
// checks on what must never appear in it.
func (s *testServer) MustQuery(tb testing.TB, query string, vars map[string]any) (gqlResponse, []byte) {
	tb.Helper()
	_, body := s.post(tb, query, vars)
	return mustDecode(tb, body), body
}

// mustDecode decodes a GraphQL response body, failing the test if it is not one.
func mustDecode(tb testing.TB, body []byte) gqlResponse {
	tb.Helper()
	var resp gqlResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		tb.Fatalf("decode response %s: %v", body, err)
	}
	return resp
}

// MustData decodes resp.Data into v and fails on any error in resp.
func MustData(tb testing.TB, resp gqlResponse, v any) {
	tb.Helper()
	if len(resp.Errors) > 0 {
		tb.Fatalf("unexpected errors: %+v", resp.Errors)
	}
	if err := json.Unmarshal(resp.Data, v); err != nil {
		tb.Fatalf("decode data %s: %v", resp.Data, err)
	}
}

// ext builds the expected extensions of an error, with JSON's number type.
func ext(code string, status int, kv ...any) map[string]any {
	m := map[string]any{"code": code}
	if status != 0 {
		m["status"] = float64(status)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

const (
	docsLinkErrors = "https://docs.moneykit.com/api/reference/link-errors"
	docsRateLimits = "https://docs.moneykit.com/api/reference/rate-limits"
	msgUnavailable = "The MoneyKit API is unavailable; try again later."
)

// badUpstream serves the sandbox's token endpoint and answers every identity
// call with status, content type and body.
func badUpstream(tb testing.TB, status int, contentType, body string) string {
	tb.Helper()
	sbx := sandbox.New(sandbox.Options{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth/token" {
			sbx.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	tb.Cleanup(hs.Close)
	return hs.URL
}

// syncBuffer is a sink for a logger that the test reads.
type syncBuffer = logtest.Buffer

// postRaw sends a raw JSON body.
func (s *testServer) postRaw(tb testing.TB, body string) gqlResponse {
	tb.Helper()
	return mustDecode(tb, s.send(context.Background(), []byte(body)).Body.Bytes())
}
