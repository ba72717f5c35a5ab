package cache_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
)

// TestInvalidateDropsEntry: after Invalidate the next read asks the
// upstream, locally and in the Shared store; other links keep their entries.
func TestInvalidateDropsEntry(t *testing.T) {
	clock := newFakeClock()
	shared := newMemShared()
	f := &fakeFetcher{answer: script(ok("v1", t0), ok("v2", t0.Add(time.Hour)))}
	c := replica(t, f.GetIdentity, shared, clock)
	ctx := context.Background()

	mustGet(t, ctx, c, "mk_a")
	mustGet(t, ctx, c, "mk_b")
	if f.Calls() != 2 {
		t.Fatalf("%d calls, want 2", f.Calls())
	}
	c.Invalidate(ctx, "mk_a")
	if _, ok := shared.entry(c.Key("mk_a")); ok {
		t.Error("the shared entry of mk_a survived Invalidate")
	}
	if _, ok := shared.entry(c.Key("mk_b")); !ok {
		t.Error("Invalidate(mk_a) deleted mk_b's shared entry")
	}
	if got := version(mustGet(t, ctx, c, "mk_a")); got != "v2" {
		t.Errorf("after Invalidate: %s, want v2 (a new upstream call)", got)
	}
	mustGet(t, ctx, c, "mk_b")
	if f.Calls() != 3 {
		t.Errorf("%d calls, want 3 (mk_b still cached)", f.Calls())
	}
	// An unknown link, or one never cached, is no error.
	c.Invalidate(ctx, "mk_never")
}

// TestInvalidateLocalKeepsShared: what a replica does on another's
// broadcast; the shared entry is the other replica's to delete.
func TestInvalidateLocalKeepsShared(t *testing.T) {
	clock := newFakeClock()
	shared := newMemShared()
	f := &fakeFetcher{answer: script(ok("v1", t0), ok("v2", t0))}
	c := replica(t, f.GetIdentity, shared, clock)
	ctx := context.Background()
	mustGet(t, ctx, c, "mk_a")
	c.InvalidateLocal("mk_a")
	if _, ok := shared.entry(c.Key("mk_a")); !ok {
		t.Fatal("InvalidateLocal deleted the shared entry")
	}
	// The shared entry answers the local miss: no upstream call.
	if got := version(mustGet(t, ctx, c, "mk_a")); got != "v1" {
		t.Errorf("got %s, want v1 from the shared store", got)
	}
	if f.Calls() != 1 {
		t.Errorf("%d calls, want 1", f.Calls())
	}
}

// TestInvalidateDuringFlight: a call in flight when Invalidate comes
// stores nothing (locally or shared), its early callers get its answer, and
// callers arriving after the invalidation get a fresh call's answer, never
// the one fetched before it.
func TestInvalidateDuringFlight(t *testing.T) {
	for _, withShared := range []bool{false, true} {
		name := "local"
		if withShared {
			name = "shared"
		}
		t.Run(name, func(t *testing.T) {
			clock := newFakeClock()
			var shared cache.Shared
			mem := newMemShared()
			if withShared {
				shared = mem
			}
			release := make(chan struct{})
			started := make(chan struct{}, 2)
			f := &fakeFetcher{answer: func(ctx context.Context, linkID string, n int) (*upstream.Identity, error) {
				if n == 1 {
					started <- struct{}{}
					<-release // the old answer comes back after the invalidation
					return identity(linkID, "old", t0), nil
				}
				return identity(linkID, "new", t0), nil
			}}
			c, err := cache.New(cache.Config{Next: f.GetIdentity, Namespace: "ns", TTL: time.Minute, Now: clock.Now, Shared: shared})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			ctx := context.Background()

			var early *upstream.Identity
			var wg sync.WaitGroup
			wg.Go(func() { early = mustGet(t, ctx, c, "mk_a") })
			<-started
			c.Invalidate(ctx, "mk_a")
			// A caller after the invalidation does not join the old call.
			// (With a Shared store it waits for the cross-replica lock the
			// old call holds, then finds nothing there and calls itself.)
			var late *upstream.Identity
			wg.Go(func() { late = mustGet(t, ctx, c, "mk_a") })
			if !withShared {
				waitFor(t, "the late caller's own call", func() bool { return f.Calls() == 2 })
			}
			close(release)
			wg.Wait()
			if got := version(late); got != "new" {
				t.Errorf("a caller after Invalidate got %q, want new", got)
			}
			if got := version(early); got != "old" {
				t.Errorf("the caller before Invalidate got %q, want old (its call's answer)", got)
			}
			// The old answer, arriving last, replaced nothing.
			if got := version(mustGet(t, ctx, c, "mk_a")); got != "new" {
				t.Errorf("after the old call ended the cache serves %q, want new", got)
			}
			if withShared {
				if e, ok := mem.entry(c.Key("mk_a")); !ok || version(e.Identity) != "new" {
					t.Errorf("shared entry %v %v, want new", ok, version(e.Identity))
				}
			}
			if f.Calls() != 2 {
				t.Errorf("%d upstream calls, want 2", f.Calls())
			}
		})
	}
}

