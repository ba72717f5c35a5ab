package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
)

func TestServed(t *testing.T) {
	clk := newFakeClock()
	next := &fakeFetcher{answer: func(ctx context.Context, linkID string, n int) (*upstream.Identity, error) {
		if n > 3 {
			return nil, errUnavailable
		}
		return identity(linkID, "v1", t0), nil
	}}
	c := MustNew(t, cache.Config{Next: next.GetIdentity, Now: clk.Now, TTL: time.Minute})
	mustGet(t, t.Context(), c, "old")
	clk.Advance(30 * time.Minute)
	mustGet(t, t.Context(), c, "older")
	clk.Advance(-40 * time.Minute)
	ctx, served := cache.WithServed(t.Context())
	mustGet(t, ctx, c, "older") // a clock stepping back makes no negative age
	if got, want := mustServed(t, served, "older"), (cache.Info{FromCache: true}); got != want {
		t.Errorf("after the clock stepped back: %+v, want %+v", got, want)
	}
	mustGet(t, t.Context(), c, "fresh")
	clk.Advance(50 * time.Minute)

	ctx, served = cache.WithServed(t.Context())
	for _, id := range []string{"old", "older", "fresh"} {
		mustGet(t, ctx, c, id)
	}
	for id, want := range map[string]cache.Info{
		"old":   {FromCache: true, Stale: true, Age: 40 * time.Minute},
		"older": {FromCache: true, Stale: true, Age: 10 * time.Minute},
		"fresh": {FromCache: true, Stale: true, Age: 50 * time.Minute},
	} {
		if got, ok := served.Get(id); !ok || got != want {
			t.Errorf("Get(%q) = %+v, %v; want %+v", id, got, ok, want)
		}
	}
	if maxAge, stale := served.AnyStale(); !stale || maxAge != 50*time.Minute {
		t.Errorf("AnyStale() = %v, %v; want 50m, true", maxAge, stale)
	}
	if _, ok := served.Get("unknown"); ok {
		t.Error("Get(unknown) found an entry")
	}

	// A fresh answer for a link already served stale keeps it stale.
	clk.Advance(-50 * time.Minute)
	mustGet(t, ctx, c, "fresh")
	if got, _ := served.Get("fresh"); !got.Stale {
		t.Errorf("fresh re-read turned the stale record into %+v", got)
	}

	var none *cache.Served
	if _, stale := none.AnyStale(); stale {
		t.Error("nil Served is stale")
	}
	if _, ok := none.Get("old"); ok {
		t.Error("nil Served has entries")
	}
	_, empty := cache.WithServed(t.Context())
	if _, stale := empty.AnyStale(); stale {
		t.Error("empty Served is stale")
	}
}
