// Package redisstore shares the facade's state between replicas through
// Redis (github.com/redis/go-redis/v9): the identity cache (encrypted), the
// automatic persisted queries, the upstream rate budgets and the per-caller
// rate limits.
//
// Each store here wraps the in-memory implementation the facade uses
// without Redis, and falls back to it whenever Redis fails: a Redis error
// never fails a query. Every fallback is counted (Config.OnError, for
// mkgraph_redis_errors_total) and logged as a warning, at most once per
// operation every few seconds. A circuit breaker stops asking a Redis that
// keeps failing for a short cooldown, so that a dead Redis costs no
// timeout per request.
//
// Nothing personal reaches Redis in the clear: identity answers are
// encrypted with AES-GCM, and every key that would hold a link id, a user id
// or an API key name holds an HMAC or hash of it instead.
package redisstore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/sony/gobreaker/v2"
)

// Defaults for Config.
const (
	DefaultPrefix  = "mkgraph:"
	DefaultTimeout = 250 * time.Millisecond
	// warnEvery bounds how often one operation's failures are logged.
	warnEvery = 10 * time.Second
	// breakerFailures consecutive failures open the breaker for
	// breakerCooldown, during which Redis is not asked.
	breakerFailures = 3
	breakerCooldown = 2 * time.Second
	// DefaultProbeInterval is how often a PING checks Redis in the
	// background, so that Down tells the truth on an idle replica too.
	DefaultProbeInterval = 5 * time.Second
)

// Operations passed to Config.OnError (the same names as the metrics
// package's Redis… constants).
const (
	OpConnect   = "connect"
	OpCacheGet  = "cache_get"
	OpCacheSet  = "cache_set"
	OpAPQGet    = "apq_get"
	OpAPQSet    = "apq_set"
	OpBudget    = "budget"
	OpRateLimit = "rate_limit"
	OpLock      = "lock"
)

// Config configures a Client.
type Config struct {
	// URL is a redis:// or rediss:// URL (go-redis's ParseURL), e.g.
	// redis://:password@127.0.0.1:6379/0. Required.
	URL string
	// Prefix starts every key, so that several deployments can share one
	// Redis. "": DefaultPrefix.
	Prefix string
	// Timeout bounds each Redis operation (dial, read, write), so that a
	// slow Redis slows a request by at most this much before the in-memory
	// fallback answers. 0: DefaultTimeout.
	Timeout time.Duration
	// Log receives the fallback warnings. It never sees keys or values.
	Log zerolog.Logger
	// OnError, when set, is told each fallback by operation (Op…).
	OnError func(op string)
	// NameKey, when set, keys an HMAC-SHA256 of the link ids and caller keys
	// in Redis key names (budgets, caller limits), so that reading Redis
	// does not tell which user or link was active by a dictionary of
	// SHA-256s. nil: plain SHA-256.
	NameKey []byte
	// ProbeInterval is how often a background PING updates Down while the
	// Client is open. 0: DefaultProbeInterval.
	ProbeInterval time.Duration
}

// Client is a Redis connection pool shared by the stores of this package,
// with the fallback reporting and the breaker they share.
type Client struct {
	rdb     *redis.Client
	prefix  string
	timeout time.Duration
	log     zerolog.Logger
	onError func(string)
	breaker *gobreaker.CircuitBreaker[any]
	addr    string // host:port, for logs (never the URL: it may hold a password)
	nameKey []byte

	warnMu   sync.Mutex
	lastWarn map[string]time.Time
	muted    map[string]int

	// down is set by every failure (a probe's included) and cleared by
	// every success: Redis's state as last seen, whatever the breaker.
	down       atomic.Bool
	stopProbe  context.CancelFunc
	probeDone  chan struct{}
	closeOnce  sync.Once
	closeError error
}

// Open parses cfg.URL and returns a Client. An unparsable URL is an error;
// an unreachable Redis is not (the client warns, counts OpConnect, and
// serves from memory until Redis answers).
func Open(ctx context.Context, cfg Config) (*Client, error) {
	opts, err := redis.ParseURL(cfg.URL)
	if err != nil {
		// go-redis's message may quote the URL, password included.
		return nil, errors.New("redisstore: the Redis URL is not a valid redis:// or rediss:// URL")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	opts.DialTimeout = 2 * cfg.Timeout
	opts.ReadTimeout = cfg.Timeout
	opts.WriteTimeout = cfg.Timeout
	opts.PoolTimeout = cfg.Timeout
	opts.ContextTimeoutEnabled = true
	// The fallback is the retry: a command sent again after a lost reply
	// could take a lock or a budget slot twice. (0 means go-redis's default
	// of 3; -1 is none.) A refused dial fails at once.
	opts.MaxRetries = -1
	opts.DialerRetries = 1
	opts.DisableIdentity = true
	c := &Client{
		rdb:      redis.NewClient(opts),
		prefix:   cfg.Prefix,
		timeout:  cfg.Timeout,
		log:      cfg.Log,
		onError:  cfg.OnError,
		addr:     opts.Addr,
		nameKey:  cfg.NameKey,
		lastWarn: map[string]time.Time{},
		muted:    map[string]int{},
	}
	c.breaker = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:        "redis",
		MaxRequests: 1,
		Timeout:     breakerCooldown,
		ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= breakerFailures },
		// A caller that left or ran out of time says nothing about Redis.
		IsExcluded: func(err error) bool { return errors.Is(err, errCallerGone) },
	})
	redisLogOnce.Do(func() { redis.SetLogger(quietLogger{}) })
	pctx, cancel := context.WithTimeout(ctx, 4*cfg.Timeout)
	defer cancel()
	if err := c.rdb.Ping(pctx).Err(); err != nil {
		c.failed(OpConnect, err)
	} else {
		c.log.Info().Str("redis", c.addr).Msg("Redis connected: replicas share the identity cache, APQ, rate budgets and caller limits")
	}
	every := cfg.ProbeInterval
	if every <= 0 {
		every = DefaultProbeInterval
	}
	var probeCtx context.Context
	probeCtx, c.stopProbe = context.WithCancel(context.WithoutCancel(ctx))
	c.probeDone = make(chan struct{})
	go c.probe(probeCtx, every)
	return c, nil
}

