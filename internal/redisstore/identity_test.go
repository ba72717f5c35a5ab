package redisstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream/cache"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// testNamespace stands for cache.NamespaceFor of some credentials.
var testNamespace = cache.NamespaceFor("https://api.moneykit.example", "client_test")

// cacheKey is the key upstream/cache gives the Shared store for a link.
func cacheKey(linkID string) string { return testNamespace + "\x00" + linkID }

// testKey returns an AES-256 key of one repeated byte.
func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func mustIdentities(t testing.TB, c *Client, keys ...[]byte) *Identities {
	t.Helper()
	s, err := NewIdentities(c, keys)
	if err != nil {
		t.Fatalf("NewIdentities: %v", err)
	}
	return s
}

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

			s.Set(ctx, cacheKey(linkID), want, ttl)
			got, ok := s.Get(ctx, cacheKey(linkID))
			if !ok {
				t.Fatalf("Get after Set: miss (reports %v)", e.errs.all())
			}
			if diff := cmp.Diff(want.Identity, got.Identity, identityCmp...); diff != "" {
				t.Errorf("identity after the round trip (-want +got):\n%s", diff)
			}
			// Ages travel in milliseconds on Redis's clock: the same instant
			// within the milliseconds of the round trip.
			if d := got.FetchedAt.Sub(want.FetchedAt); d < -50*time.Millisecond || d > 50*time.Millisecond {
				t.Errorf("FetchedAt = %v, want %v (within 50 ms)", got.FetchedAt, want.FetchedAt)
			}
			if got.Identity == want.Identity {
				t.Error("Get returned the very pointer given to Set: it did not go through Redis")
			}
			if r := e.errs.all(); len(r) != 0 {
				t.Errorf("OnError reports %v, want none", r)
			}

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
		r1.Set(ctx, cacheKey(l), cache.SharedEntry{Identity: id, FetchedAt: fetched}, time.Minute)
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
	if r := e.errs.all(); len(r) != 0 {
		t.Errorf("OnError reports %v, want none", r)
	}
}

