package redisstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
)

// KeySize is the size of an identity cache encryption key: AES-256.
const KeySize = 32

// sealVersion starts every sealed value: the format below, so that a later
// format can be told apart.
const sealVersion = 2

// refreshedSize is the size of the refreshed_at trailer: Unix milliseconds,
// big-endian, 48 bits (exact in Lua's doubles, good until the year 10889).
const refreshedSize = 6

// Identities is the identity cache's Shared store in Redis. Values are
// sealed with AES-256-GCM: version (1 byte) | key id (4) | nonce (12) |
// ciphertext | refreshed_at (6), with the Redis key and refreshed_at as
// additional data, so that a value copied under another link's key does not
// open. refreshed_at (the link's identity refresh time, not personal data)
// is in the clear so that a write never replaces an answer of a newer
// refresh, decided in Redis by one script. Keys are an HMAC of the cache key
// (credentials namespace and link id), so Redis never sees a link id.
// Redis expires each value when it can no longer be served even stale.
type Identities struct {
	c    *Client
	keys []sealer // every key, the first first: the first seals, all open (rotation)
}

// sealer is one encryption key: its AEAD, its id in sealed values, and the
// HMAC key that names Redis keys sealed with it (so that a value and its
// name change together when the key does).
type sealer struct {
	id    [4]byte
	aead  cipher.AEAD
	namer []byte
}

var _ cache.Shared = (*Identities)(nil)

// NewIdentities returns the shared identity store. keys are AES-256 keys
// (KeySize bytes): the first seals, all open, so a key can be rotated by
// putting the new one first and dropping the old one after the cache's
// TTL + max-stale.
func NewIdentities(c *Client, keys [][]byte) (*Identities, error) {
	if len(keys) == 0 {
		return nil, errors.New("redisstore: an encryption key is required for the identity cache")
	}
	s := &Identities{c: c}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("redisstore: encryption key %d is %d bytes, want %d", i+1, len(k), KeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(append([]byte("mkgraph key id\x00"), k...))
		namer, err := hkdf.Key(sha256.New, k, nil, "mkgraph identity cache key names", 32)
		if err != nil {
			return nil, err
		}
		s.keys = append(s.keys, sealer{id: [4]byte(sum[:4]), aead: aead, namer: namer})
	}
	return s, nil
}

// ParseKeys parses MKGRAPH_REDIS_ENCRYPTION_KEY: comma-separated keys, each
// 32 bytes in base64 (standard or URL alphabet, padded or not) or 64 hex
// digits. The error never quotes a key.
func ParseKeys(s string) ([][]byte, error) {
	var keys [][]byte
	for i, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k, ok := decodeKey(f)
		if !ok {
			return nil, fmt.Errorf("key %d is not %d bytes in base64 or hex (make one with: openssl rand -base64 32)", i+1, KeySize)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no key given")
	}
	return keys, nil
}

func decodeKey(s string) ([]byte, bool) {
	if len(s) == 2*KeySize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, true
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == KeySize {
			return k, true
		}
	}
	return nil, false
}

// DeriveKey derives an identity cache key from the MoneyKit client secret
// (HKDF-SHA256, salted with the client id), for deployments that set no key
// of their own: every replica has the secret, nobody who only reads Redis
// does. Rotating the secret then empties the shared cache (old values no
// longer open and are refetched).
func DeriveKey(clientSecret, clientID string) []byte {
	k, err := hkdf.Key(sha256.New, []byte(clientSecret), []byte(clientID), "mkgraph identity cache v1", KeySize)
	if err != nil {
		panic(err) // only for lengths hkdf refuses; KeySize is fine
	}
	return k
}

// NameKey derives, from an encryption key, the Config.NameKey that hides
// link ids and callers in the names of budget and limit keys. (Rotating the
// key renames them: budgets and limits then start afresh, for at most a
// minute's worth.)
func NameKey(key []byte) []byte {
	k, err := hkdf.Key(sha256.New, key, nil, "mkgraph redis key names v1", 32)
	if err != nil {
		panic(err) // only for lengths hkdf refuses
	}
	return k
}

// redisKey returns the Redis key of a cache key under the sealing key, in
// namespace kind.
func (s *Identities) redisKey(kind, key string) string { return s.keyUnder(s.keys[0], kind, key) }

// keyUnder returns the Redis key of a cache key under encryption key k, in
// namespace kind.
func (s *Identities) keyUnder(k sealer, kind, key string) string {
	m := hmac.New(sha256.New, k.namer)
	m.Write([]byte(key))
	return s.c.key(kind, hex.EncodeToString(m.Sum(nil)))
}

// redisKeys returns the Redis keys of a cache key under every encryption
// key, the sealing key's first.
func (s *Identities) redisKeys(kind, key string) []string {
	out := make([]string, len(s.keys))
	for i, k := range s.keys {
		out[i] = s.keyUnder(k, kind, key)
	}
	return out
}