// TestInvalidateDuringSharedRead: an answer read from the Shared store by a
// call in flight is not copied into the local store after Invalidate.
func TestInvalidateDuringSharedRead(t *testing.T) {
	clock := newFakeClock()
	mem := newMemShared()
	f := &fakeFetcher{answer: script(ok("v1", t0), ok("v2", t0))}
	// Another replica wrote v1 to the shared store.
	other := replica(t, f.GetIdentity, mem, clock)
	mustGet(t, context.Background(), other, "mk_a")

	gate := &gatedShared{memShared: mem, get: make(chan struct{}), entered: make(chan struct{}, 1)}
	c := replica(t, f.GetIdentity, gate, clock)
	var wg sync.WaitGroup
	var early *upstream.Identity
	wg.Go(func() { early = mustGet(t, context.Background(), c, "mk_a") })
	<-gate.entered
	c.InvalidateLocal("mk_a")
	close(gate.get)
	wg.Wait()
	if version(early) != "v1" {
		t.Errorf("early caller got %s, want v1", version(early))
	}
	// v1 was not kept locally: this read goes to the shared store again.
	before := mem.getsN()
	mustGet(t, context.Background(), c, "mk_a")
	if mem.getsN() == before {
		t.Error("the answer read before InvalidateLocal was kept in the local store")
	}
}

// gatedShared holds the first Get until get is closed.
type gatedShared struct {
	*memShared
	once    sync.Once
	get     chan struct{}
	entered chan struct{}
}

func (g *gatedShared) Get(ctx context.Context, key string) (cache.SharedEntry, bool) {
	g.once.Do(func() {
		g.entered <- struct{}{}
		<-g.get
	})
	return g.memShared.Get(ctx, key)
}

func (s *memShared) getsN() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets
}

// TestInvalidateFencesOtherReplica: replica B's call, holding the shared
// lock, started before replica A's Invalidate and answers after it, before
// B hears of it: its answer does not reach the Shared store, and B does
// not keep it either; a reader on A calls the upstream itself.
func TestInvalidateFencesOtherReplica(t *testing.T) {
	clock := newFakeClock()
	mem := newMemShared()
	entered, release := make(chan struct{}, 1), make(chan struct{})
	fb := &fakeFetcher{answer: func(_ context.Context, linkID string, n int) (*upstream.Identity, error) {
		if n == 1 {
			entered <- struct{}{}
			<-release
		}
		return identity(linkID, "old", t0), nil
	}}
	fa := &fakeFetcher{answer: script(ok("new", t0.Add(time.Hour)))}
	a := replica(t, fa.GetIdentity, mem, clock)
	b := replica(t, fb.GetIdentity, mem, clock)

	done := make(chan *upstream.Identity)
	go func() { done <- mustGet(t, context.Background(), b, "mk_a") }()
	<-entered
	if err := a.Invalidate(context.Background(), "mk_a"); err != nil {
		t.Fatal(err)
	}
	close(release)
	if got := version(<-done); got != "old" {
		t.Errorf("B's caller got %q, want its call's answer", got)
	}
	if e, ok := mem.entry(a.Key("mk_a")); ok {
		t.Fatalf("the Shared store holds %q after the invalidation, written by a call that started before it", version(e.Identity))
	}
	if got := version(mustGet(t, context.Background(), a, "mk_a")); got != "new" || fa.Calls() != 1 {
		t.Errorf("A's reader got %q after %d calls, want new after 1", got, fa.Calls())
	}
	if got := version(mustGet(t, context.Background(), b, "mk_a")); got != "new" || fb.Calls() != 1 {
		t.Errorf("B's next reader got %q after %d calls of B's, want new (shared) after 1", got, fb.Calls())
	}
}

// leaselessShared grants every Lock without a lease, as a store that could
// not be asked does.
type leaselessShared struct{ *memShared }

func (leaselessShared) Lock(context.Context, string, time.Duration) (func(), string, bool) {
	return func() {}, "", true
}

// TestNoLeaseNoSharedWrite: an answer fetched without a lease is not
// written to the Shared store: nothing would fence it against an Invalidate.
func TestNoLeaseNoSharedWrite(t *testing.T) {
	mem := newMemShared()
	f := &fakeFetcher{answer: script(ok("v1", t0))}
	c := replica(t, f.GetIdentity, leaselessShared{mem}, newFakeClock())
	if got := version(mustGet(t, context.Background(), c, "mk_a")); got != "v1" {
		t.Fatalf("got %q", got)
	}
	if _, ok := mem.entry(c.Key("mk_a")); ok {
		t.Error("an answer fetched without a lease was written to the Shared store")
	}
}
