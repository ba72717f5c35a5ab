package cache_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/upstream/cache"
)

func TestNewerRefreshReplacesOlderDoesNot(t *testing.T) {
	clk := newFakeClock()
	const ttl = 5 * time.Minute
	next := &fakeFetcher{answer: script(
		ok("v1", t0),
		ok("v2", t0.Add(time.Hour)),    // newer refresh: replaces
		ok("v0", t0.Add(-time.Hour)),   // older refresh: must not overwrite
		ok("v3", t0.Add(time.Hour)),    // same refresh, later answer: replaces
		ok("v4", time.Time{}),          // no refreshed_at: cannot be compared, replaces
		ok("v5", t0.Add(-2*time.Hour)), // older than an unknown refresh: replaces
	)}
	c := MustNew(t, cache.Config{Next: next.GetIdentity, Now: clk.Now, TTL: ttl})

	read := func(want string, wantInfo cache.Info) {
		t.Helper()
		ctx, served := cache.WithServed(t.Context())
		if got := version(mustGet(t, ctx, c, "l1")); got != want {
			t.Fatalf("read: %s, want %s", got, want)
		}
		if info, _ := served.Get("l1"); info != wantInfo {
			t.Errorf("%s served as %+v, want %+v", want, info, wantInfo)
		}
	}
	read("v1", cache.Info{})
	clk.Advance(ttl)
	read("v2", cache.Info{})
	clk.Advance(ttl)
	read("v2", cache.Info{FromCache: true}) // upstream said v0: ours is newer
	if got, want := c.Stats().Stores, int64(2); got != want {
		t.Errorf("Stores = %d, want %d: the older answer was stored", got, want)
	}
	// The upstream confirmed it has nothing newer: fresh again.
	clk.Advance(time.Minute)
	read("v2", cache.Info{FromCache: true, Age: time.Minute})
	if got := next.Calls(); got != 3 {
		t.Fatalf("upstream calls = %d, want 3", got)
	}
	clk.Advance(ttl)
	read("v3", cache.Info{})
	clk.Advance(ttl)
	read("v4", cache.Info{})
	clk.Advance(ttl)
	read("v5", cache.Info{})
}

func TestBoundedByBytes(t *testing.T) {
	clk := newFakeClock()
	next := &fakeFetcher{answer: script(ok("v1", t0))}
	probe := MustNew(t, cache.Config{Next: next.GetIdentity, Now: clk.Now})
	mustGet(t, t.Context(), probe, "link-00")
	probe.CleanUp()
	one := probe.Stats().Bytes
	if one <= 0 {
		t.Fatalf("one entry weighs %d bytes", one)
	}

	maxBytes := 3*one + one/2
	c := MustNew(t, cache.Config{Next: next.GetIdentity, Now: clk.Now, MaxBytes: maxBytes})
	for i := range 10 {
		mustGet(t, t.Context(), c, fmt.Sprintf("link-%02d", i))
	}
	c.CleanUp()
	s := c.Stats()
	if s.Stores != 10 || s.Evictions < 6 || s.Bytes > maxBytes || s.Bytes < one {
		t.Errorf("Stats() = %+v; want 10 stores, at least 6 evictions, %d <= Bytes <= %d", s, one, maxBytes)
	}
}

func TestTooLargeIsNotCached(t *testing.T) {
	clk := newFakeClock()
	next := &fakeFetcher{answer: script(ok("v1", t0))}
	c := MustNew(t, cache.Config{Next: next.GetIdentity, Now: clk.Now, MaxBytes: 64})
	mustGet(t, t.Context(), c, "l1")
	mustGet(t, t.Context(), c, "l1")
	if got := next.Calls(); got != 2 {
		t.Errorf("upstream calls = %d, want 2", got)
	}
	if s := c.Stats(); s.Stores != 0 || s.Bytes != 0 {
		t.Errorf("Stats() = %+v, want nothing stored", s)
	}
}
