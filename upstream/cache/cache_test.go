package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
)

func TestNewRefusesBadConfig(t *testing.T) {
	next := &fakeFetcher{answer: script(ok("v1", t0))}
	for _, tc := range []struct {
		name string
		cfg  cache.Config
	}{
		{"no next", cache.Config{Namespace: "ns"}},
		{"no namespace", cache.Config{Next: next.GetIdentity}},
		{"NUL in namespace", cache.Config{Next: next.GetIdentity, Namespace: "a\x00b"}},
		{"negative TTL", cache.Config{Next: next.GetIdentity, Namespace: "ns", TTL: -1}},
		{"negative MaxBytes", cache.Config{Next: next.GetIdentity, Namespace: "ns", MaxBytes: -1}},
		{"negative FetchTimeout", cache.Config{Next: next.GetIdentity, Namespace: "ns", FetchTimeout: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := cache.New(tc.cfg); err == nil {
				c.Close()
				t.Fatalf("New(%+v): no error", tc.cfg)
			}
		})
	}
}

func TestDefaultsWithRealClock(t *testing.T) {
	next := &fakeFetcher{answer: script(ok("v1", t0))}
	c := MustNew(t, cache.Config{Next: next.GetIdentity})
	mustGet(t, t.Context(), c, "l1")
	mustGet(t, t.Context(), c, "l1")
	if got := next.Calls(); got != 1 {
		t.Errorf("upstream calls = %d, want 1", got)
	}
}

func TestFreshHitCostsNoCall(t *testing.T) {
	clk := newFakeClock()
	next := &fakeFetcher{answer: script(ok("v1", t0), ok("v2", t0.Add(time.Hour)))}
	c := MustNew(t, cache.Config{Next: next.GetIdentity, Now: clk.Now, TTL: 5 * time.Minute})

	ctx, served := cache.WithServed(t.Context())
	if got := version(mustGet(t, ctx, c, "l1")); got != "v1" {
		t.Fatalf("first read: %s, want v1", got)
	}
	if info, _ := served.Get("l1"); info != (cache.Info{}) {
		t.Errorf("first read served as %+v, want from upstream", info)
	}

	clk.Advance(5*time.Minute - time.Nanosecond)
	ctx, served = cache.WithServed(t.Context())
	if got := version(mustGet(t, ctx, c, "l1")); got != "v1" {
		t.Fatalf("second read: %s, want v1", got)
	}
	if got := next.Calls(); got != 1 {
		t.Fatalf("upstream calls after a fresh hit = %d, want 1", got)
	}
	if info, _ := served.Get("l1"); info != (cache.Info{FromCache: true, Age: 5*time.Minute - time.Nanosecond}) {
		t.Errorf("hit served as %+v", info)
	}

	clk.Advance(time.Nanosecond) // age == TTL: no longer fresh
	if got := version(mustGet(t, t.Context(), c, "l1")); got != "v2" {
		t.Fatalf("read at TTL: %s, want v2", got)
	}
	if got := next.Calls(); got != 2 {
		t.Fatalf("upstream calls after TTL = %d, want 2", got)
	}
	want := cache.Stats{Hits: 1, Misses: 2, Stores: 2}
	got := c.Stats()
	got.Bytes = 0
	if got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestNamespacesAreIsolated(t *testing.T) {
	clk := newFakeClock()
	nextA := &fakeFetcher{answer: script(ok("from-a", t0))}
	nextB := &fakeFetcher{answer: script(ok("from-b", t0))}
	a := MustNew(t, cache.Config{Next: nextA.GetIdentity, Namespace: cache.NamespaceFor("https://api.moneykit.com", "client-a"), Now: clk.Now})
	b := MustNew(t, cache.Config{Next: nextB.GetIdentity, Namespace: cache.NamespaceFor("https://api.moneykit.com", "client-b"), Now: clk.Now})
	cache.ShareStore(b, a) // one store, as replicas sharing Redis would have

	if a.Key("l1") == b.Key("l1") {
		t.Fatalf("both namespaces use key %q", a.Key("l1"))
	}
	if got := version(mustGet(t, t.Context(), a, "l1")); got != "from-a" {
		t.Fatalf("a: %s", got)
	}
	if got := version(mustGet(t, t.Context(), b, "l1")); got != "from-b" {
		t.Fatalf("b served %s, want its own upstream's answer", got)
	}
	if got := version(mustGet(t, t.Context(), a, "l1")); got != "from-a" {
		t.Fatalf("a after b: %s", got)
	}
	if na, nb := nextA.Calls(), nextB.Calls(); na != 1 || nb != 1 {
		t.Errorf("upstream calls a=%d b=%d, want 1 each", na, nb)
	}
}

func TestKeyFormat(t *testing.T) {
	next := &fakeFetcher{answer: script(ok("v1", t0))}
	c := MustNew(t, cache.Config{Next: next.GetIdentity, Namespace: "ns1"})
	if got, want := c.Key("mk_1"), "ns1\x00mk_1"; got != want {
		t.Errorf("Key(%q) = %q, want %q", "mk_1", got, want)
	}
	if got, want := len(cache.NamespaceFor("https://x", "id")), 64; got != want {
		t.Errorf("len(NamespaceFor) = %d, want %d", got, want)
	}
	if cache.NamespaceFor("https://x", "ab") == cache.NamespaceFor("https://xa", "b") {
		t.Error("NamespaceFor does not separate base URL from client id")
	}
}

func TestCloseEndsInFlightCalls(t *testing.T) {
	entered := make(chan struct{})
	next := &fakeFetcher{answer: func(ctx context.Context, linkID string, n int) (*upstream.Identity, error) {
		if n == 1 {
			close(entered)
			<-ctx.Done()
			return nil, apierr.AsError(ctx.Err())
		}
		return identity(linkID, "v1", t0), nil
	}}
	c, err := cache.New(cache.Config{Next: next.GetIdentity, Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.GetIdentity(t.Context(), "l1")
		done <- err
	}()
	<-entered
	c.Close()
	select {
	case err := <-done:
		wantCode(t, err, apierr.CodeUpstreamTimeout)
	case <-time.After(5 * time.Second):
		t.Fatal("Close returned while its call still runs")
	}
	_, err = c.GetIdentity(t.Context(), "l1")
	wantCode(t, err, apierr.CodeUpstreamUnavailable)
	if got := next.Calls(); got != 1 {
		t.Errorf("upstream calls = %d, want 1 (none after Close)", got)
	}
	c.Close() // twice is fine
}

func BenchmarkHit(b *testing.B) {
	next := &fakeFetcher{answer: script(ok("v1", t0))}
	c := MustNew(b, cache.Config{Next: next.GetIdentity, TTL: time.Hour})
	ctx := context.Background()
	mustGet(b, ctx, c, "mk_link")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.GetIdentity(ctx, "mk_link"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if n := next.Calls(); n != 1 {
		b.Fatalf("upstream calls = %d, want 1", n)
	}
}
