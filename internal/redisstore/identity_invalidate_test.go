package redisstore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// TestIdentitiesInvalidateBreaksLease: Invalidate deletes the value and
// the lock; a write under the lease taken before it is refused
// (cache.ErrLeaseLost) and writes nothing; a lease taken after it writes.
func TestIdentitiesInvalidateBreaksLease(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := mustIdentities(t, e.open(t), testKey(0xA1))
	b := mustIdentities(t, e.open(t), testKey(0xA1))
	key := cacheKey(sandbox.LinkSeed)
	t1 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	entry := func(name string, at time.Time) cache.SharedEntry {
		return cache.SharedEntry{Identity: withRefresh(t, name, at), FetchedAt: time.Now()}
	}

	if err := b.Set(ctx, key, entry("before", t1), time.Minute, ""); err != nil {
		t.Fatalf("Set without a lease: %v", err)
	}
	unlockB, leaseB, ok := b.Lock(ctx, key, time.Minute)
	if !ok || leaseB == "" {
		t.Fatalf("B's Lock = %q, %v; want a lease", leaseB, ok)
	}
	defer unlockB()

	if err := a.Invalidate(ctx, key); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	for _, kind := range []string{"identity", "lock"} {
		if n, _ := e.rdb.Exists(ctx, a.redisKey(kind, key)).Result(); n != 0 {
			t.Errorf("the %s key outlived Invalidate", kind)
		}
	}

	// B's call, started before the invalidation, ends after it.
	if err := b.Set(ctx, key, entry("pre-refresh", t1), time.Minute, leaseB); !errors.Is(err, cache.ErrLeaseLost) {
		t.Errorf("Set under a broken lease = %v, want cache.ErrLeaseLost", err)
	}
	if _, ok := a.Get(ctx, key); ok {
		t.Fatal("Redis holds an answer written under a lease broken by Invalidate")
	}

	// A caller after the invalidation takes the lock and writes.
	unlockA, leaseA, ok := a.Lock(ctx, key, time.Minute)
	if !ok {
		t.Fatal("Lock after Invalidate refused: the lock was not broken")
	}
	defer unlockA()
	if err := a.Set(ctx, key, entry("fresh", t1.Add(time.Hour)), time.Minute, leaseA); err != nil {
		t.Fatalf("Set under a live lease: %v", err)
	}
	// The old lease does not come back to life under the new one.
	if err := b.Set(ctx, key, entry("pre-refresh", t1.Add(2*time.Hour)), time.Minute, leaseB); !errors.Is(err, cache.ErrLeaseLost) {
		t.Errorf("Set under a broken lease while another holds the lock = %v, want cache.ErrLeaseLost", err)
	}
	// B's late unlock leaves A's lock alone.
	unlockB()
	if _, _, ok := b.Lock(ctx, key, time.Minute); ok {
		t.Error("B's late unlock released A's lock")
	}
	got, ok := b.Get(ctx, key)
	if !ok || got.Identity.Link.InstitutionName != "fresh" {
		t.Errorf("Redis holds %v (found %v), want the answer fetched after the invalidation", got.Identity, ok)
	}
	e.errs.check(t)
}

// TestIdentitiesLeaseExpired: a write whose lease expired is refused, like
// one whose lease was broken.
func TestIdentitiesLeaseExpired(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := mustIdentities(t, e.open(t), testKey(0xA1))
	key := cacheKey(sandbox.LinkSeed)
	unlock, lease, ok := s.Lock(ctx, key, 50*time.Millisecond)
	if !ok {
		t.Fatal("Lock refused")
	}
	defer unlock()
	time.Sleep(100 * time.Millisecond)
	err := s.Set(ctx, key, cache.SharedEntry{Identity: fixture(t, sandbox.LinkSeed), FetchedAt: time.Now()}, time.Minute, lease)
	if !errors.Is(err, cache.ErrLeaseLost) {
		t.Errorf("Set under an expired lease = %v, want cache.ErrLeaseLost", err)
	}
	if _, ok := s.Get(ctx, key); ok {
		t.Error("a write under an expired lease landed")
	}
}

// gatedNext is an upstream whose answers wait for release, once entered.
type gatedNext struct {
	answer  *upstream.Identity
	entered chan struct{} // one send per call
	release chan struct{} // closed to let the calls answer
	calls   atomic.Int32
}

func newGatedNext(answer *upstream.Identity) *gatedNext {
	return &gatedNext{answer: answer, entered: make(chan struct{}, 8), release: make(chan struct{})}
}

