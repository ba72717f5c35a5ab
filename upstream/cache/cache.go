// Package cache keeps identity answers across requests so that repeat reads
// cost no upstream call: MoneyKit allows 3 identity calls per link per
// minute.
//
// A Cache sits in front of the upstream call (Config.Next, the
// *upstream.Client's GetIdentity) and has the same GetIdentity method, so
// that it can take the client's place (as a graph/loader.Fetcher). It must
// be consulted only after the caller is authorized for the link: it does no
// authorization of its own.
//
// What it does, per (Namespace, link id):
//   - a fresh entry (younger than TTL) is served without an upstream call;
//   - concurrent misses collapse into one upstream call, shared across
//     requests, which outlives the caller that started it;
//   - an answer replaces the entry unless its identity refreshed_at is older
//     than the cached one's;
//   - when the upstream fails with a temporary error (429, 5xx, timeout,
//     unavailable, or the local rate budget is spent), an entry within
//     TTL+MaxStale is served instead, marked stale in Served;
//   - any other error (404, 403, 410, 422, 401, a bad response) deletes the
//     entry, so that a deleted or revoked link is not served from cache;
//   - errors are never cached.
//
// Entries are held by otter (github.com/maypok86/otter/v2), bounded by the
// approximate byte size of what they hold.
//
// With a Shared store (Redis, for several replicas), a local miss asks the
// Shared store before the upstream, an upstream answer is written to it, a
// lasting error deletes it there too, and a cross-replica lock makes one
// replica call the upstream while the others wait for its answer.
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
)

// Defaults for Config.
const (
	DefaultMaxBytes     int64 = 64 << 20
	DefaultTTL                = 5 * time.Minute
	DefaultMaxStale           = time.Hour
	DefaultFetchTimeout       = 30 * time.Second
)

// Config configures a Cache.
type Config struct {
	// Next is the upstream call, e.g. (*upstream.Client).GetIdentity, made
	// on a miss. Its errors should be *apierr.Error; the cache passes them
	// on unchanged. Required.
	Next func(ctx context.Context, linkID string) (*upstream.Identity, error)
	// Namespace identifies the upstream credentials (see NamespaceFor):
	// entries fetched with one set are never served under another. It is
	// part of every key. Required; it must not contain a NUL byte.
	Namespace string
	// MaxBytes bounds the cache by the approximate size of its entries (the
	// length of each identity's JSON encoding plus a small overhead); an
	// answer larger than MaxBytes is not cached. 0: DefaultMaxBytes.
	MaxBytes int64
	// TTL is how long an entry is served without asking the upstream.
	// 0: DefaultTTL.
	TTL time.Duration
	// MaxStale is how long past TTL an entry may still be served when the
	// upstream fails with a temporary error. 0: DefaultMaxStale; negative:
	// never serve stale entries.
	MaxStale time.Duration
	// FetchTimeout bounds a shared upstream call. The call is detached from
	// the context of the caller that started it, so that its cancellation
	// does not fail the other callers waiting for the same link; each
	// caller still returns as soon as its own context ends.
	// 0: DefaultFetchTimeout.
	FetchTimeout time.Duration
	// Now is the clock for entry ages; nil: time.Now. A custom clock also
	// drives otter's expiry, without periodic clean-ups (expired entries are
	// then removed when met or evicted for space).
	Now func() time.Time
	// OnResult, when set, is told each result: "hit", "miss", "stale",
	// "store" or "shared_hit" (for metrics).
	OnResult func(result string)
	// Shared, when set, is a second level shared by replicas (Redis).
	Shared Shared
	// SharedLockTTL bounds how long one replica may hold the cross-replica
	// lock on a link (should its process die mid-call). 0: FetchTimeout.
	SharedLockTTL time.Duration
}

// NamespaceFor returns a Config.Namespace for the upstream credentials
// identified by baseURL and clientID: a hex SHA-256, so that neither
// appears in keys.
func NamespaceFor(baseURL, clientID string) string {
	sum := sha256.Sum256([]byte(baseURL + "\x00" + clientID))
	return hex.EncodeToString(sum[:])
}

