package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/internal/linkevents"
	"github.com/mkgraph/mkgraph/internal/obs/metrics"
	"github.com/mkgraph/mkgraph/internal/redisstore"
	"github.com/mkgraph/mkgraph/internal/testing/redistest"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// TestEventLatency measures webhook receipt → subscriber delivery: from the
// start of the POST of a signed completed identity refresh to the event on
// a linkevents subscription, on the receiving replica (no Redis) and on
// another replica (two replicas over one Redis: dedupe claim and confirm,
// cache invalidation in memory and Redis, the broadcast, the event's PUBLISH
// and the other replica's SUBSCRIBE loop). EVENT_LATENCY=1 runs 200 events
// each and logs p50/p99 (docs/performance.md); otherwise 20, unchecked:
//
//	EVENT_LATENCY=1 go test -run TestEventLatency -count=1 -v .
func TestEventLatency(t *testing.T) {
	n := 20
	if os.Getenv("EVENT_LATENCY") != "" {
		n = 200
	}
	sbx := sandbox.New(sandbox.Options{})
	t.Cleanup(sbx.Close)
	sbxURL := startUpstream(t, sbx)
	ns := cache.NamespaceFor(sbxURL, sandbox.DefaultClientID)
	cfg := &config{}
	replica := func(t *testing.T, rs *redisstore.Client) *linkEvents {
		t.Helper()
		cc := cache.Config{Namespace: ns, Next: func(context.Context, string) (*upstream.Identity, error) { return nil, errors.New("unused") }}
		if rs != nil {
			shared, err := redisstore.NewIdentities(rs, [][]byte{bytes.Repeat([]byte{7}, 32)})
			if err != nil {
				t.Fatal(err)
			}
			cc.Shared = shared
		}
		ic, err := cache.New(cc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ic.Close)
		var closers []func()
		t.Cleanup(func() {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		})
		ev, err := wireLinkEvents(cfg, zerolog.Nop(), sbxURL, sandbox.DefaultClientID, ns, rs, ic, metrics.New(), func(f func()) { closers = append(closers, f) })
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	measure := func(t *testing.T, receiver *linkEvents, sub *linkevents.Subscription, link string) {
		t.Helper()
		srv := httptest.NewServer(receiver.receiver)
		t.Cleanup(srv.Close)
		c := newClient(t)
		lat := make([]time.Duration, 0, n)
		for i := range n + 5 { // 5 warm-ups: the JWKS fetch, connections
			body := identityCompleted(link, fmt.Sprintf("latency-%s-%d", t.Name(), i))
			sig := sbx.SignWebhook(body)
			start := time.Now()
			done := make(chan result, 1)
			go func() { done <- postWebhook(t, c, srv.URL, body, sig) }()
			select {
			case <-sub.C:
			case <-time.After(5 * time.Second):
				t.Fatalf("event %d not delivered within 5s", i)
			}
			d := time.Since(start)
			if r := <-done; r.status != http.StatusOK {
				t.Fatalf("delivery %d: HTTP %d %s", i, r.status, r.body)
			}
			if i >= 5 {
				lat = append(lat, d)
			}
		}
		slices.Sort(lat)
		t.Logf("%d events: p50 %v, p99 %v, max %v", n, lat[n/2], lat[n*99/100], lat[n-1])
	}
	t.Run("one replica", func(t *testing.T) {
		a := replica(t, nil)
		link := sandbox.LinkCopyPrefix + "latency1"
		measure(t, a, a.bus.Subscribe(link, n+10), link)
	})
	t.Run("across replicas", func(t *testing.T) {
		redisURL := redistest.URL(t)
		prefix := redistest.Prefix(t, redisURL)
		var buses []*linkEvents
		for range 2 {
			rs, err := redisstore.Open(t.Context(), redisstore.Config{URL: redisURL, Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rs.Close() })
			buses = append(buses, replica(t, rs))
		}
		<-buses[1].bus.(*redisstore.LinkEvents).Ready()
		link := sandbox.LinkCopyPrefix + "latency2"
		measure(t, buses[0], buses[1].bus.Subscribe(link, n+10), link)
	})
}
