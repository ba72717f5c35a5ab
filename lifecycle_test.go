package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestGracefulShutdown(t *testing.T) {
	baseURL, logs, stop := startServer(t, map[string]string{"MKGRAPH_SANDBOX_LATENCY": "300ms"})
	c := newClient(t)
	addr := strings.TrimPrefix(baseURL, "http://")

	type answer struct {
		r   result
		err error
	}
	answered := make(chan answer, 1)
	wrote := make(chan struct{})
	go func() {
		body, _ := json.Marshal(gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id accounts { owners { names } } } }`})
		trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(wrote) }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodPost, baseURL+"/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		answered <- answer{r: result{resp.StatusCode, resp.Header, b}, err: err}
	}()
	// Once the request is sent, the handler waits 300ms in the sandbox: stop
	// the server while it does.
	select {
	case <-wrote:
	case <-time.After(5 * time.Second):
		t.Fatal("the request was not sent")
	}
	time.Sleep(50 * time.Millisecond)

	type stopped struct {
		err  error
		took time.Duration
	}
	stoppedc := make(chan stopped, 1)
	go func() {
		start := time.Now()
		err := stop()
		stoppedc <- stopped{err, time.Since(start)}
	}()

	var a answer
	select {
	case a = <-answered:
	case <-time.After(10 * time.Second):
		t.Fatal("the in-flight query did not complete")
	}
	if a.err != nil {
		t.Fatalf("in-flight query: %v", a.err)
	}
	if a.r.status != http.StatusOK {
		t.Fatalf("in-flight query: HTTP %d, want 200\n%s", a.r.status, a.r.body)
	}
	g := decodeGQL(t, a.r)
	if len(g.Errors) > 0 || !bytes.Contains(g.Data, []byte(sandbox.LinkSeed)) {
		t.Errorf("in-flight query answered %s, want the link without errors", a.r.body)
	}
	var st stopped
	select {
	case st = <-stoppedc:
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return")
	}
	if st.err != nil {
		t.Errorf("run = %v, want nil", st.err)
	}
	// The query had about 250ms to go when the context was cancelled.
	if st.took < 100*time.Millisecond {
		t.Errorf("run returned %v after cancellation: it did not wait for the in-flight query", st.took)
	}
	for _, msg := range []string{"shutting down: finishing in-flight requests", "stopped"} {
		if _, ok := logs.find(message(msg)); !ok {
			t.Errorf("no %q line; logs:\n%s", msg, logs)
		}
	}
	c.CloseIdleConnections()
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after run returned", addr)
	}
}

func TestRequestTimeout(t *testing.T) {
	baseURL, logs, _ := startServer(t, map[string]string{"MKGRAPH_SANDBOX_LATENCY": "2s", "MKGRAPH_REQUEST_TIMEOUT": "150ms"})
	start := time.Now()
	r := postGraphQL(t, newClient(t), baseURL, gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id } }`}, "X-Request-Id", "req-timeout")
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("answered after %v, want about MKGRAPH_REQUEST_TIMEOUT (150ms)", elapsed)
	}
	if diff := cmp.Diff([]string{"facade.upstream_timeout"}, decodeGQL(t, r).errorCodes()); diff != "" {
		t.Errorf("error codes mismatch (-want +got):\n%s", diff)
	}
	f := logs.waitFor(t, "request req-timeout", func(f map[string]any) bool { return f["message"] == "request" && f["request_id"] == "req-timeout" })
	if diff := cmp.Diff([]any{"facade.upstream_timeout"}, f["error_codes"]); diff != "" {
		t.Errorf("access log error_codes mismatch (-want +got):\n%s", diff)
	}
}

// TestRequestDeadlineBeforeExecution: a request whose deadline has passed
// before execution starts must still get a GraphQL error document.
func TestRequestDeadlineBeforeExecution(t *testing.T) {
	baseURL, _, _ := startServer(t, map[string]string{"MKGRAPH_REQUEST_TIMEOUT": "1ns"})
	r := postGraphQL(t, newClient(t), baseURL, gqlRequest{Query: seedQuery})
	if diff := cmp.Diff([]string{"facade.upstream_timeout"}, decodeGQL(t, r).errorCodes()); diff != "" {
		t.Errorf("HTTP %d %s: error codes mismatch (-want +got):\n%s", r.status, r.body, diff)
	}
}

// TestZeroRequestTimeout: MKGRAPH_REQUEST_TIMEOUT=0s must either be refused
// at start or mean no deadline; it must not break every request.
func TestZeroRequestTimeout(t *testing.T) {
	env := map[string]string{"MKGRAPH_REQUEST_TIMEOUT": "0s"}
	if _, err := runOnce(nil, merge(env, map[string]string{"MKGRAPH_ADDR": "127.0.0.1:0"})); errors.As(err, new(*configError)) {
		return // refused at start: fine
	}
	baseURL, _, _ := startServer(t, env)
	r := postGraphQL(t, newClient(t), baseURL, gqlRequest{Query: seedQuery})
	if g := decodeGQL(t, r); r.status != http.StatusOK || len(g.Errors) > 0 || !bytes.Contains(g.Data, []byte(sandbox.LinkSeed)) {
		t.Errorf("MKGRAPH_REQUEST_TIMEOUT=0s accepted, but the seed query answered HTTP %d %.300s", r.status, r.body)
	}
}

// TestReadyzRefusedCredentials: while MoneyKit refuses the credentials, the
// instance is alive but not ready, so a load balancer sends traffic elsewhere.
func TestReadyzRefusedCredentials(t *testing.T) {
	baseURL, _, _ := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":      startUpstream(t, sandbox.New(sandbox.Options{})),
		"MONEYKIT_CLIENT_ID":     sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET": "wrong-secret-value",
	})
	c := newClient(t)
	get := func(path string) result {
		req, _ := http.NewRequest(http.MethodGet, baseURL+path, nil)
		return do(t, c, req)
	}
	if r := get("/readyz"); r.status != http.StatusOK {
		t.Fatalf("/readyz before any call: %d, want 200", r.status)
	}
	postGraphQL(t, c, baseURL, gqlRequest{Query: seedQuery})
	r := get("/readyz")
	if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "api_error.auth.unauthorized") || strings.Contains(string(r.body), "wrong-secret") {
		t.Errorf("/readyz with refused credentials: %d %q, want 503 naming api_error.auth.unauthorized", r.status, r.body)
	}
	if r := get("/healthz"); r.status != http.StatusOK {
		t.Errorf("/healthz: %d, want 200 (alive, just not ready)", r.status)
	}
}
