package graph_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestUpstreamFailures(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name    string
		opts    func(tb testing.TB) testOptions
		message string
		ext     map[string]any
	}{
		{
			name:    "connection refused",
			opts:    func(testing.TB) testOptions { return testOptions{BaseURL: closedURL} },
			message: msgUnavailable,
			ext:     ext(apierr.CodeUpstreamUnavailable, 0),
		},
		{
			name: "timeout",
			opts: func(testing.TB) testOptions {
				return testOptions{Latency: 2 * time.Second, Timeout: 50 * time.Millisecond}
			},
			message: "The MoneyKit API did not answer in time; try again later.",
			ext:     ext(apierr.CodeUpstreamTimeout, 0),
		},
		{
			name: "truncated JSON",
			opts: func(tb testing.TB) testOptions {
				return testOptions{BaseURL: badUpstream(tb, http.StatusOK, "application/json", `{"link": {"link_id": "mk_`)}
			},
			message: "The MoneyKit API sent a response the facade cannot read.",
			ext:     ext(apierr.CodeUpstreamBadResponse, 200),
		},
		{
			name: "HTML 200",
			opts: func(tb testing.TB) testOptions {
				return testOptions{BaseURL: badUpstream(tb, http.StatusOK, "text/html", `<html>hi</html>`)}
			},
			message: "The MoneyKit API sent a response the facade cannot read.",
			ext:     ext(apierr.CodeUpstreamBadResponse, 200),
		},
		{
			name: "404 without MoneyKit error JSON",
			opts: func(tb testing.TB) testOptions {
				return testOptions{BaseURL: badUpstream(tb, http.StatusNotFound, "text/plain", `nope`)}
			},
			message: "The MoneyKit API sent a response the facade cannot read.",
			ext:     ext(apierr.CodeUpstreamBadResponse, 404),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, tt.opts(t))
			resp, body := ts.MustQuery(t, `{ link(id: "`+sandbox.LinkSeed+`") { id } }`, nil)
			if string(resp.Data) != `{"link":null}` {
				t.Errorf("data = %s, want link null", resp.Data)
			}
			if len(resp.Errors) != 1 {
				t.Fatalf("errors = %s, want one", body)
			}
			e := resp.Errors[0]
			if e.Message != tt.message {
				t.Errorf("message = %q, want %q", e.Message, tt.message)
			}
			if diff := cmp.Diff(tt.ext, e.Extensions); diff != "" {
				t.Errorf("extensions mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]any{"link"}, e.Path); diff != "" {
				t.Errorf("path mismatch (-want +got):\n%s", diff)
			}
			for _, leak := range []string{"127.0.0.1", "dial", "html", "unexpected EOF", "context deadline"} {
				if strings.Contains(string(body), leak) {
					t.Errorf("response leaks %q: %s", leak, body)
				}
			}
		})
	}
}

func TestRequestDeadline(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, testOptions{})
	ts.MustQuery(t, `{ link(id: "`+sandbox.LinkSeed+`") { id } }`, nil) // token
	ts.sbx.SetLatency(5 * time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	body, _ := json.Marshal(map[string]any{"query": `{ link(id: "` + sandbox.LinkHousehold + `") { id } }`})
	start := time.Now()
	rec := ts.send(ctx, body)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("request took %v after its 50ms deadline: the upstream call did not end with it", elapsed)
	}
	resp := mustDecode(t, rec.Body.Bytes())
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != apierr.CodeUpstreamTimeout {
		t.Errorf("errors = %s, want one %s", rec.Body, apierr.CodeUpstreamTimeout)
	}
}

// TestFaultsThroughGraphQL: each way the upstream can fail reaches the
// client as a stable code at the link's path, never a hang, and costs the
// calls the retry rules allow: 502/504/resets are retried twice, a short
// Retry-After is waited out, everything else is tried once.
func TestFaultsThroughGraphQL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id        string
		code      string
		minCalls  int
		maxCalls  int
		retryWait bool          // retryAfter in extensions
		timeout   time.Duration // of an upstream call; 0: 1 s, short for the cases that time out
	}{
		{sandbox.LinkFault502, apierr.CodeUpstreamUnavailable, 3, 3, false, 0},
		{sandbox.LinkFault504, apierr.CodeUpstreamUnavailable, 3, 3, false, 0},
		{sandbox.LinkFaultReset, apierr.CodeUpstreamUnavailable, 3, 6, false, 0}, // net/http may resend a reset GET itself
		{sandbox.LinkFaultHTML, apierr.CodeUpstreamBadResponse, 1, 1, false, 0},
		{sandbox.LinkFaultTruncated, apierr.CodeUpstreamBadResponse, 1, 1, false, 0},
		// Reading past the body limit takes a while under the race
		// detector on a busy machine: this case is not about time.
		{sandbox.LinkFaultOversized, apierr.CodeUpstreamBadResponse, 1, 1, false, 30 * time.Second},
		{sandbox.LinkFaultDrip, apierr.CodeUpstreamTimeout, 1, 1, false, 0},
		{sandbox.LinkFaultHang, apierr.CodeUpstreamTimeout, 1, 1, false, 0},
		{sandbox.LinkFaultSlow, apierr.CodeUpstreamTimeout, 1, 1, false, 0},
		{sandbox.LinkRateLimitedDate, apierr.CodeRateLimitExceeded, 1, 1, true, 0},
		{sandbox.LinkRateLimitedShort, apierr.CodeRateLimitExceeded, 3, 3, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			t.Parallel()
			// A server per case: the breaker must not carry one case's
			// failures into the next.
			timeout := tt.timeout
			if timeout == 0 {
				timeout = time.Second
			}
			ts := newTestServer(t, testOptions{Timeout: timeout})
			start := time.Now()
			resp, body := ts.MustQuery(t, `query($id: ID!) { link(id: $id) { id } }`, map[string]any{"id": tt.id})
			if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != tt.code || string(resp.Data) != `{"link":null}` {
				t.Fatalf("answer %s, want link null with one %s error", body, tt.code)
			}
			if _, ok := resp.Errors[0].Extensions["retryAfter"]; ok != tt.retryWait {
				t.Errorf("retryAfter present = %v, want %v: %s", ok, tt.retryWait, body)
			}
			if calls := ts.sbx.IdentityCallsFor(tt.id); calls < tt.minCalls || calls > tt.maxCalls {
				t.Errorf("upstream calls = %d, want %d to %d", calls, tt.minCalls, tt.maxCalls)
			}
			if took := time.Since(start); took > max(5*time.Second, tt.timeout) {
				t.Errorf("took %v: bounded by the 1 s per-attempt timeout and the retry rules", took)
			}
		})
	}
}
