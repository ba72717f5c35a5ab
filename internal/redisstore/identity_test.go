package redisstore

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream/cache"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestIdentitiesRoundTrip(t *testing.T) {
	// Distinct instants with nanoseconds, in a zone other than UTC: the
	// instant must survive to the nanosecond.
	base := time.Date(2025, time.March, 4, 5, 6, 7, 123456789, time.FixedZone("UTC+5:30", 5*3600+1800))
	for i, linkID := range fixtureLinks(t) {
		t.Run(linkID, func(t *testing.T) {
			e := newEnv(t)
			s := mustIdentities(t, e.open(t), testKey(0xA1))
			ctx := context.Background()
			want := cache.SharedEntry{Identity: fixture(t, linkID), FetchedAt: base.Add(time.Duration(i)*time.Hour + time.Duration(i))}
			const ttl = 90 * time.Second

			start := time.Now()
			s.Set(ctx, cacheKey(linkID), want, ttl, "")
			got, ok := s.Get(ctx, cacheKey(linkID))
			roundTrip := time.Since(start)
			if !ok {
				t.Fatalf("Get after Set: miss (reports %v)", e.errs.all())
			}
			if diff := cmp.Diff(want.Identity, got.Identity, identityCmp...); diff != "" {
				t.Errorf("identity after the round trip (-want +got):\n%s", diff)
			}
			// Ages travel in milliseconds on Redis's clock: the same instant
			// within the round trip (a 500-account answer on a busy machine
			// takes a while to seal and send) and a millisecond's rounding.
			slack := roundTrip + 2*time.Millisecond
			if d := got.FetchedAt.Sub(want.FetchedAt); d < -slack || d > slack {
				t.Errorf("FetchedAt = %v, want %v (within %v)", got.FetchedAt, want.FetchedAt, slack)
			}
			if got.Identity == want.Identity {
				t.Error("Get returned the very pointer given to Set: it did not go through Redis")
			}
			e.errs.check(t)

			// What Redis holds: one key, without the link id, whose value
			// is ciphertext.
			keys := e.keys(t)
			if len(keys) != 1 {
				t.Fatalf("keys under the prefix = %q, want exactly one", keys)
			}
			rk := keys[0]
			if rk != s.redisKey("identity", cacheKey(linkID)) {
				t.Errorf("key %q is not the store's redisKey", rk)
			}
			for _, secret := range []string{linkID, testNamespace} {
				if strings.Contains(rk, secret) {
					t.Errorf("Redis key %q contains %q", rk, secret)
				}
			}
			raw, err := e.rdb.Get(ctx, rk).Bytes()
			if err != nil {
				t.Fatalf("raw GET: %v", err)
			}
			if raw[0] != sealVersion {
				t.Errorf("raw value starts with %d, want version %d", raw[0], sealVersion)
			}
			strs := personal(want.Identity)
			if len(strs) == 0 && linkID != sandbox.LinkSparse {
				t.Fatalf("fixture %s has no personal strings to look for: the check would prove nothing", linkID)
			}
			strs = append(strs, linkID, want.Identity.Link.InstitutionName, `"accounts"`, `"link_id"`, `"fetched_at"`)
			for _, p := range strs {
				if bytes.Contains(raw, []byte(p)) {
					t.Errorf("the raw Redis value contains %q in the clear", p)
				}
			}
			pttl, err := e.rdb.PTTL(ctx, rk).Result()
			if err != nil {
				t.Fatal(err)
			}
			within(t, "PTTL of the value", pttl, ttl-2*time.Second, ttl)
		})
	}
}

// Two replicas with the same key share entries, and every link has its own
// Redis key, none of which reveals the link id.
func TestIdentitiesSharedBetweenReplicas(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r1 := mustIdentities(t, e.open(t), testKey(0xA1))
	r2 := mustIdentities(t, e.open(t), testKey(0xA1))
	links := []string{sandbox.LinkSeed, sandbox.LinkHousehold, sandbox.LinkInternational, "mk_sandbox_copy_1", "mk_sandbox_copy_2"}
	fetched := time.Now()
	for _, l := range links {
		id := fixture(t, sandbox.LinkSeed)
		id.Link.LinkID = l
		r1.Set(ctx, cacheKey(l), cache.SharedEntry{Identity: id, FetchedAt: fetched}, time.Minute, "")
	}
	for _, l := range links {
		got, ok := r2.Get(ctx, cacheKey(l))
		if !ok {
			t.Errorf("replica 2 misses %s set by replica 1", l)
			continue
		}
		if got.Identity.Link.LinkID != l {
			t.Errorf("replica 2 Get(%s) returned link %s", l, got.Identity.Link.LinkID)
		}
	}
	keys := e.keys(t)
	if len(keys) != len(links) {
		t.Fatalf("%d keys for %d links: %q", len(keys), len(links), keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, e.prefix+"identity:") {
			t.Errorf("key %q is not under %sidentity:", k, e.prefix)
		}
		for _, l := range links {
			if strings.Contains(k, l) {
				t.Errorf("key %q contains link id %q", k, l)
			}
		}
	}
	// Another namespace (other credentials) is another key.
	if _, ok := r2.Get(ctx, "other-namespace\x00"+sandbox.LinkSeed); ok {
		t.Error("an entry set under one namespace is found under another")
	}
	e.errs.check(t)
}