func (g *gatedNext) GetIdentity(ctx context.Context, _ string) (*upstream.Identity, error) {
	g.calls.Add(1)
	g.entered <- struct{}{}
	select {
	case <-g.release:
		return g.answer, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// countingNext answers every call at once and counts them.
type countingNext struct {
	answer *upstream.Identity
	calls  atomic.Int32
}

func (c *countingNext) GetIdentity(context.Context, string) (*upstream.Identity, error) {
	c.calls.Add(1)
	return c.answer, nil
}

func replicaCache(t *testing.T, next func(context.Context, string) (*upstream.Identity, error), shared cache.Shared, onResult func(string)) *cache.Cache {
	t.Helper()
	c, err := cache.New(cache.Config{
		Next: next, Namespace: testNamespace, TTL: time.Minute, MaxStale: time.Hour,
		Shared: shared, OnResult: onResult,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestInvalidateFencesOtherReplica is the race of a completed refresh
// across replicas, made deterministic: replica B's upstream call (holding
// the Redis lock) started before the refresh and answers after replica A
// invalidated, before B hears of it (no broadcast here at all). B's
// pre-refresh answer must not reach Redis; a reader on A after the
// invalidation, and one on C that was waiting on B's lock when it came, get
// the fresh answer from an upstream call of their own; B does not keep the
// old answer either.
func TestInvalidateFencesOtherReplica(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	t1 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	old, fresh := withRefresh(t, "pre-refresh", t1), withRefresh(t, "refreshed", t1.Add(time.Hour))
	storeA := mustIdentities(t, e.open(t), testKey(0xA1))
	storeB := mustIdentities(t, e.open(t), testKey(0xA1))
	storeC := mustIdentities(t, e.open(t), testKey(0xA1))
	nextA, nextC := &countingNext{answer: fresh}, &countingNext{answer: fresh}
	nextB := newGatedNext(old)
	a := replicaCache(t, nextA.GetIdentity, storeA, nil)
	b := replicaCache(t, nextB.GetIdentity, storeB, nil)
	cMisses := make(chan struct{}, 1)
	c := replicaCache(t, nextC.GetIdentity, storeC, func(r string) {
		if r == "miss" {
			cMisses <- struct{}{}
		}
	})
	name := func(id *upstream.Identity) string {
		if id == nil {
			return "<none>"
		}
		return id.Link.InstitutionName
	}

	// B misses, takes the lock and calls the upstream (before the refresh).
	var wg sync.WaitGroup
	var early, waiting *upstream.Identity
	wg.Go(func() { early = mustIdentity(t, b, sandbox.LinkSeed) })
	<-nextB.entered
	lockKey := storeB.redisKey("lock", cacheKey(sandbox.LinkSeed))
	if n, _ := e.rdb.Exists(ctx, lockKey).Result(); n != 1 {
		t.Fatal("B's upstream call does not hold the Redis lock")
	}
	// C misses too, and waits on B's lock.
	wg.Go(func() { waiting = mustIdentity(t, c, sandbox.LinkSeed) })
	<-cMisses
	time.Sleep(20 * time.Millisecond) // C is polling (where exactly does not change the outcome)

	// The refresh completes: A invalidates.
	if err := a.Invalidate(ctx, sandbox.LinkSeed); err != nil {
		t.Fatalf("A's Invalidate: %v", err)
	}
	// B's call, started before, answers now; its caller, who came before
	// the invalidation, gets it.
	close(nextB.release)
	wg.Wait()
	if name(early) != "pre-refresh" {
		t.Errorf("B's caller got %q, want its call's answer", name(early))
	}
	if name(waiting) != "refreshed" || nextC.calls.Load() != 1 {
		t.Errorf("C's caller, waiting on B's lock, got %q after %d upstream calls of C's; want refreshed after 1", name(waiting), nextC.calls.Load())
	}
	if got, ok := storeA.Get(ctx, cacheKey(sandbox.LinkSeed)); !ok || name(got.Identity) != "refreshed" {
		t.Errorf("Redis holds %q (found %v), want only the answer fetched after the invalidation", name(got.Identity), ok)
	}

	// A's subscriber reads on hearing of the refresh: the fresh answer.
	if got := mustIdentity(t, a, sandbox.LinkSeed); name(got) != "refreshed" {
		t.Errorf("a reader on A after the invalidation got %q, want refreshed", name(got))
	}
	// B did not keep its pre-refresh answer in memory either, though it
	// never heard of the invalidation.
	if got := mustIdentity(t, b, sandbox.LinkSeed); name(got) != "refreshed" {
		t.Errorf("a later reader on B got %q, want refreshed", name(got))
	}
	if n := nextB.calls.Load(); n != 1 {
		t.Errorf("B made %d upstream calls, want 1", n)
	}
	e.errs.check(t)
}

// TestInvalidateFencesOtherReplicaAlone is the same race without a third
// replica: after B's pre-refresh answer, Redis holds nothing, and the reader
// on A makes a fresh upstream call rather than read B's answer.
func TestInvalidateFencesOtherReplicaAlone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	t1 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	storeA := mustIdentities(t, e.open(t), testKey(0xA1))
	storeB := mustIdentities(t, e.open(t), testKey(0xA1))
	nextA := &countingNext{answer: withRefresh(t, "refreshed", t1.Add(time.Hour))}
	nextB := newGatedNext(withRefresh(t, "pre-refresh", t1))
	a := replicaCache(t, nextA.GetIdentity, storeA, nil)
	b := replicaCache(t, nextB.GetIdentity, storeB, nil)

	done := make(chan struct{})
	go func() { defer close(done); mustIdentity(t, b, sandbox.LinkSeed) }()
	<-nextB.entered
	if err := a.Invalidate(ctx, sandbox.LinkSeed); err != nil {
		t.Fatalf("A's Invalidate: %v", err)
	}
	close(nextB.release)
	<-done // B's call has ended: its shared write, if any, and its unlock are done
	if n, _ := e.rdb.Exists(ctx, storeB.redisKey("identity", cacheKey(sandbox.LinkSeed))).Result(); n != 0 {
		t.Fatal("Redis holds B's pre-refresh answer after A's invalidation")
	}
	if got := mustIdentity(t, a, sandbox.LinkSeed); got.Link.InstitutionName != "refreshed" || nextA.calls.Load() != 1 {
		t.Errorf("A's reader got %q after %d upstream calls of A's, want refreshed after 1", got.Link.InstitutionName, nextA.calls.Load())
	}
	e.errs.check(t)
}

func mustIdentity(t *testing.T, c *cache.Cache, linkID string) *upstream.Identity {
	t.Helper()
	id, err := c.GetIdentity(context.Background(), linkID)
	if err != nil {
		t.Errorf("GetIdentity(%s): %v", linkID, err)
	}
	return id
}
