package webhook_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/testing/clocktest"
	"github.com/mkgraph/mkgraph/upstream/webhook"
)

// StoreContract checks a Store's claim-then-confirm semantics; advance
// moves the store's clock.
func storeContract(t *testing.T, s webhook.Store, advance func(time.Duration)) {
	ctx := context.Background()
	claim := func(key, token string, want webhook.ClaimState) {
		t.Helper()
		got, err := s.Claim(ctx, key, token, time.Minute)
		if err != nil || got != want {
			t.Fatalf("Claim(%s, %s) = %v, %v; want %v", key, token, got, err, want)
		}
	}
	claim("a", "t1", webhook.Claimed)
	claim("a", "t2", webhook.Busy)
	claim("a", "t1", webhook.Claimed) // the holder may claim again
	if err := s.Release(ctx, "a", "t2"); err != nil {
		t.Fatal(err)
	}
	claim("a", "t2", webhook.Busy) // another token's release does nothing
	if err := s.Release(ctx, "a", "t1"); err != nil {
		t.Fatal(err)
	}
	claim("a", "t2", webhook.Claimed) // released: free again
	if err := s.Confirm(ctx, "a", "t2", time.Hour); err != nil {
		t.Fatal(err)
	}
	claim("a", "t3", webhook.Done)
	if err := s.Release(ctx, "a", "t2"); err != nil {
		t.Fatal(err)
	}
	claim("a", "t3", webhook.Done) // a done key is never released

	// A lease ends by itself (a replica died mid-apply).
	claim("b", "t1", webhook.Claimed)
	advance(time.Minute + time.Second)
	claim("b", "t2", webhook.Claimed)

	// A done key is forgotten after its TTL.
	advance(time.Hour)
	claim("a", "t4", webhook.Claimed)
}

func TestMemoryStore(t *testing.T) {
	clock := clocktest.New(t0)
	storeContract(t, webhook.NewMemoryStore(10, clock.Now), clock.Advance)

	s := webhook.NewMemoryStore(10, clock.Now)
	ctx := context.Background()
	s.Claim(ctx, "k", "t", time.Minute)
	if s.Applied("k") {
		t.Error("a claimed key is Applied")
	}
	s.Confirm(ctx, "k", "t", time.Hour)
	if !s.Applied("k") || s.Applied("other") {
		t.Error("Applied does not follow Confirm")
	}
	if st, _ := s.Claim(ctx, "k", "t", time.Minute); st != webhook.Done {
		t.Errorf("Applied changed the key: Claim = %v", st)
	}
}

func TestMemoryStoreIsBounded(t *testing.T) {
	clock := clocktest.New(t0)
	s := webhook.NewMemoryStore(100, clock.Now)
	ctx := context.Background()
	for i := range 1000 {
		key := fmt.Sprintf("k%d", i)
		s.Claim(ctx, key, "t", time.Minute)
		s.Confirm(ctx, key, "t", time.Hour)
		if s.Len() > 100 {
			t.Fatalf("%d keys held, want at most 100", s.Len())
		}
	}
	// The newest are kept.
	if st, _ := s.Claim(ctx, "k999", "x", time.Minute); st != webhook.Done {
		t.Errorf("the newest key is %v, want done", st)
	}
	// Expired ones go as new ones come.
	clock.Advance(2 * time.Hour)
	s.Claim(ctx, "fresh", "t", time.Minute)
	if s.Len() != 1 {
		t.Errorf("%d keys held after all expired, want 1", s.Len())
	}
}
