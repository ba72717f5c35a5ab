package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/obs/metrics"
	"github.com/mkgraph/mkgraph/internal/redisstore"
	"github.com/mkgraph/mkgraph/internal/testing/redistest"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// waitMetric waits up to 5 s for a series to reach want.
func waitMetric(t *testing.T, c *http.Client, admin, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := metric(t, c, admin, series)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s = %v, want %v", series, admin, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitSubscribers waits until n replicas listen on the link event channel
// under prefix.
func waitSubscribers(t *testing.T, redisURL, prefix string, n int64) {
	t.Helper()
	rdb := redistest.Client(t, redisURL)
	deadline := time.Now().Add(5 * time.Second)
	for {
		chans, err := rdb.PubSubChannels(t.Context(), prefix+"events:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(chans) == 1 {
			if m, err := rdb.PubSubNumSub(t.Context(), chans[0]).Result(); err == nil && m[chans[0]] == n {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("link event channels %v: not %d subscribers within 5s", chans, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWebhookAcrossReplicas: three facades over one Redis; a webhook
// received by one drops the link's answer from all three (their memory and
// Redis), so every replica's next read shows the refreshed data, and the
// event is delivered to the other replicas' buses.
func TestWebhookAcrossReplicas(t *testing.T) {
	redisURL := redistest.URL(t)
	prefix := redistest.Prefix(t, redisURL)
	sbx, sbxURL, env := externalSandbox(t)
	env["MKGRAPH_REDIS_URL"] = redisURL
	env["MKGRAPH_REDIS_PREFIX"] = prefix
	urls, logs := startReplicas(t, 3, env)
	var admins []string
	for _, l := range logs {
		admins = append(admins, adminAddrOf(t, l))
	}
	waitSubscribers(t, redisURL, prefix, 3)
	c := newClient(t)
	link := sandbox.LinkCopyPrefix + "replicas"
	read := func(i int) string {
		t.Helper()
		r := postGraphQL(t, c, urls[i], emailsQuery(link))
		if g := decodeGQL(t, r); r.status != 200 || len(g.Errors) > 0 {
			t.Fatalf("replica %d: HTTP %d %s", i, r.status, r.body)
		}
		return string(r.body)
	}
	for i := range 3 {
		read(i) // each replica holds the answer in memory now
	}
	if n := sbx.IdentityCallsFor(link); n != 1 {
		t.Fatalf("3 reads over 3 replicas: %d upstream calls, want 1", n)
	}
	sandboxRefresh(t, sbx, sbxURL, link)
	for i := range 3 {
		if strings.Contains(read(i), "refreshed-") {
			t.Fatalf("replica %d shows the refresh before any webhook", i)
		}
	}

	// Subscribers on the two replicas that will not receive the webhook.
	subscribers := map[int]*websocket.Conn{}
	for _, i := range []int{1, 2} {
		ws, _, err := wsDial(t, urls[i], nil)
		if err != nil {
			t.Fatal(err)
		}
		wsSend(t, ws, map[string]any{"type": "connection_init", "payload": map[string]any{}})
		if m, err := wsRead(ws, 5*time.Second); err != nil || m["type"] != "connection_ack" {
			t.Fatalf("replica %d: connection_init: %v %v", i, m, err)
		}
		wsSend(t, ws, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
			"query": `subscription($id: ID!) { linkEvents(linkId: $id) { ` + loopEventSelection + ` } }`, "variables": map[string]any{"id": link}}})
		subscribers[i] = ws
	}
	time.Sleep(300 * time.Millisecond) // subscribed (an error would come first below)

	body := identityCompleted(link, "replicas-key")
	if r := postWebhook(t, c, urls[0], body, sbx.SignWebhook(body)); r.status != 200 {
		t.Fatalf("webhook: HTTP %d %s", r.status, r.body)
	}
	for i, ws := range subscribers {
		m, err := wsRead(ws, 10*time.Second)
		if err != nil || m["type"] != "next" {
			t.Fatalf("replica %d's subscriber: %v %v", i, m, err)
		}
		var p struct {
			Data struct {
				LinkEvents loopEvent `json:"linkEvents"`
			} `json:"data"`
		}
		b, _ := json.Marshal(m["payload"])
		if err := json.Unmarshal(b, &p); err != nil || p.Data.LinkEvents.RefreshState != "COMPLETED" || !p.Data.LinkEvents.hasEmail("refreshed-1@example.com") {
			t.Errorf("replica %d's subscriber got %s (%v), want COMPLETED with the refreshed email", i, b, err)
		}
	}
	waitMetric(t, c, admins[0], `mkgraph_identity_cache_invalidations_total{origin="webhook"}`, 1)
	for _, i := range []int{1, 2} {
		waitMetric(t, c, admins[i], `mkgraph_identity_cache_invalidations_total{origin="replica"}`, 1)
		waitMetric(t, c, admins[i], `mkgraph_link_events_delivered_total{origin="replica"}`, 1)
		if got := metric(t, c, admins[i], `mkgraph_link_events_delivered_total{origin="webhook"}`); got != 0 {
			t.Errorf("replica %d delivered %v events of its own", i, got)
		}
	}
	if got := metric(t, c, admins[0], `mkgraph_link_events_delivered_total{origin="replica"}`); got != 0 {
		t.Errorf("replica 0 got its own event back from Redis (%v)", got)
	}
	for _, i := range []int{2, 1, 0} {
		if got := read(i); !strings.Contains(got, "refreshed-1@example.com") {
			t.Errorf("replica %d after the webhook: %s, want the refreshed email", i, got)
		}
	}
	// One call after the invalidation: the first replica to read asked
	// MoneyKit, the others found its answer in Redis.
	if n := sbx.IdentityCallsFor(link); n != 2 {
		t.Errorf("%d upstream calls, want 2", n)
	}
	// Deduped across replicas: MoneyKit's retry to another replica is a
	// duplicate.
	if r := postWebhook(t, c, urls[2], body, sbx.SignWebhook(body)); r.status != 200 {
		t.Fatalf("retry: HTTP %d", r.status)
	}
	if got := metric(t, c, admins[2], `mkgraph_webhook_deliveries_total{verdict="duplicate"}`); got != 1 {
		t.Errorf("the retry on another replica: duplicate = %v, want 1", got)
	}
}

// TestEmbeddedSandboxLoop: with no settings (`go run .`), a refresh asked of
// the embedded sandbox comes back as its pending and completed webhooks to
// the facade's own receiver: the cache is dropped and the events published,
// and the next read shows the new data.
func TestEmbeddedSandboxLoop(t *testing.T) {
	baseURL, logs, _ := startServer(t, map[string]string{"MKGRAPH_ADMIN_ADDR": "127.0.0.1:0"})
	admin := adminAddrOf(t, logs)
	line := logs.waitFor(t, "naming the embedded sandbox", func(f map[string]any) bool { return f["upstream"] != nil })
	sbxURL := line["upstream"].(string)
	c := newClient(t)
	link := sandbox.LinkCopyPrefix + "loop"
	postGraphQL(t, c, baseURL, emailsQuery(link))
	client, err := upstream.New(upstream.Config{BaseURL: sbxURL, ClientID: sandbox.DefaultClientID, ClientSecret: sandbox.DefaultClientSecret, HTTPClient: newClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.RefreshProducts(t.Context(), link, []string{upstream.ProductIdentity}); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, c, admin, `mkgraph_webhook_deliveries_total{verdict="accepted"}`, 1) // pending
	deadline := time.Now().Add(sandbox.DefaultRefreshDelay + 5*time.Second)
	for metric(t, c, admin, `mkgraph_identity_cache_invalidations_total{origin="webhook"}`) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no invalidation within the sandbox's refresh delay; logs:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := metric(t, c, admin, `mkgraph_link_events_published_total{kind="PRODUCT_REFRESH"}`); got != 2 {
		t.Errorf("published %v events, want 2 (pending, completed)", got)
	}
	if r := postGraphQL(t, c, baseURL, emailsQuery(link)); !strings.Contains(string(r.body), "refreshed-1@example.com") {
		t.Errorf("after the loop: %s", r.body)
	}
}

// TestRefreshBudget: the facade's refresh budget refuses a second identity
// refresh of a link within the day before any call, with retryAfter until
// the slot frees; other links have their own; shared by replicas through
// Redis; none on the embedded sandbox by default.
func TestRefreshBudget(t *testing.T) {
	sbx := sandbox.New(sandbox.Options{RefreshInterval: -1, RefreshDelay: -1})
	t.Cleanup(sbx.Close)
	u := startUpstream(t, sbx)
	client, err := upstream.New(upstream.Config{BaseURL: u, ClientID: sandbox.DefaultClientID, ClientSecret: sandbox.DefaultClientSecret, HTTPClient: newClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	unset := &config{RefreshBudgetPerLink: -1}
	if refreshBudget(unset, true, nil, "ns") != nil {
		t.Error("unset on the embedded sandbox: a budget, want none")
	}
	if refreshBudget(&config{RefreshBudgetPerLink: 0}, false, nil, "ns") != nil {
		t.Error("0: a budget, want none")
	}
	check := func(t *testing.T, refreshers ...func(context.Context, string) (*upstream.Link, error)) {
		t.Helper()
		link := sandbox.LinkCopyPrefix + "budget" + strings.ReplaceAll(t.Name(), "/", "_")
		if _, err := refreshers[0](t.Context(), link); err != nil {
			t.Fatalf("first refresh: %v", err)
		}
		for i, r := range refreshers {
			_, err := r(t.Context(), link)
			var e *apierr.Error
			if !errors.As(err, &e) || e.Code != apierr.CodeRateLimitExceeded || e.Status != http.StatusTooManyRequests {
				t.Fatalf("refresher %d, second refresh: %v, want api_error.rate_limit_exceeded 429", i, err)
			}
			if ra := e.Extensions()["retryAfter"]; ra.(int) < 86000 || ra.(int) > 86400 {
				t.Errorf("retryAfter %v, want about a day", ra)
			}
		}
		if n := sbx.RefreshCallsFor(link); n != 1 {
			t.Errorf("%d refresh calls reached the sandbox, want 1", n)
		}
		if _, err := refreshers[len(refreshers)-1](t.Context(), link+"_other"); err != nil {
			t.Errorf("another link: %v", err)
		}
	}
	t.Run("in memory", func(t *testing.T) {
		m := metrics.New()
		check(t, newRefresher(client, refreshBudget(unset, false, nil, "ns"), m))
	})
	t.Run("shared through Redis", func(t *testing.T) {
		redisURL := redistest.URL(t)
		prefix := redistest.Prefix(t, redisURL)
		var refreshers []func(context.Context, string) (*upstream.Link, error)
		for range 2 {
			rs, err := redisstore.Open(t.Context(), redisstore.Config{URL: redisURL, Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rs.Close() })
			refreshers = append(refreshers, newRefresher(client, refreshBudget(unset, false, rs, cache.NamespaceFor(u, "id")), nil))
		}
		check(t, refreshers...)
		// The refresh budget's keys are its own: the identity budget of the
		// same link is untouched.
		rdb := redistest.Client(t, redisURL)
		keys, _ := rdb.Keys(t.Context(), prefix+"*").Result()
		if len(keys) != 2 {
			t.Errorf("refresh budget keys %v, want 2 links' logs", keys)
		}
	})
}
