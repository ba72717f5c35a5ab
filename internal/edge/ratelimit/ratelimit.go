// Package ratelimit limits requests per caller (end user or backend), in
// memory now, behind an interface a shared store (Redis) can implement later.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/edge/httperr"
)

// Limiter decides whether the caller named key may make one more request.
// When it may not, retryAfter says when it may (always > 0). An error means
// the limiter could not decide (a store was unreachable); callers let the
// request through.
type Limiter interface {
	Allow(ctx context.Context, key string) (retryAfter time.Duration, ok bool, err error)
}

// DefaultMaxKeys bounds the callers Memory remembers at once.
const DefaultMaxKeys = 100_000

// Default per-caller limits, in requests per minute: an end user's app
// rarely needs more than two a second, a backend serves many users.
const (
	DefaultUserPerMinute    = 120
	DefaultBackendPerMinute = 6000
)

// maxKeyLen is the longest key Memory stores as is; longer ones are stored
// as their SHA-256, so that memory is bounded by DefaultMaxKeys whatever the
// keys look like.
const maxKeyLen = 64

// minTTL is the least time Memory keeps an idle caller's bucket.
const minTTL = 3 * time.Minute

// Memory is the in-memory Limiter: a token bucket per key that holds burst
// tokens and refills at perMinute a minute, so a caller may send burst
// requests at once and perMinute a minute after that.
//
// Buckets live in an LRU of at most DefaultMaxKeys keys, so a caller cycling
// through keys cannot grow memory without bound, and a bucket idle for its
// TTL is dropped. Dropping a bucket forgets nothing that matters when it has
// refilled by then, which is why the TTL is at least the time a bucket takes
// to refill (and at least minTTL). An LRU eviction before that hands the
// least recently seen caller a full bucket: generous, never harsh, and only
// reachable with DefaultMaxKeys distinct callers within a TTL.
//
// Keys longer than 64 bytes are kept as their SHA-256, so memory stays
// bounded whatever the keys are.
//
// The LRU is hashicorp/golang-lru's simplelru under a mutex, with TTLs
// checked on access: the expirable LRU starts a goroutine it cannot stop.
// Memory is safe for concurrent use.
type Memory struct {
	limit   rate.Limit // tokens per second; rate.Inf: no limit
	burst   int
	ttl     time.Duration
	now     func() time.Time // the clock, replaced in tests
	mu      sync.Mutex
	buckets *simplelru.LRU[string, *bucket]
}

// bucket is one caller's token bucket and when it was last used.
type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

var _ Limiter = (*Memory)(nil)

// NewMemory returns a Memory allowing perMinute requests a minute per key
// with bursts of burst. perMinute <= 0 allows everything; burst < 1 is 1.
func NewMemory(perMinute, burst int) *Memory {
	return newMemory(perMinute, burst, DefaultMaxKeys, time.Now)
}

func newMemory(perMinute, burst, maxKeys int, now func() time.Time) *Memory {
	if burst < 1 {
		burst = 1
	}
	m := &Memory{limit: rate.Inf, burst: burst, ttl: minTTL, now: now}
	if perMinute > 0 {
		m.limit = rate.Limit(float64(perMinute) / 60)
		// Time for an empty bucket to refill, rounded up to a second.
		refill := time.Duration(math.Ceil(float64(burst)*60/float64(perMinute))) * time.Second
		m.ttl = max(minTTL, refill)
	}
	lru, err := simplelru.NewLRU[string, *bucket](maxKeys, nil)
	if err != nil {
		panic(fmt.Sprintf("ratelimit: %v", err)) // only for maxKeys <= 0, a programming error
	}
	m.buckets = lru
	return m
}

// Allow takes a token from key's bucket. It never returns an error.
func (m *Memory) Allow(_ context.Context, key string) (retryAfter time.Duration, ok bool, err error) {
	if m.limit == rate.Inf {
		return 0, true, nil
	}
	if len(key) > maxKeyLen {
		sum := sha256.Sum256([]byte(key))
		key = string(sum[:])
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Read the clock under the lock so that buckets see time move forward.
	now := m.now()
	m.dropExpired(now)
	b, found := m.buckets.Get(key)
	if !found {
		b = &bucket{lim: rate.NewLimiter(m.limit, m.burst)}
		m.buckets.Add(key, b)
	}
	b.seen = now
	if b.lim.AllowN(now, 1) {
		return 0, true, nil
	}
	// The bucket holds less than one token: the next one arrives when the
	// deficit has refilled.
	deficit := 1 - b.lim.TokensAt(now)
	retryAfter = time.Duration(math.Ceil(deficit / float64(m.limit) * float64(time.Second)))
	return max(retryAfter, time.Nanosecond), false, nil
}

// Len reports how many keys Memory holds a bucket for.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.buckets.Len()
}

// dropExpired removes the buckets idle for the TTL. The LRU orders keys by
// last use, so they are all at the old end; the cost is amortised over the
// Allow calls that created them.
func (m *Memory) dropExpired(now time.Time) {
	for {
		_, b, ok := m.buckets.GetOldest()
		if !ok || now.Sub(b.seen) < m.ttl {
			return
		}
		m.buckets.RemoveOldest()
	}
}

var errorCount, refusedCount atomic.Int64

// Errors reports how many times a Limiter failed and Middleware let the
// request through, over all Middleware of the process (for metrics).
func Errors() int64 { return errorCount.Load() }

// Refused reports how many requests Middleware refused, over all Middleware
// of the process (for metrics).
func Refused() int64 { return refusedCount.Load() }

// Middleware limits each request by the caller key(r) returns; "" is not
// limited (key decides who is: an authenticated end user's or backend's id,
// never a value the client picks freely). A refused request is answered
// HTTP 429 with facade.rate_limit_exceeded, extensions.retryAfter and a
// Retry-After header, in whole seconds rounded up.
//
// A Limiter error lets the request through: failing open keeps the facade
// serving while a shared store is down, and the upstream still enforces its
// own limits. Errors counts such requests and each is logged as a warning.
func Middleware(l Limiter, key func(*http.Request) string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			k := key(r)
			if k == "" {
				next.ServeHTTP(w, r)
				return
			}
			if e := Charge(r.Context(), l, k); e != nil {
				httperr.Write(w, r, http.StatusTooManyRequests, e)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Charge takes one request from key's allowance in l, as Middleware does
// for an HTTP request, for what arrives another way (a WebSocket's
// subscribe messages). It returns nil when the request may go ahead (also
// when l fails: the request is let through and the failure logged), else
// the refusal: facade.rate_limit_exceeded with its retryAfter. An empty key
// is not limited.
func Charge(ctx context.Context, l Limiter, key string) *apierr.Error {
	if key == "" {
		return nil
	}
	retryAfter, ok, err := l.Allow(ctx, key)
	switch {
	case err != nil:
		errorCount.Add(1)
		// The key is left out: it identifies a person.
		zerolog.Ctx(ctx).Warn().Err(err).Msg("rate limiter failed; request let through")
	case !ok:
		refusedCount.Add(1)
		secs := max(1, int(math.Ceil(retryAfter.Seconds())))
		unit := "seconds"
		if secs == 1 {
			unit = "second"
		}
		return &apierr.Error{
			Code:          apierr.CodeCallerRateLimited,
			Message:       fmt.Sprintf("Too many requests from this caller; try again in %d %s.", secs, unit),
			RetryAfter:    time.Duration(secs) * time.Second,
			HasRetryAfter: true,
		}
	}
	return nil
}