// probe PINGs Redis every interval until ctx ends, so that Down follows
// Redis on a replica that serves no request (or only requests that touch no
// Redis state). Its failures are neither counted nor logged as fallbacks
// (no request fell back); that Redis answers again is logged once.
func (c *Client) probe(ctx context.Context, every time.Duration) {
	defer close(c.probeDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, c.timeout)
		err := c.rdb.Ping(pctx).Err()
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			c.down.Store(true)
		case c.down.Swap(false):
			c.log.Info().Str("redis", c.addr).Msg("Redis answers again")
		}
	}
}

// Down reports whether Redis is failing: its last operation or background
// PING failed, or the breaker has stopped asking it (after repeated
// failures, for a cooldown). This replica is then on its in-memory state.
func (c *Client) Down() bool { return c.down.Load() || c.breaker.State() == gobreaker.StateOpen }

// Close stops the background PING and closes the pool. It is safe to call
// more than once.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.stopProbe()
		<-c.probeDone
		c.closeError = c.rdb.Close()
	})
	return c.closeError
}

// Redis returns the underlying go-redis client (for tests and tools).
func (c *Client) Redis() *redis.Client { return c.rdb }

// key returns the full key of name in namespace kind.
func (c *Client) key(kind, name string) string { return c.prefix + kind + ":" + name }

// do runs fn against Redis under the operation timeout and the breaker.
// A non-nil error means the caller must fall back; it has been counted and
// (at most every warnEvery per op) logged. fn must not report a miss
// (redis.Nil) as an error.
func (c *Client) do(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	if ctx.Err() != nil {
		return errCallerGone
	}
	_, err := c.breaker.Execute(func() (any, error) {
		octx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		err := fn(octx)
		if err != nil && ctx.Err() != nil {
			// The caller's own deadline or cancellation, not Redis's.
			return nil, fmt.Errorf("%w: %w", errCallerGone, err)
		}
		return nil, err
	})
	switch {
	case err == nil:
		c.down.Store(false)
	case !errors.Is(err, errCallerGone):
		c.failed(op, err)
	}
	return err
}

// errCallerGone marks an operation cut short by its caller's context: not
// reported, not held against Redis by the breaker.
var errCallerGone = errors.New("redisstore: the caller's context ended")

// quietLogger silences go-redis's own logging (each failed dial, printed
// to stderr): failures are reported through Config.Log, throttled.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

var redisLogOnce sync.Once

// failed counts and, when this op has not warned lately, logs a fallback.
func (c *Client) failed(op string, err error) {
	c.down.Store(true)
	if c.onError != nil {
		c.onError(op)
	}
	now := time.Now()
	c.warnMu.Lock()
	if now.Sub(c.lastWarn[op]) < warnEvery {
		c.muted[op]++
		c.warnMu.Unlock()
		return
	}
	muted := c.muted[op]
	c.lastWarn[op], c.muted[op] = now, 0
	c.warnMu.Unlock()
	c.log.Warn().Str("redis", c.addr).Str("op", op).Str("error", describe(err)).Int("suppressed", muted).
		Msg("Redis failed; using this replica's in-memory state instead")
}

// maybeApplied reports whether a failed command may still have been run by
// Redis: its reply timed out or its caller left while it was in flight. A
// refused connection or an open breaker sent nothing.
func maybeApplied(err error) bool {
	var ne net.Error
	return errors.Is(err, errCallerGone) || errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout()
}

// describe returns a short, secret-free description of a Redis error.
func describe(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return "circuit open after repeated failures"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return fmt.Sprintf("%s: %v", oe.Op, oe.Err)
	}
	// Redis server errors (READONLY, NOAUTH, OOM ...) carry no data of ours.
	return err.Error()
}

// name returns a key component for parts: an HMAC with Config.NameKey, or
// hashName without one.
func (c *Client) name(parts ...string) string {
	if c.nameKey == nil {
		return hashName(parts...)
	}
	return hexSum(hmac.New(sha256.New, c.nameKey), parts)
}

// hashName returns a hex SHA-256 of parts joined by NUL: a key component
// that does not reveal a user id or an API key name.
func hashName(parts ...string) string { return hexSum(sha256.New(), parts) }

// hexSum writes parts joined by NUL to h and returns its sum in hex.
func hexSum(h hash.Hash, parts []string) string {
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}
