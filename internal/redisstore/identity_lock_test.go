package redisstore

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestIdentitiesLock(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r1 := mustIdentities(t, e.open(t), testKey(0xA1))
	r2 := mustIdentities(t, e.open(t), testKey(0xA1))
	key := cacheKey(sandbox.LinkSeed)

	unlock, _, ok := r1.Lock(ctx, key, time.Minute)
	if !ok || unlock == nil {
		t.Fatalf("first Lock = %v, %v; want granted", unlock != nil, ok)
	}
	for name, s := range map[string]*Identities{"same replica": r1, "other replica": r2} {
		if u, _, ok := s.Lock(ctx, key, time.Minute); ok || u != nil {
			t.Errorf("second Lock (%s) = %v, %v; want refused with a nil unlock", name, u != nil, ok)
		}
	}
	u2, _, ok := r2.Lock(ctx, cacheKey(sandbox.LinkHousehold), time.Minute)
	if !ok {
		t.Error("Lock of another link refused")
	} else {
		defer u2()
	}

	// The lock key and value reveal nothing.
	rk := r1.redisKey("lock", key)
	if strings.Contains(rk, sandbox.LinkSeed) || !strings.HasPrefix(rk, e.prefix+"lock:") {
		t.Errorf("lock key %q", rk)
	}
	if rk == r1.redisKey("identity", key) {
		t.Error("the lock and the value share a key")
	}
	token, err := e.rdb.Get(ctx, rk).Result()
	if err != nil {
		t.Fatalf("lock key: %v", err)
	}
	if token == "" || strings.Contains(token, sandbox.LinkSeed) {
		t.Errorf("lock token %q", token)
	}
	pttl, err := e.rdb.PTTL(ctx, rk).Result()
	if err != nil {
		t.Fatal(err)
	}
	within(t, "PTTL of the lock", pttl, time.Minute-2*time.Second, time.Minute)

	unlock()
	if n, _ := e.rdb.Exists(ctx, rk).Result(); n != 0 {
		t.Error("the lock key outlived unlock")
	}
	u3, _, ok := r2.Lock(ctx, key, time.Minute)
	if !ok {
		t.Fatal("Lock after unlock refused")
	}
	u3()
	e.errs.check(t)
}

// unlock must work with the caller's context canceled: the cache calls it
// when its caller may have left.
func TestIdentitiesUnlockAfterCancel(t *testing.T) {
	e := newEnv(t)
	s := mustIdentities(t, e.open(t), testKey(0xA1))
	ctx, cancel := context.WithCancel(context.Background())
	unlock, _, ok := s.Lock(ctx, cacheKey(sandbox.LinkSeed), time.Minute)
	if !ok {
		t.Fatal("Lock refused")
	}
	cancel()
	unlock()
	if _, _, ok := s.Lock(context.Background(), cacheKey(sandbox.LinkSeed), time.Minute); !ok {
		t.Error("the lock was not released by an unlock whose context was canceled")
	}
	e.errs.check(t)
}

func TestIdentitiesLockExpiry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := mustIdentities(t, e.open(t), testKey(0xA1))
	b := mustIdentities(t, e.open(t), testKey(0xA1))
	key := cacheKey(sandbox.LinkSeed)
	const ttl = 100 * time.Millisecond

	unlockA, _, ok := a.Lock(ctx, key, ttl)
	if !ok {
		t.Fatal("A's Lock refused")
	}
	if _, _, ok := b.Lock(ctx, key, ttl); ok {
		t.Fatal("B's Lock granted while A holds the lock")
	}
	pttl, err := e.rdb.PTTL(ctx, a.redisKey("lock", key)).Result()
	if err != nil {
		t.Fatal(err)
	}
	within(t, "PTTL of a 100ms lock", pttl, 0, ttl)

	time.Sleep(ttl + 50*time.Millisecond)
	unlockB, _, ok := b.Lock(ctx, key, time.Minute)
	if !ok {
		t.Fatal("B's Lock refused after A's lock expired")
	}
	// A, late, releases what it thinks is its lock: B's must stay.
	unlockA()
	if _, _, ok := a.Lock(ctx, key, time.Minute); ok {
		t.Fatal("A's late unlock released B's lock")
	}
	unlockB()
	unlockC, _, ok := a.Lock(ctx, key, time.Minute)
	if !ok {
		t.Fatal("Lock refused after B's unlock")
	}
	unlockC()
	unlockC() // twice is harmless
	e.errs.check(t)
}

// Many replicas racing for one lock: exactly one wins.
func TestIdentitiesLockContention(t *testing.T) {
	e := newEnv(t)
	stores := []*Identities{mustIdentities(t, e.open(t), testKey(0xA1)), mustIdentities(t, e.open(t), testKey(0xA1))}
	var mu sync.Mutex
	var unlocks []func()
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			if u, _, ok := stores[i%2].Lock(context.Background(), cacheKey(sandbox.LinkSeed), time.Minute); ok {
				mu.Lock()
				unlocks = append(unlocks, u)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(unlocks) != 1 {
		t.Errorf("%d of 40 concurrent Locks granted, want 1", len(unlocks))
	}
	for _, u := range unlocks {
		u()
	}
}