// payload is what a sealed value holds.
type payload struct {
	FetchedAt int64           `json:"fetched_at"`       // Unix nanoseconds, the writer's clock
	TTL       int64           `json:"ttl_ms,omitempty"` // the PX it was written with: its age is TTL − PTTL on Redis's clock
	AgeAtSet  int64           `json:"age_ms,omitempty"` // its age when written, on the writer's clock
	Identity  json.RawMessage `json:"identity"`         // MoneyKit's own encoding
}

// Get implements cache.Shared. It looks the key up under each encryption
// key's name at once (one pipeline of GET and PTTL), and opens the first
// value found. Its age is measured on Redis's clock (the TTL it was written
// with less what remains), so a replica whose clock runs ahead or behind
// does not make it look younger or older. A value that does not open
// (another key, a corrupt or foreign value) or does not decode is a miss,
// and reported.
func (s *Identities) Get(ctx context.Context, key string) (cache.SharedEntry, bool) {
	rks := s.redisKeys("identity", key)
	var b []byte
	var k sealer
	var rk string
	var pttl time.Duration
	var answered time.Time // when Redis answered, before any decoding
	err := s.c.do(ctx, OpCacheGet, func(ctx context.Context) error {
		// MULTI/EXEC: the value and its TTL read at one instant, so that
		// another replica's write cannot fall between them.
		pipe := s.c.rdb.TxPipeline()
		gets := make([]*redis.StringCmd, len(rks))
		ttls := make([]*redis.DurationCmd, len(rks))
		for i, rk := range rks {
			gets[i] = pipe.Get(ctx, rk)
			ttls[i] = pipe.PTTL(ctx, rk)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		answered = time.Now()
		// Exec reports only the first command's error: a miss there must
		// not hide a failure further on.
		for i := range gets {
			for _, err := range []error{gets[i].Err(), ttls[i].Err()} {
				if err != nil && !errors.Is(err, redis.Nil) {
					return err
				}
			}
		}
		for i, g := range gets {
			if v, err := g.Bytes(); err == nil {
				b, k, rk, pttl = v, s.keys[i], rks[i], ttls[i].Val()
				break
			}
		}
		return nil
	})
	if err != nil || b == nil {
		return cache.SharedEntry{}, false
	}
	e, ttl, ageAtSet, err := s.unseal(k, rk, b)
	if err != nil {
		s.c.failed(OpCacheGet, err)
		return cache.SharedEntry{}, false
	}
	if ttl > 0 && pttl > 0 && pttl <= ttl {
		// Age at the write (the writer's clock) plus time in Redis (its
		// clock): no two clocks compared.
		e.FetchedAt = answered.Add(-(ageAtSet + ttl - pttl))
	}
	return e, true
}

// MarkFailed implements cache.Shared: a short-lived marker (no data) that
// the upstream failed the link's call for a while.
func (s *Identities) MarkFailed(ctx context.Context, key string, ttl time.Duration) {
	rk := s.redisKey("failed", key)
	s.c.do(ctx, OpCacheSet, func(ctx context.Context) error {
		return s.c.rdb.Set(ctx, rk, "1", ttl).Err()
	})
}

// Failed implements cache.Shared. When Redis cannot say, it answers false:
// the caller then asks the upstream itself.
func (s *Identities) Failed(ctx context.Context, key string) bool {
	rk := s.redisKey("failed", key)
	var n int64
	if err := s.c.do(ctx, OpCacheGet, func(ctx context.Context) error {
		var err error
		n, err = s.c.rdb.Exists(ctx, rk).Result()
		return err
	}); err != nil {
		return false
	}
	return n == 1
}

// setScript writes a sealed value unless the one in place holds a newer
// refresh (both known): KEYS = the key; ARGV = value, PX. 1: written.
var setScript = redis.NewScript(`
local function ms(s, from)
	local v = 0
	for i = from, from + 5 do v = v * 256 + string.byte(s, i) end
	return v
end
local new = ARGV[1]
local old = redis.call("GET", KEYS[1])
if old and #old > 6 and string.byte(old, 1) == string.byte(new, 1) then
	local o, n = ms(old, #old - 5), ms(new, #new - 5)
	if o > 0 and n > 0 and o > n then return 0 end
end
redis.call("SET", KEYS[1], new, "PX", ARGV[2])
return 1`)

// Set implements cache.Shared: unless Redis holds an answer of a newer
// refresh for the link (another replica's), which it keeps.
func (s *Identities) Set(ctx context.Context, key string, e cache.SharedEntry, ttl time.Duration) {
	if ttl <= 0 || e.Identity == nil {
		return
	}
	rk := s.redisKey("identity", key)
	b, err := s.sealEntry(rk, e, ttl)
	if err != nil {
		s.c.failed(OpCacheSet, err)
		return
	}
	s.c.do(ctx, OpCacheSet, func(ctx context.Context) error {
		return setScript.Run(ctx, s.c.rdb, []string{rk}, b, ttl.Milliseconds()).Err()
	})
}

// Delete implements cache.Shared: under every key's name.
func (s *Identities) Delete(ctx context.Context, key string) {
	rks := s.redisKeys("identity", key)
	s.c.do(ctx, OpCacheSet, func(ctx context.Context) error {
		return s.c.rdb.Del(ctx, rks...).Err()
	})
}

// unlockScript deletes a lock only if it still holds our token: a lock
// that expired and was taken by another replica is not ours to release.
var unlockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// Lock implements cache.Shared with SET NX PX and a random token. When
// Redis fails the lock is granted: each replica then calls for itself, as
// without Redis. The unlock always runs (the SET may have taken effect
// though its reply was lost), deletes the lock only while it holds this
// token, and does not go through the breaker: a lock left behind would stall
// every replica's misses for the link until it expires.
func (s *Identities) Lock(ctx context.Context, key string, ttl time.Duration) (func(), bool) {
	rk := s.redisKey("lock", key)
	token := rand.Text()
	var ok bool
	err := s.c.do(ctx, OpLock, func(ctx context.Context) error {
		var err error
		ok, err = s.c.rdb.SetNX(ctx, rk, token, ttl).Result()
		return err
	})
	switch {
	case err == nil && !ok:
		return nil, false
	case err != nil && !maybeApplied(err):
		return func() {}, true // never reached Redis: nothing to release
	}
	return func() {
		// The caller's context may be over; the release must still happen.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.c.timeout)
		defer cancel()
		if err := unlockScript.Run(uctx, s.c.rdb, []string{rk}, token).Err(); err != nil {
			s.c.failed(OpLock, err)
		}
	}, true
}

func (s *Identities) sealEntry(rk string, e cache.SharedEntry, ttl time.Duration) ([]byte, error) {
	id, err := json.Marshal(e.Identity)
	if err != nil {
		return nil, fmt.Errorf("encoding an identity for the shared cache: %w", err)
	}
	age := max(time.Since(e.FetchedAt), 0) // after the costly encoding: as of the write
	plain, err := json.Marshal(payload{FetchedAt: e.FetchedAt.UnixNano(), TTL: ttl.Milliseconds(), AgeAtSet: age.Milliseconds(), Identity: id})
	if err != nil {
		return nil, err
	}
	return s.seal(s.keys[0], rk, refreshedTrailer(cache.RefreshedAt(e.Identity)), plain), nil
}

// seal returns version | key id | nonce | AES-GCM(plain) | trailer, with rk
// and the trailer as additional data.
func (s *Identities) seal(k sealer, rk string, trailer [refreshedSize]byte, plain []byte) []byte {
	nonceSize := k.aead.NonceSize()
	out := make([]byte, 1+4+nonceSize, 1+4+nonceSize+len(plain)+k.aead.Overhead()+refreshedSize)
	out[0] = sealVersion
	copy(out[1:5], k.id[:])
	rand.Read(out[5 : 5+nonceSize])
	out = k.aead.Seal(out, out[5:5+nonceSize], plain, additionalData(rk, trailer))
	return append(out, trailer[:]...)
}

func additionalData(rk string, trailer [refreshedSize]byte) []byte {
	return append([]byte(rk), trailer[:]...)
}

// refreshedTrailer encodes t as Unix milliseconds in 48 bits; zero (and
// anything before 1970) is 0, "unknown".
func refreshedTrailer(t time.Time) [refreshedSize]byte {
	var out [refreshedSize]byte
	if t.IsZero() || t.UnixMilli() <= 0 {
		return out
	}
	ms := uint64(t.UnixMilli())
	for i := refreshedSize - 1; i >= 0; i-- {
		out[i] = byte(ms)
		ms >>= 8
	}
	return out
}

var errUnseal = errors.New("a shared identity cache value did not open with the configured keys (replicas with different MKGRAPH_REDIS_ENCRYPTION_KEY, or a foreign value)")

// unseal opens b, found under rk, the name of key o, and returns the PX
// it was written with (0 if unknown) and its age then.
func (s *Identities) unseal(o sealer, rk string, b []byte) (e cache.SharedEntry, ttl, ageAtSet time.Duration, err error) {
	n := o.aead.NonceSize()
	if len(b) < 1+4+n+refreshedSize || b[0] != sealVersion || [4]byte(b[1:5]) != o.id {
		return cache.SharedEntry{}, 0, 0, errUnseal
	}
	trailer := [refreshedSize]byte(b[len(b)-refreshedSize:])
	plain, err := o.aead.Open(nil, b[5:5+n], b[5+n:len(b)-refreshedSize], additionalData(rk, trailer))
	if err != nil {
		return cache.SharedEntry{}, 0, 0, errUnseal
	}
	var p payload
	if err := json.Unmarshal(plain, &p); err != nil {
		return cache.SharedEntry{}, 0, 0, errors.New("a shared identity cache value did not decode")
	}
	id, err := upstream.DecodeIdentity(p.Identity)
	if err != nil {
		return cache.SharedEntry{}, 0, 0, errors.New("a shared identity cache value is not a valid identity answer")
	}
	return cache.SharedEntry{Identity: id, FetchedAt: time.Unix(0, p.FetchedAt)},
		time.Duration(p.TTL) * time.Millisecond, time.Duration(p.AgeAtSet) * time.Millisecond, nil
}
