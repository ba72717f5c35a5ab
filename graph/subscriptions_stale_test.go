package graph_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
)

// A subscription event's identity served stale marks that event only: the
// next event, served fresh, and another subscription's event on the same
// connection carry no identityCache extension.
func TestSubscriptionStaleMarkIsPerEvent(t *testing.T) {
	var (
		mu   sync.Mutex
		now  = time.Date(2024, 5, 6, 7, 0, 0, 0, time.UTC)
		fail atomic.Bool
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	upstreamOK := &countingFetcher{}
	next := func(ctx context.Context, linkID string) (*upstream.Identity, error) {
		if fail.Load() {
			return nil, &apierr.Error{Status: http.StatusServiceUnavailable, Code: apierr.CodeUpstreamUnavailable, Message: "unavailable"}
		}
		return upstreamOK.GetIdentity(ctx, linkID)
	}
	c, err := cache.New(cache.Config{Next: next, Namespace: "test", TTL: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	s := newSubsServer(t, subsOptions{fetcher: c, staleExtensions: true})
	ws := s.connect(t, map[string]any{"Authorization": "Bearer backend"}, true)
	ws.subscribe("ok", eventQuery, okLink)
	ws.subscribe("other", eventQuery, otherLink)
	s.waitSubscribers(t, 2)

	event := func(linkID, id string, wantStale bool) {
		t.Helper()
		ev := refreshEvent
		ev.LinkID = linkID
		if err := s.bus.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		m := ws.read()
		var p struct {
			Data struct {
				LinkEvents struct{ Link *struct{ ID string } }
			}
			Errors     []any
			Extensions map[string]any
		}
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if m.Type != "next" || m.ID != id || len(p.Errors) > 0 || p.Data.LinkEvents.Link == nil || p.Data.LinkEvents.Link.ID != linkID {
			t.Fatalf("%s: %s %s %s", linkID, m.Type, m.ID, m.Payload)
		}
		_, stale := p.Extensions["identityCache"]
		if stale != wantStale {
			t.Fatalf("%s: stale extension %v, want %v: %s", linkID, stale, wantStale, m.Payload)
		}
	}
	event(okLink, "ok", false)
	event(otherLink, "other", false)

	// Past the TTL with the upstream down: served stale, and said so.
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	fail.Store(true)
	event(okLink, "ok", true)

	// The upstream is back: fresh answers, no stale mark, on this
	// subscription or the other one of the connection.
	fail.Store(false)
	event(otherLink, "other", false)
	event(okLink, "ok", false)
}