// Cache is a cross-request cache of identity answers in front of
// Config.Next. Its GetIdentity has Next's signature, so that it can stand
// where the upstream client would; it is safe for concurrent use. Call
// Close when done with it, to stop the cache's goroutines and in-flight
// upstream calls.
type Cache struct {
	cfg         Config
	staleWindow time.Duration // TTL + MaxStale, or TTL when stale serving is off
	store       *otter.Cache[string, *entry]
	flightMu    sync.Mutex
	flight      map[string]*call // shared upstream calls in progress, by key

	// Shared upstream calls run under this context's cancellation, not
	// their callers'; Close cancels it and waits for them.
	life      context.Context
	endLife   context.CancelFunc
	mu        sync.Mutex // guards closed and the Add of fetches
	closed    bool
	fetches   sync.WaitGroup
	closeOnce sync.Once

	hits, misses, staleServes, stores, evictions, sharedHits atomic.Int64
}

// New returns a Cache, or an error when the configuration cannot work.
func New(cfg Config) (*Cache, error) {
	switch {
	case cfg.Next == nil:
		return nil, errors.New("cache: Next is required")
	case cfg.Namespace == "":
		return nil, errors.New("cache: Namespace is required: entries must be keyed by the upstream credentials")
	case strings.IndexByte(cfg.Namespace, 0) >= 0:
		return nil, errors.New("cache: Namespace must not contain a NUL byte")
	case cfg.MaxBytes < 0, cfg.TTL < 0, cfg.FetchTimeout < 0:
		return nil, errors.New("cache: MaxBytes, TTL and FetchTimeout must not be negative")
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxStale == 0 {
		cfg.MaxStale = DefaultMaxStale
	}
	if cfg.FetchTimeout == 0 {
		cfg.FetchTimeout = DefaultFetchTimeout
	}
	if cfg.SharedLockTTL <= 0 {
		cfg.SharedLockTTL = cfg.FetchTimeout
	}
	c := &Cache{cfg: cfg, staleWindow: cfg.TTL, flight: map[string]*call{}}
	if cfg.MaxStale > 0 {
		c.staleWindow = saturatedAdd(cfg.TTL, cfg.MaxStale)
	}
	opts := &otter.Options[string, *entry]{
		MaximumWeight: uint64(cfg.MaxBytes),
		Weigher:       func(_ string, e *entry) uint32 { return e.size },
		// otter drops an entry once it can no longer be served even stale;
		// whether it is fresh is decided here, against Config.Now.
		ExpiryCalculator: otter.ExpiryWriting[string, *entry](c.staleWindow),
		OnAtomicDeletion: func(e otter.DeletionEvent[string, *entry]) {
			if e.Cause == otter.CauseOverflow {
				c.evictions.Add(1)
			}
		},
	}
	if cfg.Now == nil {
		c.cfg.Now = time.Now
	} else {
		opts.Clock = clock{now: cfg.Now}
	}
	store, err := otter.New(opts)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c.store = store
	c.life, c.endLife = context.WithCancel(context.Background())
	return c, nil
}

// Close cancels the upstream calls in flight and waits for them, and stops
// otter's clean-up goroutine. Later misses fail with
// facade.upstream_unavailable (a stale entry may still be served); fresh
// entries are still served. Close may be called more than once.
func (c *Cache) Close() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.endLife()
		c.fetches.Wait()
		c.store.StopAllGoroutines()
	})
}

// key is the cache key of linkID: the namespace holds no NUL byte, so no
// two (namespace, link id) pairs share a key.
func (c *Cache) key(linkID string) string {
	return c.cfg.Namespace + "\x00" + linkID
}

