package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestExternalUpstream(t *testing.T) {
	t.Run("valid credentials", func(t *testing.T) {
		sbx := sandbox.New(sandbox.Options{})
		upstreamURL := startUpstream(t, sbx)
		baseURL, logs, _ := startServer(t, map[string]string{
			"MONEYKIT_BASE_URL":      upstreamURL,
			"MONEYKIT_CLIENT_ID":     sandbox.DefaultClientID,
			"MONEYKIT_CLIENT_SECRET": sandbox.DefaultClientSecret,
		})
		c := newClient(t)

		r := postGraphQL(t, c, baseURL, gqlRequest{Query: seedQuery})
		if r.status != http.StatusOK {
			t.Fatalf("HTTP %d, want 200\n%s", r.status, r.body)
		}
		checkGolden(t, "seed_all_fields.golden", r.body)
		if got := sbx.IdentityCallsFor(sandbox.LinkSeed); got != 1 {
			t.Errorf("external sandbox saw %d identity calls for the seed link, want 1", got)
		}
		if _, ok := logs.find(func(f map[string]any) bool { return strings.Contains(fmt.Sprint(f["message"]), "embedded sandbox") }); ok {
			t.Errorf("with MONEYKIT_BASE_URL set, the embedded sandbox was started; logs:\n%s", logs)
		}
	})

	t.Run("wrong credentials", func(t *testing.T) {
		sbx := sandbox.New(sandbox.Options{})
		upstreamURL := startUpstream(t, sbx)
		baseURL, _, _ := startServer(t, map[string]string{
			"MONEYKIT_BASE_URL":      upstreamURL,
			"MONEYKIT_CLIENT_ID":     sandbox.DefaultClientID,
			"MONEYKIT_CLIENT_SECRET": "not-the-secret",
		})
		g := decodeGQL(t, postGraphQL(t, newClient(t), baseURL, gqlRequest{Query: seedQuery}))
		if diff := cmp.Diff([]string{"api_error.auth.unauthorized"}, g.errorCodes()); diff != "" {
			t.Errorf("error codes mismatch (-want +got):\n%s", diff)
		}
		if string(g.Data) != `{"link":null}` {
			t.Errorf("data = %s, want {\"link\":null}", g.Data)
		}
		if sbx.TokenCalls() == 0 {
			t.Errorf("external sandbox saw no token call")
		}
	})
}