// A value that does not open, or does not decode, is a miss and reported.
func TestIdentitiesForeignValues(t *testing.T) {
	sealedElsewhere := func(t *testing.T, e *env, s *Identities) []byte {
		// A genuine value of another link, copied.
		other := cacheKey(sandbox.LinkHousehold)
		s.Set(context.Background(), other, cache.SharedEntry{Identity: fixture(t, sandbox.LinkHousehold), FetchedAt: time.Now()}, time.Minute)
		b, err := e.rdb.Get(context.Background(), s.redisKey("identity", other)).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	genuine := func(t *testing.T, e *env, s *Identities) []byte {
		s.Set(context.Background(), cacheKey(sandbox.LinkSeed), cache.SharedEntry{Identity: fixture(t, sandbox.LinkSeed), FetchedAt: time.Now()}, time.Minute)
		b, err := e.rdb.Get(context.Background(), s.redisKey("identity", cacheKey(sandbox.LinkSeed))).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name  string
		value func(t *testing.T, e *env, s *Identities) []byte
	}{
		{"copied from another link's key", sealedElsewhere},
		{"one ciphertext byte flipped", func(t *testing.T, e *env, s *Identities) []byte {
			b := genuine(t, e, s)
			b[len(b)-20] ^= 0x01
			return b
		}},
		{"nonce byte flipped", func(t *testing.T, e *env, s *Identities) []byte {
			b := genuine(t, e, s)
			b[6] ^= 0x80
			return b
		}},
		{"truncated tag", func(t *testing.T, e *env, s *Identities) []byte {
			b := genuine(t, e, s)
			return b[:len(b)-1]
		}},
		{"header only", func(t *testing.T, e *env, s *Identities) []byte { return genuine(t, e, s)[:5] }},
		{"header and half a nonce", func(t *testing.T, e *env, s *Identities) []byte { return genuine(t, e, s)[:10] }},
		{"another version", func(t *testing.T, e *env, s *Identities) []byte {
			b := genuine(t, e, s)
			b[0] = sealVersion + 1
			return b
		}},
		{"another key id", func(t *testing.T, e *env, s *Identities) []byte {
			b := genuine(t, e, s)
			b[1] ^= 0xff
			return b
		}},
		{"plain JSON", func(t *testing.T, e *env, s *Identities) []byte {
			return []byte(`{"fetched_at":1,"identity":{"link":{"link_id":"mk_eqkWN34UEoa2NxyALG8pcV"}}}`)
		}},
		{"three bytes", func(*testing.T, *env, *Identities) []byte { return []byte{1, 2, 3} }},
		{"empty", func(*testing.T, *env, *Identities) []byte { return []byte{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			s := mustIdentities(t, e.open(t), testKey(0xA1))
			ctx := context.Background()
			b := tt.value(t, e, s)
			rk := s.redisKey("identity", cacheKey(sandbox.LinkSeed))
			if err := e.rdb.Set(ctx, rk, b, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			if got, ok := s.Get(ctx, cacheKey(sandbox.LinkSeed)); ok {
				t.Fatalf("Get opened a foreign value: %+v", got.Identity.Link)
			}
			if got, want := e.errs.all(), []string{OpCacheGet}; !cmp.Equal(got, want) {
				t.Errorf("OnError reports %v, want %v", got, want)
			}
		})
	}
}

// A value sealed with a crafted payload that opens but is no identity is a
// miss too (the key holder is trusted, the payload is still checked).
func TestIdentitiesUndecodablePayload(t *testing.T) {
	tests := []struct{ name, plain string }{
		{"not JSON", "not json"},
		{"no link id", `{"fetched_at":1,"identity":{"accounts":[]}}`},
		{"identity null", `{"fetched_at":1,"identity":null}`},
		{"trailing data", `{"fetched_at":1,"identity":{"link":{"link_id":"x"}}} x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			s := mustIdentities(t, e.open(t), testKey(0xA1))
			ctx := context.Background()
			rk := s.redisKey("identity", cacheKey(sandbox.LinkSeed))
			out := s.seal(s.keys[0], rk, [refreshedSize]byte{}, []byte(tt.plain))
			if err := e.rdb.Set(ctx, rk, out, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			if _, ok := s.Get(ctx, cacheKey(sandbox.LinkSeed)); ok {
				t.Fatal("Get served an undecodable payload")
			}
			if got, want := e.errs.all(), []string{OpCacheGet}; !cmp.Equal(got, want) {
				t.Errorf("OnError reports %v, want %v", got, want)
			}
		})
	}
}

func TestIdentitiesKeys(t *testing.T) {
	a, b, c := testKey(0xA1), testKey(0xB2), testKey(0xC3)
	tests := []struct {
		name       string
		seal, read [][]byte
		want       bool
		caught     string // the bug this case caught (fixed)
	}{
		{"same key", [][]byte{a}, [][]byte{a}, true, ""},
		{"another key", [][]byte{a}, [][]byte{b}, false, ""},
		{"rotation: new key first, old key second", [][]byte{a}, [][]byte{b, a}, true,
			"identity.go:77 derives the key-name HMAC key (macer) from keys[0] only, so after rotation ([B, A]) values sealed with A are looked up under another Redis key (and their AAD is that other key): rotation never opens old values"},
		{"rotation: old replica reads the first new value", [][]byte{b, a}, [][]byte{a}, false, ""},
		{"old key first, extra key", [][]byte{a}, [][]byte{a, c}, true, ""},
		{"several keys none matching", [][]byte{a}, [][]byte{b, c}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			writer := mustIdentities(t, e.open(t), tt.seal...)
			reader := mustIdentities(t, e.open(t), tt.read...)
			want := fixture(t, sandbox.LinkInternational)
			writer.Set(ctx, cacheKey(sandbox.LinkInternational), cache.SharedEntry{Identity: want, FetchedAt: time.Now()}, time.Minute)
			got, ok := reader.Get(ctx, cacheKey(sandbox.LinkInternational))
			if ok != tt.want {
				t.Fatalf("Get ok = %v, want %v (reports %v)", ok, tt.want, e.errs.all())
			}
			if ok {
				if diff := cmp.Diff(want, got.Identity, identityCmp...); diff != "" {
					t.Errorf("identity (-want +got):\n%s", diff)
				}
			}
			if ok || reader.redisKey("identity", "k") != writer.redisKey("identity", "k") {
				return
			}
			// Same Redis key, and it did not open: a misconfiguration worth
			// reporting.
			if got := e.errs.count(OpCacheGet); got != 1 {
				t.Errorf("OpCacheGet reported %d times, want 1", got)
			}
		})
	}
}

// A value sealed with one key, put where a store with another key looks,
// does not open and is reported: the AEAD refuses it, not just the key
// name.
func TestIdentitiesWrongKeyRefusedByCipher(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sa := mustIdentities(t, e.open(t), testKey(0xA1))
	sb := mustIdentities(t, e.open(t), testKey(0xB2))
	key := cacheKey(sandbox.LinkSeed)
	sa.Set(ctx, key, cache.SharedEntry{Identity: fixture(t, sandbox.LinkSeed), FetchedAt: time.Now()}, time.Minute)
	if _, ok := sb.Get(ctx, key); ok {
		t.Fatal("a store with another key found the value")
	}
	if n := len(e.errs.all()); n != 0 {
		t.Fatalf("a plain miss was reported: %v", e.errs.all())
	}
	raw, err := e.rdb.Get(ctx, sa.redisKey("identity", key)).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range [][]byte{
		raw,
		// Same bytes but claiming b's key id: GCM must still refuse.
		append(append([]byte{raw[0]}, sb.keys[0].id[:]...), raw[5:]...),
	} {
		if err := e.rdb.Set(ctx, sb.redisKey("identity", key), v, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if _, ok := sb.Get(ctx, key); ok {
			t.Fatal("a value sealed with another key opened")
		}
	}
	if got := e.errs.count(OpCacheGet); got != 2 {
		t.Errorf("OpCacheGet reported %d times, want 2", got)
	}
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
			s.Set(context.Background(), cacheKey(sandbox.LinkSeed), tt.entry, tt.ttl)
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
	s.Set(ctx, cacheKey(sandbox.LinkSeed), cache.SharedEntry{Identity: fixture(t, sandbox.LinkSeed), FetchedAt: time.Now()}, 100*time.Millisecond)
	if _, ok := s.Get(ctx, cacheKey(sandbox.LinkSeed)); !ok {
		t.Fatal("miss right after Set")
	}
	time.Sleep(150 * time.Millisecond)
	if _, ok := s.Get(ctx, cacheKey(sandbox.LinkSeed)); ok {
		t.Error("hit after the ttl")
	}
	if r := e.errs.all(); len(r) != 0 {
		t.Errorf("OnError reports %v, want none", r)
	}
}

func TestIdentitiesDelete(t *testing.T) {
	e := newEnv(t)
	r1 := mustIdentities(t, e.open(t), testKey(0xA1))
	r2 := mustIdentities(t, e.open(t), testKey(0xA1))
	ctx := context.Background()
	for _, l := range []string{sandbox.LinkSeed, sandbox.LinkHousehold} {
		r1.Set(ctx, cacheKey(l), cache.SharedEntry{Identity: fixture(t, l), FetchedAt: time.Now()}, time.Minute)
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
	if r := e.errs.all(); len(r) != 0 {
		t.Errorf("OnError reports %v, want none", r)
	}
}

func TestIdentitiesLock(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r1 := mustIdentities(t, e.open(t), testKey(0xA1))
	r2 := mustIdentities(t, e.open(t), testKey(0xA1))
	key := cacheKey(sandbox.LinkSeed)

	unlock, ok := r1.Lock(ctx, key, time.Minute)
	if !ok || unlock == nil {
		t.Fatalf("first Lock = %v, %v; want granted", unlock != nil, ok)
	}
	for name, s := range map[string]*Identities{"same replica": r1, "other replica": r2} {
		if u, ok := s.Lock(ctx, key, time.Minute); ok || u != nil {
			t.Errorf("second Lock (%s) = %v, %v; want refused with a nil unlock", name, u != nil, ok)
		}
	}
	u2, ok := r2.Lock(ctx, cacheKey(sandbox.LinkHousehold), time.Minute)
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
	u3, ok := r2.Lock(ctx, key, time.Minute)
	if !ok {
		t.Fatal("Lock after unlock refused")
	}
	u3()
	if r := e.errs.all(); len(r) != 0 {
		t.Errorf("OnError reports %v, want none", r)
	}
}

// unlock must work with the caller's context canceled: the cache calls it
// when its caller may have left.
func TestIdentitiesUnlockAfterCancel(t *testing.T) {
	e := newEnv(t)
	s := mustIdentities(t, e.open(t), testKey(0xA1))
	ctx, cancel := context.WithCancel(context.Background())
	unlock, ok := s.Lock(ctx, cacheKey(sandbox.LinkSeed), time.Minute)
	if !ok {
		t.Fatal("Lock refused")
	}
	cancel()
	unlock()
	if _, ok := s.Lock(context.Background(), cacheKey(sandbox.LinkSeed), time.Minute); !ok {
		t.Error("the lock was not released by an unlock whose context was canceled")
	}
	if r := e.errs.all(); len(r) != 0 {
		t.Errorf("OnError reports %v, want none", r)
	}
}

func TestIdentitiesLockExpiry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := mustIdentities(t, e.open(t), testKey(0xA1))
	b := mustIdentities(t, e.open(t), testKey(0xA1))
	key := cacheKey(sandbox.LinkSeed)
	const ttl = 100 * time.Millisecond

	unlockA, ok := a.Lock(ctx, key, ttl)
	if !ok {
		t.Fatal("A's Lock refused")
	}
	if _, ok := b.Lock(ctx, key, ttl); ok {
		t.Fatal("B's Lock granted while A holds the lock")
	}
	pttl, err := e.rdb.PTTL(ctx, a.redisKey("lock", key)).Result()
	if err != nil {
		t.Fatal(err)
	}
	within(t, "PTTL of a 100ms lock", pttl, 0, ttl)

	time.Sleep(ttl + 50*time.Millisecond)
	unlockB, ok := b.Lock(ctx, key, time.Minute)
	if !ok {
		t.Fatal("B's Lock refused after A's lock expired")
	}
	// A, late, releases what it thinks is its lock: B's must stay.
	unlockA()
	if _, ok := a.Lock(ctx, key, time.Minute); ok {
		t.Fatal("A's late unlock released B's lock")
	}
	unlockB()
	unlockC, ok := a.Lock(ctx, key, time.Minute)
	if !ok {
		t.Fatal("Lock refused after B's unlock")
	}
	unlockC()
	unlockC() // twice is harmless
	if r := e.errs.all(); len(r) != 0 {
		t.Errorf("OnError reports %v, want none", r)
	}
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
			if u, ok := stores[i%2].Lock(context.Background(), cacheKey(sandbox.LinkSeed), time.Minute); ok {
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

func TestIdentitiesRedisDown(t *testing.T) {
	d := openDead(t, "")
	s := mustIdentities(t, d.c, testKey(0xA1))
	ctx := context.Background()
	key := cacheKey(sandbox.LinkSeed)

	start := time.Now()
	s.Set(ctx, key, cache.SharedEntry{Identity: fixture(t, sandbox.LinkSeed), FetchedAt: time.Now()}, time.Minute)
	if _, ok := s.Get(ctx, key); ok {
		t.Error("Get hit with Redis down")
	}
	s.Delete(ctx, key)
	// A lock is granted when Redis fails: each replica then calls for
	// itself. Twice: no lock is held anywhere.
	for range 2 {
		unlock, ok := s.Lock(ctx, key, time.Minute)
		if !ok || unlock == nil {
			t.Fatal("Lock refused with Redis down")
		}
		unlock()
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("operations with Redis down took %v", el)
	}
	want := []string{OpConnect, OpCacheSet, OpCacheGet, OpCacheSet, OpLock, OpLock}
	if got := d.errs.all(); !cmp.Equal(got, want) {
		t.Errorf("OnError reports %v, want %v", got, want)
	}
	if strings.Contains(d.log.String(), sandbox.LinkSeed) || strings.Contains(d.log.String(), "mkgraph-test-dead") {
		t.Errorf("the log names a key or link: %s", d.log)
	}
}

func TestNewIdentitiesRejects(t *testing.T) {
	c := &Client{} // NewIdentities does not use it
	tests := []struct {
		name string
		keys [][]byte
	}{
		{"no key", nil},
		{"empty list", [][]byte{}},
		{"16-byte key", [][]byte{bytes.Repeat([]byte("k"), 16)}},
		{"33-byte key", [][]byte{bytes.Repeat([]byte("k"), 33)}},
		{"second key short", [][]byte{testKey(1), bytes.Repeat([]byte("k"), 31)}},
		{"empty key", [][]byte{{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewIdentities(c, tt.keys)
			if err == nil || s != nil {
				t.Fatalf("NewIdentities = %v, %v; want an error", s, err)
			}
			for _, k := range tt.keys {
				if len(k) > 0 && strings.Contains(err.Error(), string(k)) {
					t.Errorf("error %q quotes a key", err)
				}
			}
		})
	}
}

func TestParseKeys(t *testing.T) {
	// Bytes whose base64 has '+' and '/' (so standard and URL alphabets
	// differ) and a trailing '=' when padded.
	key := bytes.Repeat([]byte{0xfb, 0xef, 0xbe, 0xff}, 8)
	other := testKey(0x42)
	std := base64.StdEncoding.EncodeToString(key)
	if !strings.ContainsAny(std, "+/") || !strings.HasSuffix(std, "=") {
		t.Fatalf("test key %q does not exercise the alphabets", std)
	}
	tests := []struct {
		name string
		in   string
		want [][]byte
	}{
		{"base64 standard padded", std, [][]byte{key}},
		{"base64 standard raw", base64.RawStdEncoding.EncodeToString(key), [][]byte{key}},
		{"base64 URL padded", base64.URLEncoding.EncodeToString(key), [][]byte{key}},
		{"base64 URL raw", base64.RawURLEncoding.EncodeToString(key), [][]byte{key}},
		{"hex lower", hex.EncodeToString(key), [][]byte{key}},
		{"hex upper", strings.ToUpper(hex.EncodeToString(key)), [][]byte{key}},
		{"spaces around", "  " + std + "\t", [][]byte{key}},
		{"two keys, order kept", hex.EncodeToString(other) + ", " + std, [][]byte{other, key}},
		{"empty fields skipped", "," + std + ",,", [][]byte{key}},
		{"64 hex digits that are also base64 decode as hex", strings.Repeat("ab", 32), [][]byte{bytes.Repeat([]byte{0xab}, 32)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeys(tt.in)
			if err != nil {
				t.Fatalf("ParseKeys: %v", err)
			}
			if !cmp.Equal(got, tt.want) {
				t.Errorf("ParseKeys = %x, want %x", got, tt.want)
			}
		})
	}

	bad := []struct {
		name, in, secret string
	}{
		{"31 bytes base64", base64.StdEncoding.EncodeToString(key[:31]), base64.StdEncoding.EncodeToString(key[:31])},
		{"33 bytes base64", base64.StdEncoding.EncodeToString(append(key, 1)), base64.StdEncoding.EncodeToString(append(key, 1))},
		{"16 bytes base64", base64.StdEncoding.EncodeToString(key[:16]), base64.StdEncoding.EncodeToString(key[:16])},
		{"63 hex digits", hex.EncodeToString(key)[:63], hex.EncodeToString(key)[:63]},
		{"65 hex digits", hex.EncodeToString(key) + "a", hex.EncodeToString(key) + "a"},
		{"62 hex digits", hex.EncodeToString(key[:31]), hex.EncodeToString(key[:31])},
		{"64 non-hex characters", strings.Repeat("zq", 32), strings.Repeat("zq", 32)},
		{"a passphrase", "correct horse battery staple!", "correct horse battery staple!"},
		{"second of two bad", std + ",hunter2-not-a-key-at-all", "hunter2-not-a-key-at-all"},
		{"empty", "", ""},
		{"only commas and spaces", " , ,", ""},
	}
	for _, tt := range bad {
		t.Run("rejects "+tt.name, func(t *testing.T) {
			got, err := ParseKeys(tt.in)
			if err == nil {
				t.Fatalf("ParseKeys(%q) = %x, want an error", tt.in, got)
			}
			if got != nil {
				t.Errorf("ParseKeys returned keys %x with its error", got)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error %q quotes the key", err)
			}
			if strings.Contains(err.Error(), std) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q quotes a key", err)
			}
		})
	}
	if _, err := ParseKeys(std + ",hunter2-not-a-key-at-all"); err == nil || !strings.Contains(err.Error(), "key 2") {
		t.Errorf("error %v does not say which key is bad", err)
	}
}

func TestDeriveKey(t *testing.T) {
	base := DeriveKey("secret", "client")
	if len(base) != KeySize {
		t.Fatalf("DeriveKey returned %d bytes, want %d", len(base), KeySize)
	}
	if again := DeriveKey("secret", "client"); !bytes.Equal(again, base) {
		t.Error("DeriveKey is not deterministic")
	}
	tests := []struct{ name, secret, clientID string }{
		{"another secret", "secret2", "client"},
		{"another client id", "secret", "client2"},
		{"empty client id", "secret", ""},
		{"boundary moved", "secretc", "lient"},
		{"swapped", "client", "secret"},
	}
	seen := map[string]string{hex.EncodeToString(base): "base"}
	for _, tt := range tests {
		k := DeriveKey(tt.secret, tt.clientID)
		if len(k) != KeySize {
			t.Errorf("%s: %d bytes", tt.name, len(k))
		}
		if prev, dup := seen[hex.EncodeToString(k)]; dup {
			t.Errorf("%s derives the same key as %s", tt.name, prev)
		}
		seen[hex.EncodeToString(k)] = tt.name
	}
	// Not the secret, nor a plain hash of it.
	if sum := sha256.Sum256([]byte("secret")); bytes.Equal(base, sum[:]) || bytes.Contains(base, []byte("secret")) {
		t.Error("DeriveKey is a plain hash of the secret")
	}
	// A derived key works as an identity key.
	if _, err := NewIdentities(&Client{}, [][]byte{base}); err != nil {
		t.Errorf("NewIdentities(DeriveKey(...)): %v", err)
	}
}
