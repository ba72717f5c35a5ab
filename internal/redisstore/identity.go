package redisstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mkgraph/mkgraph/upstream/cache"
)

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
// refresh (both known), or the writer's lease no longer holds the lock:
// KEYS = the key, its lock; ARGV = value, PX, lease ("": none).
// 1: written; 0: a newer refresh kept; -1: the lease is lost.
var setScript = redis.NewScript(`
local function ms(s, from)
	local v = 0
	for i = from, from + 5 do v = v * 256 + string.byte(s, i) end
	return v
end
if ARGV[3] ~= "" and redis.call("GET", KEYS[2]) ~= ARGV[3] then return -1 end
local new = ARGV[1]
local old = redis.call("GET", KEYS[1])
if old and #old > 6 and string.byte(old, 1) == string.byte(new, 1) then
	local o, n = ms(old, #old - 5), ms(new, #new - 5)
	if o > 0 and n > 0 and o > n then return 0 end
end
redis.call("SET", KEYS[1], new, "PX", ARGV[2])
return 1`)

// Set implements cache.Shared: unless Redis holds an answer of a newer
// refresh for the link (another replica's), which it keeps, or the lease
// (when given) no longer holds the link's lock, which is
// cache.ErrLeaseLost: an Invalidate broke it (the answer may predate the
// change), or it expired. The check and the write are one script, so no
// Invalidate falls between them.
func (s *Identities) Set(ctx context.Context, key string, e cache.SharedEntry, ttl time.Duration, lease string) error {
	if ttl <= 0 || e.Identity == nil {
		return nil
	}
	rk := s.redisKey("identity", key)
	b, err := s.sealEntry(rk, e, ttl)
	if err != nil {
		s.c.failed(OpCacheSet, err)
		return nil
	}
	var n int64
	if err := s.c.do(ctx, OpCacheSet, func(ctx context.Context) error {
		var err error
		n, err = setScript.Run(ctx, s.c.rdb, []string{rk, s.redisKey("lock", key)}, b, ttl.Milliseconds(), lease).Int64()
		return err
	}); err != nil {
		return nil
	}
	if n < 0 {
		return cache.ErrLeaseLost
	}
	return nil
}

// Delete implements cache.Shared: under every key's name.
func (s *Identities) Delete(ctx context.Context, key string) {
	rks := s.redisKeys("identity", key)
	s.c.do(ctx, OpCacheSet, func(ctx context.Context) error {
		return s.c.rdb.Del(ctx, rks...).Err()
	})
}

// Invalidate implements cache.Shared: one DEL of the value and of the lock,
// under every key's name. A replica whose upstream call holds the lock then
// writes nothing (its lease is gone), and the next caller takes the lock.
func (s *Identities) Invalidate(ctx context.Context, key string) error {
	rks := append(s.redisKeys("identity", key), s.redisKeys("lock", key)...)
	return s.c.do(ctx, OpCacheSet, func(ctx context.Context) error {
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
// every replica's misses for the link until it expires. The token is the
// lease for Set; "" when the SET never reached Redis.
func (s *Identities) Lock(ctx context.Context, key string, ttl time.Duration) (func(), string, bool) {
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
		return nil, "", false
	case err != nil && !maybeApplied(err):
		return func() {}, "", true // never reached Redis: nothing to release, no lease
	}
	return func() {
		// The caller's context may be over; the release must still happen.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.c.timeout)
		defer cancel()
		if err := unlockScript.Run(uctx, s.c.rdb, []string{rk}, token).Err(); err != nil {
			s.c.failed(OpLock, err)
		}
	}, token, true
}