// TestIdentityBudget: against MoneyKit (here a sandbox on its own port) the
// facade keeps MoneyKit's 3 identity calls per link per minute itself: the
// 4th read is refused locally with a retryAfter, not spent upstream. The
// embedded sandbox has no budget by default, and the settings change both.
func TestIdentityBudget(t *testing.T) {
	q := gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id } }`}
	tests := []struct {
		name      string
		external  bool
		env       map[string]string
		reads     int
		wantCalls int // upstream identity calls (external only)
		refused   int // reads answered api_error.rate_limit_exceeded
	}{
		{"MoneyKit default: 3 per link", true, nil, 5, 3, 2},
		{"per-link budget raised", true, map[string]string{"MKGRAPH_IDENTITY_BUDGET_PER_LINK": "10"}, 5, 5, 0},
		{"app budget", true, map[string]string{"MKGRAPH_IDENTITY_BUDGET_PER_APP": "2"}, 4, 2, 2},
		{"budgets off", true, map[string]string{"MKGRAPH_IDENTITY_BUDGET_PER_LINK": "0", "MKGRAPH_IDENTITY_BUDGET_PER_APP": "0"}, 5, 5, 0},
		{"embedded sandbox: none by default", false, nil, 5, 0, 0},
		{"embedded sandbox: set explicitly", false, map[string]string{"MKGRAPH_IDENTITY_BUDGET_PER_LINK": "1"}, 3, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"MKGRAPH_CACHE_TTL": "0s"} // every read asks the upstream
			for k, v := range tt.env {
				env[k] = v
			}
			sbx := sandbox.New(sandbox.Options{})
			if tt.external {
				env["MONEYKIT_BASE_URL"] = startUpstream(t, sbx)
				env["MONEYKIT_CLIENT_ID"] = sandbox.DefaultClientID
				env["MONEYKIT_CLIENT_SECRET"] = sandbox.DefaultClientSecret
			}
			baseURL, _, _ := startServer(t, env)
			c := newClient(t)
			refused := 0
			for range tt.reads {
				g := decodeGQL(t, postGraphQL(t, c, baseURL, q))
				if len(g.Errors) == 0 {
					continue
				}
				e := g.Errors[0]
				if e.Extensions["code"] != "api_error.rate_limit_exceeded" || e.Extensions["retryAfter"] == nil {
					t.Fatalf("unexpected error %+v", e)
				}
				refused++
			}
			if refused != tt.refused {
				t.Errorf("%d of %d reads refused, want %d", refused, tt.reads, tt.refused)
			}
			if tt.external && sbx.IdentityCalls() != tt.wantCalls {
				t.Errorf("upstream identity calls = %d, want %d", sbx.IdentityCalls(), tt.wantCalls)
			}
		})
	}
}

// TestClientDisconnectCancelsUpstream: a frontend that gives up (closes the
// connection) cancels the upstream call it caused, rather than leaving it to
// run to its own timeout.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	sbx := sandbox.New(sandbox.Options{})
	sbx.SetFault(sandbox.LinkSeed, sandbox.Fault{Hang: true}, 0)
	cancelled := make(chan time.Duration, 1)
	upstreamURL := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sbx.ServeHTTP(w, r)
		if strings.HasSuffix(r.URL.Path, "/identity") && r.Context().Err() != nil {
			cancelled <- time.Since(start)
		}
	}))
	baseURL, _, _ := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":        upstreamURL,
		"MONEYKIT_CLIENT_ID":       sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET":   sandbox.DefaultClientSecret,
		"MKGRAPH_UPSTREAM_TIMEOUT": "10s",
	})
	c := &http.Client{Transport: &http.Transport{}, Timeout: 300 * time.Millisecond}
	t.Cleanup(c.CloseIdleConnections)
	body := strings.NewReader(`{"query":"{ link(id: \"` + sandbox.LinkSeed + `\") { id } }"}`)
	if _, err := c.Post(baseURL+"/graphql", "application/json", body); err == nil {
		t.Fatal("the query answered although its upstream hangs")
	}
	select {
	case d := <-cancelled:
		if d > 2*time.Second {
			t.Errorf("upstream call cancelled after %v, want soon after the client left at 300ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream call was not cancelled when the client disconnected")
	}
}

// TestIdentityCache: repeat reads of a link cost no upstream call; when the
// upstream refuses after the TTL, the cached answer is served, and the
// response's extensions say it is stale and how old.
func TestIdentityCache(t *testing.T) {
	sbx := sandbox.New(sandbox.Options{})
	baseURL, _, _ := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":      startUpstream(t, sbx),
		"MONEYKIT_CLIENT_ID":     sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET": sandbox.DefaultClientSecret,
		"MKGRAPH_CACHE_TTL":      "1s", // long enough for 5 reads on a busy machine
	})
	c := newClient(t)
	q := gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id accounts { owners { names } } } }`}
	for range 5 {
		if g := decodeGQL(t, postGraphQL(t, c, baseURL, q)); len(g.Errors) > 0 {
			t.Fatalf("read: %+v", g.Errors)
		}
	}
	if n := sbx.IdentityCallsFor(sandbox.LinkSeed); n != 1 {
		t.Errorf("5 reads within the TTL: %d upstream calls, want 1", n)
	}
	time.Sleep(1100 * time.Millisecond)
	sbx.SetFault(sandbox.LinkSeed, sandbox.Fault{Status: 503}, 0)
	r := postGraphQL(t, c, baseURL, q)
	var doc struct {
		Data       json.RawMessage `json:"data"`
		Errors     []any           `json:"errors"`
		Extensions struct {
			IdentityCache struct {
				Stale      bool `json:"stale"`
				AgeSeconds *int `json:"ageSeconds"`
			} `json:"identityCache"`
		} `json:"extensions"`
	}
	json.Unmarshal(r.body, &doc)
	if len(doc.Errors) > 0 || !strings.Contains(string(doc.Data), "John Smith") || !doc.Extensions.IdentityCache.Stale || doc.Extensions.IdentityCache.AgeSeconds == nil {
		t.Errorf("after the TTL with the upstream failing: %s, want the cached data marked stale with its age", r.body)
	}
}