func TestIdentitiesSetIgnored(t *testing.T) {
	tests := []struct {
		name  string
		entry cache.SharedEntry
		ttl   time.Duration
	}{
		{"zero ttl", cache.SharedEntry{Identity: fixture(t, sandbox.LinkSeed), FetchedAt: time.Now()}, 0},
		{"negative ttl", cache.SharedEntry{Identity: fixture(t, sandbox.LinkSeed), FetchedAt: time.Now()}, -time.Second},
		{"nil identity", cache.SharedEntry{FetchedAt: time.Now()}, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			s := mustIdentities(t, e.open(t), testKey(0xA1))
			s.Set(context.Background(), cacheKey(sandbox.LinkSeed), tt.entry, tt.ttl, "")
			if keys := e.keys(t); len(keys) != 0 {
				t.Errorf("Set wrote %q", keys)
			}
			if _, ok := s.Get(context.Background(), cacheKey(sandbox.LinkSeed)); ok {
				t.Error("Get found an entry")
			}
		})
	}
}

func TestIdentitiesExpire(t *testing.T) {
	e := newEnv(t)
	s := mustIdentities(t, e.open(t), testKey(0xA1))
	ctx := context.Background()
	s.Set(ctx, cacheKey(sandbox.LinkSeed), cache.SharedEntry{Identity: fixture(t, sandbox.LinkSeed), FetchedAt: time.Now()}, 100*time.Millisecond, "")
	if _, ok := s.Get(ctx, cacheKey(sandbox.LinkSeed)); !ok {
		t.Fatal("miss right after Set")
	}
	time.Sleep(150 * time.Millisecond)
	if _, ok := s.Get(ctx, cacheKey(sandbox.LinkSeed)); ok {
		t.Error("hit after the ttl")
	}
	e.errs.check(t)
}

func TestIdentitiesDelete(t *testing.T) {
	e := newEnv(t)
	r1 := mustIdentities(t, e.open(t), testKey(0xA1))
	r2 := mustIdentities(t, e.open(t), testKey(0xA1))
	ctx := context.Background()
	for _, l := range []string{sandbox.LinkSeed, sandbox.LinkHousehold} {
		r1.Set(ctx, cacheKey(l), cache.SharedEntry{Identity: fixture(t, l), FetchedAt: time.Now()}, time.Minute, "")
	}
	r2.Delete(ctx, cacheKey(sandbox.LinkSeed)) // another replica deletes
	if _, ok := r1.Get(ctx, cacheKey(sandbox.LinkSeed)); ok {
		t.Error("Get after Delete: hit")
	}
	if _, ok := r1.Get(ctx, cacheKey(sandbox.LinkHousehold)); !ok {
		t.Error("Delete of one link removed another")
	}
	if keys := e.keys(t); len(keys) != 1 || keys[0] != r1.redisKey("identity", cacheKey(sandbox.LinkHousehold)) {
		t.Errorf("keys after Delete = %q, want only the household's", keys)
	}
	r2.Delete(ctx, cacheKey("mk_never_set")) // deleting nothing is fine
	e.errs.check(t)
}

func TestIdentitiesRedisDown(t *testing.T) {
	d := openDead(t, "")
	s := mustIdentities(t, d.c, testKey(0xA1))
	ctx := context.Background()
	key := cacheKey(sandbox.LinkSeed)

	start := time.Now()
	s.Set(ctx, key, cache.SharedEntry{Identity: fixture(t, sandbox.LinkSeed), FetchedAt: time.Now()}, time.Minute, "")
	if _, ok := s.Get(ctx, key); ok {
		t.Error("Get hit with Redis down")
	}
	s.Delete(ctx, key)
	// A lock is granted when Redis fails: each replica then calls for
	// itself. Twice: no lock is held anywhere.
	for range 2 {
		unlock, _, ok := s.Lock(ctx, key, time.Minute)
		if !ok || unlock == nil {
			t.Fatal("Lock refused with Redis down")
		}
		unlock()
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("operations with Redis down took %v", el)
	}
	want := []string{OpConnect, OpCacheSet, OpCacheGet, OpCacheSet, OpLock, OpLock}
	d.errs.check(t, want...)
	if strings.Contains(d.log.String(), sandbox.LinkSeed) || strings.Contains(d.log.String(), "mkgraph-test-dead") {
		t.Errorf("the log names a key or link: %s", d.log)
	}
}