// GetIdentity returns linkID's identity: from the cache when fresh, else
// from one upstream call shared by all concurrent callers for the link,
// else, when that call fails with a temporary error, from a stale entry
// within MaxStale. It records how it answered in the Served of ctx, if any.
//
// The returned Identity is shared with other callers and with the cache:
// callers must not modify it.
//
// Errors are those of Next, unchanged (*apierr.Error: link_error.*,
// api_error.rate_limit_exceeded, facade.upstream_unavailable,
// facade.upstream_timeout, ...); facade.upstream_timeout when ctx ends
// first; facade.internal when Next panics or returns no identity;
// facade.upstream_unavailable after Close.
func (c *Cache) GetIdentity(ctx context.Context, linkID string) (*upstream.Identity, error) {
	key := c.key(linkID)
	if e, ok := c.store.GetIfPresent(key); ok {
		if age := c.age(e); age < c.cfg.TTL {
			c.count(&c.hits, "hit")
			servedFrom(ctx).record(linkID, Info{FromCache: true, Age: age})
			return e.identity, nil
		}
	}
	c.count(&c.misses, "miss")
	cl := c.join(ctx, key, linkID)
	select {
	case <-cl.done:
		c.leave(cl)
		if cl.err != nil {
			return c.serveStale(ctx, key, linkID, cl.err)
		}
		servedFrom(ctx).record(linkID, Info{FromCache: cl.val.fromCache, Age: c.age(cl.val.entry)})
		return cl.val.entry.identity, nil
	case <-ctx.Done():
		// The caller's deadline passed first (a slow upstream, or another
		// replica's call): a stale entry beats a timeout.
		c.leave(cl)
		return c.serveStale(ctx, key, linkID, apierr.AsError(context.Cause(ctx)))
	}
}

func saturatedAdd(a, b time.Duration) time.Duration {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxInt64
}

// Invalidate drops linkID's cached answer here and in the Shared store, so
// that the next read asks the upstream (MoneyKit announced fresh data: a
// completed identity refresh, or the link's state changed). A call for the
// link in flight when Invalidate is called stores nothing, locally or in the
// Shared store (what it fetched may predate the change); the callers that
// were already waiting for it still get its answer, and callers arriving
// after Invalidate start a call of their own.
//
// The Shared store's Invalidate also breaks the cross-replica lock, so that
// a call in flight on another replica, started before this invalidation,
// cannot write its answer there either (Shared.Set refuses its lease), even
// if it ends before that replica hears of the invalidation.
//
// Other replicas hold the answer in their own memory too: they must be told
// (InvalidateLocal), which is the caller's business (internal/redisstore
// broadcasts it). The error is the Shared store's: the shared entry may
// still be there (the local one is gone).
func (c *Cache) Invalidate(ctx context.Context, linkID string) error {
	key := c.key(linkID)
	c.invalidateLocal(key)
	if c.cfg.Shared == nil {
		return nil
	}
	err := c.cfg.Shared.Invalidate(ctx, key)
	// A call that started meanwhile may have read the shared entry before
	// it was gone: detach it too.
	c.invalidateLocal(key)
	if err != nil {
		return fmt.Errorf("cache: invalidating the shared entry: %w", err)
	}
	return nil
}

// invalidateLocal detaches key's call in flight, waits for a write to the
// Shared store it has in progress, and drops the local entry.
func (c *Cache) invalidateLocal(key string) {
	if cl := c.detach(key); cl != nil {
		// A write to the Shared store in progress ends before the
		// Shared store's invalidation.
		cl.sharedWrite.Lock()
		defer cl.sharedWrite.Unlock()
	}
	c.store.Invalidate(key)
}

// InvalidateLocal is Invalidate without the Shared store: what a replica
// does when another replica tells it that it invalidated linkID (and
// deleted the shared entry itself).
func (c *Cache) InvalidateLocal(linkID string) {
	key := c.key(linkID)
	c.detach(key)
	c.store.Invalidate(key)
}

// drop marks cl invalidated and removes e, its answer, from the local store
// unless another entry has replaced it.
func (c *Cache) drop(key string, cl *call, e *entry) {
	cl.invalidated.Store(true)
	c.store.Compute(key, func(old *entry, found bool) (*entry, otter.ComputeOp) {
		if found && old == e {
			return nil, otter.InvalidateOp
		}
		return old, otter.CancelOp
	})
}

// detach marks key's call in flight, if any, invalidated and removes it from
// the flight table, so that later callers do not join it; it returns it.
func (c *Cache) detach(key string) *call {
	c.flightMu.Lock()
	defer c.flightMu.Unlock()
	cl, ok := c.flight[key]
	if !ok {
		return nil
	}
	cl.invalidated.Store(true)
	delete(c.flight, key)
	return cl
}
