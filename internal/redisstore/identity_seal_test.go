package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream/cache"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// A value that does not open, or does not decode, is a miss and reported.
func TestIdentitiesForeignValues(t *testing.T) {
	sealedElsewhere := func(t *testing.T, e *env, s *Identities) []byte {
		// A genuine value of another link, copied.
		other := cacheKey(sandbox.LinkHousehold)
		s.Set(context.Background(), other, cache.SharedEntry{Identity: fixture(t, sandbox.LinkHousehold), FetchedAt: time.Now()}, time.Minute, "")
		b, err := e.rdb.Get(context.Background(), s.redisKey("identity", other)).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	genuine := func(t *testing.T, e *env, s *Identities) []byte {
		s.Set(context.Background(), cacheKey(sandbox.LinkSeed), cache.SharedEntry{Identity: fixture(t, sandbox.LinkSeed), FetchedAt: time.Now()}, time.Minute, "")
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
			e.errs.check(t, OpCacheGet)
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
			e.errs.check(t, OpCacheGet)
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
			writer.Set(ctx, cacheKey(sandbox.LinkInternational), cache.SharedEntry{Identity: want, FetchedAt: time.Now()}, time.Minute, "")
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
	sa.Set(ctx, key, cache.SharedEntry{Identity: fixture(t, sandbox.LinkSeed), FetchedAt: time.Now()}, time.Minute, "")
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
