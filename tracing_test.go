package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// TestTracing: with OTEL_EXPORTER_OTLP_ENDPOINT set, each GraphQL operation
// and upstream call is a span, exported over OTLP/HTTP, and the upstream
// receives the W3C trace context.
func TestTracing(t *testing.T) {
	var mu sync.Mutex
	var traceparents []string
	var exported int
	collector := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		exported++
		mu.Unlock()
	}))
	sbx := sandbox.New(sandbox.Options{})
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/identity") {
			mu.Lock()
			traceparents = append(traceparents, r.Header.Get("Traceparent"))
			mu.Unlock()
		}
		sbx.ServeHTTP(w, r)
	}))
	baseURL, logs, stop := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":           up,
		"MONEYKIT_CLIENT_ID":          sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET":      sandbox.DefaultClientSecret,
		"OTEL_EXPORTER_OTLP_ENDPOINT": collector,
	})
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
	if !strings.Contains(logs.String(), `"tracing":true`) {
		t.Fatalf("tracing not enabled: %s", logs)
	}
	c := newClient(t)
	postGraphQL(t, c, baseURL, gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id } }`})
	if err := stop(); err != nil { // flushes the batch of spans
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(traceparents) != 1 || !regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$`).MatchString(traceparents[0]) {
		t.Errorf("upstream traceparent headers = %q, want one W3C trace context", traceparents)
	}
	if exported == 0 {
		t.Errorf("no spans were exported to the OTLP endpoint")
	}
}
