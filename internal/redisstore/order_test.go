package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// withRefresh returns a copy of the seed fixture refreshed at t (zero:
// without the identity product's refreshed_at), named name.
func withRefresh(t *testing.T, name string, at time.Time) *upstream.Identity {
	t.Helper()
	id := *fixture(t, sandbox.LinkSeed)
	id.Link.InstitutionName = name
	products := map[string]*upstream.ProductStatus{}
	for k, v := range id.Link.Products {
		products[k] = v
	}
	p := upstream.ProductStatus{}
	if old := products["identity"]; old != nil {
		p = *old
	}
	p.RefreshedAt = upstream.Timestamp{Time: at}
	products["identity"] = &p
	id.Link.Products = products
	return &id
}

// TestSetKeepsNewerRefresh: a write never replaces, in Redis, an answer of
// a newer refresh (a lagging replica's answer); an unknown refresh on
// either side, or a newer one, replaces it.
func TestSetKeepsNewerRefresh(t *testing.T) {
	t1 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Hour)
	tests := []struct {
		name         string
		first, then  time.Time
		wantInstitut string
	}{
		{"older refresh kept out", t2, t1, "first"},
		{"newer refresh written", t1, t2, "then"},
		{"same refresh written", t1, t1, "then"},
		{"unknown refresh written", t2, time.Time{}, "then"},
		{"over an unknown refresh", time.Time{}, t1, "then"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			s := mustIdentities(t, e.open(t), testKey(3))
			ctx := context.Background()
			s.Set(ctx, "k", cache.SharedEntry{Identity: withRefresh(t, "first", tt.first), FetchedAt: time.Now()}, time.Minute, "")
			s.Set(ctx, "k", cache.SharedEntry{Identity: withRefresh(t, "then", tt.then), FetchedAt: time.Now()}, time.Minute, "")
			got, ok := s.Get(ctx, "k")
			if !ok {
				t.Fatalf("miss (reports %v)", e.errs.all())
			}
			if got.Identity.Link.InstitutionName != tt.wantInstitut {
				t.Errorf("Redis holds %q, want %q", got.Identity.Link.InstitutionName, tt.wantInstitut)
			}
			if r := e.errs.all(); len(r) != 0 {
				t.Errorf("reports %v", r)
			}
		})
	}
}

// TestAgeOnRedisClock: an entry's age is its age when written plus its time
// in Redis (TTL given − PTTL left), whatever the writer's clock said.
func TestAgeOnRedisClock(t *testing.T) {
	e := newEnv(t)
	s := mustIdentities(t, e.open(t), testKey(4))
	ctx := context.Background()
	s.Set(ctx, "k", cache.SharedEntry{Identity: fixture(t, sandbox.LinkSeed), FetchedAt: time.Now().Add(-30 * time.Second)}, time.Minute, "")
	got, _ := s.Get(ctx, "k")
	within(t, "age just after the write", time.Since(got.FetchedAt), 29*time.Second, 31*time.Second)

	// 10 s pass in Redis.
	if err := e.rdb.PExpire(ctx, s.redisKey("identity", "k"), 50*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Get(ctx, "k")
	within(t, "age 10 s later on Redis's clock", time.Since(got.FetchedAt), 39*time.Second, 41*time.Second)

	// A writer whose clock ran an hour ahead wrote "now" as it saw it: the
	// age is still its own measure, not the difference of two clocks.
	s.Set(ctx, "k2", cache.SharedEntry{Identity: fixture(t, sandbox.LinkSeed), FetchedAt: time.Now().Add(time.Hour)}, time.Minute, "")
	got, _ = s.Get(ctx, "k2")
	within(t, "age of a future FetchedAt", time.Since(got.FetchedAt), -time.Second, time.Second)
}

// TestFailedMarker: a temporary failure is visible to every replica for its
// TTL, and nothing else is.
func TestFailedMarker(t *testing.T) {
	e := newEnv(t)
	a := mustIdentities(t, e.open(t), testKey(5))
	b := mustIdentities(t, e.open(t), testKey(5))
	ctx := context.Background()
	if b.Failed(ctx, "k") {
		t.Fatal("failed before any mark")
	}
	a.MarkFailed(ctx, "k", 100*time.Millisecond)
	if !b.Failed(ctx, "k") || b.Failed(ctx, "other") {
		t.Fatal("the mark is not seen by the other replica, or seen for another key")
	}
	time.Sleep(150 * time.Millisecond)
	if b.Failed(ctx, "k") {
		t.Error("the mark outlived its TTL")
	}
}
