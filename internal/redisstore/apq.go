package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// DefaultAPQTTL is how long Redis keeps a registered query text that no
// replica has read from it since (a read renews it).
const DefaultAPQTTL = time.Hour

// Bound of the registrations one replica writes to Redis: gqlgen registers a
// text before it is parsed or validated, so any caller can register as many
// as its rate limit allows. Redis holds at most replicas × (apqBurst +
// apqPerSecond × TTL) texts, each at most MKGRAPH_MAX_QUERY_BYTES (about
// 3,700 per replica, ≤ 60 MB at the 16 KiB maximum, a few MB for real
// queries). Registrations beyond it stay in the replica's own LRU.
const (
	apqPerSecond = 1
	apqBurst     = 100
)

// APQ is gqlgen's automatic persisted query store shared by replicas: a
// query registered on one replica is found by hash on the others. A local
// LRU answers repeat lookups without a round trip, and is all there is when
// Redis fails. Texts read from Redis are checked against their hash, so a
// value planted in Redis cannot stand for another query.
type APQ struct {
	c      *Client
	local  *lru.LRU[string]
	ttl    time.Duration
	writes *rate.Limiter // registrations written to Redis
}

var _ graphql.Cache[string] = (*APQ)(nil)

// NewAPQ returns the shared APQ store with a local LRU of size entries.
func NewAPQ(c *Client, size int, ttl time.Duration) *APQ {
	if ttl <= 0 {
		ttl = DefaultAPQTTL
	}
	return &APQ{c: c, local: lru.New[string](max(1, size)), ttl: ttl, writes: rate.NewLimiter(apqPerSecond, apqBurst)}
}

// Get implements graphql.Cache.
func (a *APQ) Get(ctx context.Context, hash string) (string, bool) {
	if q, ok := a.local.Get(ctx, hash); ok {
		return q, true
	}
	if len(hash) != sha256.Size*2 {
		return "", false // not a SHA-256: no such query, and no giant key
	}
	var q string
	found := false
	err := a.c.do(ctx, OpAPQGet, func(ctx context.Context) error {
		var err error
		q, err = a.c.rdb.GetEx(ctx, a.c.key("apq", hash), a.ttl).Result()
		switch {
		case errors.Is(err, redis.Nil):
			return nil
		case err != nil:
			return err
		}
		found = true
		return nil
	})
	if err != nil || !found {
		return "", false
	}
	sum := sha256.Sum256([]byte(q))
	if hex.EncodeToString(sum[:]) != hash {
		a.c.failed(OpAPQGet, errors.New("a persisted query in Redis does not match its hash"))
		return "", false
	}
	a.local.Add(ctx, hash, q)
	return q, true
}

// Add implements graphql.Cache.
func (a *APQ) Add(ctx context.Context, hash, query string) {
	a.local.Add(ctx, hash, query)
	sum := sha256.Sum256([]byte(query))
	if hex.EncodeToString(sum[:]) != hash || !a.writes.Allow() {
		return // gqlgen checked the hash already; never a foreign name in Redis
	}
	a.c.do(ctx, OpAPQSet, func(ctx context.Context) error {
		return a.c.rdb.Set(ctx, a.c.key("apq", hash), query, a.ttl).Err()
	})
}
