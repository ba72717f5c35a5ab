// Package cache keeps identity answers across requests so repeat reads cost no upstream call (MoneyKit allows 3 identity calls per link per minute).
//
// A Cache sits in front of an upstream Fetcher (the *upstream.Client) and
// satisfies the same interface. It must be consulted only after the caller
// is authorized for the link: it does no authorization of its own.
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
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
)

// Fetcher fetches one link's identity answer. *upstream.Client and *Cache
// satisfy it. Errors should be *apierr.Error; a Cache passes them on
// unchanged.
type Fetcher interface {
	GetIdentity(ctx context.Context, linkID string) (*upstream.Identity, error)
}

var (
	_ Fetcher = (*upstream.Client)(nil)
	_ Fetcher = (*Cache)(nil)
)

// Defaults for Config.
const (
	DefaultMaxBytes     int64 = 64 << 20
	DefaultTTL                = 5 * time.Minute
	DefaultMaxStale           = time.Hour
	DefaultFetchTimeout       = 30 * time.Second
)

// entryOverhead approximates, in bytes, what an entry costs beyond the JSON
// encoding of its identity: the entry struct, otter's node, the key header.
const entryOverhead = 128

// Config configures a Cache.
type Config struct {
	// Next is the upstream client the cache calls on a miss. Required.
	Next Fetcher
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

// Shared is a cache level shared by replicas. Cache asks it on a local
// miss, before the upstream, and writes each upstream answer to it, with a
// TTL of Config.TTL + Config.MaxStale. Its methods must not fail a query: a
// store that cannot answer reports a miss, and Lock grants the lock (the
// rate budget still bounds upstream calls).
type Shared interface {
	Get(ctx context.Context, key string) (SharedEntry, bool)
	Set(ctx context.Context, key string, e SharedEntry, ttl time.Duration)
	Delete(ctx context.Context, key string)
	// Lock claims, for at most ttl, the right to call the upstream for
	// key; ok is false while another replica holds it.
	Lock(ctx context.Context, key string, ttl time.Duration) (unlock func(), ok bool)
	// MarkFailed records, for ttl, that the upstream failed key with a
	// temporary error; Failed reports whether it did. Replicas that waited
	// for that call serve their stale copy instead of asking again.
	MarkFailed(ctx context.Context, key string, ttl time.Duration)
	Failed(ctx context.Context, key string) bool
}

// failedTTL is how long a replica's temporary upstream failure for a link
// lets the replicas that waited for it serve stale without asking again.
const failedTTL = 2 * time.Second

// SharedEntry is what a Shared store holds for a key.
type SharedEntry struct {
	Identity  *upstream.Identity
	FetchedAt time.Time // when the upstream answered
}

// Bounds of the wait for another replica's upstream call.
const (
	sharedPollMin = 5 * time.Millisecond
	sharedPollMax = 50 * time.Millisecond
)

// count bumps a counter and tells OnResult.
func (c *Cache) count(n *atomic.Int64, result string) {
	n.Add(1)
	if c.cfg.OnResult != nil {
		c.cfg.OnResult(result)
	}
}

// NamespaceFor returns a Config.Namespace for the upstream credentials
// identified by baseURL and clientID: a hex SHA-256, so that neither
// appears in keys.
func NamespaceFor(baseURL, clientID string) string {
	sum := sha256.Sum256([]byte(baseURL + "\x00" + clientID))
	return hex.EncodeToString(sum[:])
}

// Cache is a cross-request cache of identity answers in front of a Fetcher.
// It satisfies Fetcher and is safe for concurrent use. Call Close when done
// with it, to stop the cache's goroutines and in-flight upstream calls.
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

// call is one shared upstream call and the callers waiting for it. When
// every caller has gone (clients that disconnected, requests past their
// deadline), the call is cancelled: nobody would read its answer.
type call struct {
	done    chan struct{}
	val     fetched
	err     error
	waiters int
	cancel  context.CancelFunc
}

// entry is one cached answer. It is never modified once stored: a
// revalidation stores a new entry holding the same identity.
type entry struct {
	identity    *upstream.Identity // shared by every caller; read-only
	fetchedAt   time.Time          // when the upstream last answered for it (Config.Now)
	refreshedAt time.Time          // link.products.identity.refreshed_at; zero when absent
	size        uint32             // weight: approximate bytes, computed once at store
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

// age returns how long ago the upstream answered for e, never negative (a
// clock that steps back makes entries younger, not older than fresh).
func (c *Cache) age(e *entry) time.Duration {
	return max(c.cfg.Now().Sub(e.fetchedAt), 0)
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

// join returns the shared call for key, starting it when there is none:
// however many callers miss at once, one upstream call is made.
func (c *Cache) join(ctx context.Context, key, linkID string) *call {
	c.flightMu.Lock()
	defer c.flightMu.Unlock()
	if cl, ok := c.flight[key]; ok {
		cl.waiters++
		return cl
	}
	// Detached from the first caller's cancellation and deadline (the other
	// callers share this call), keeping its values (logger, trace) for the
	// upstream client; bounded by FetchTimeout, by Close, and cancelled when
	// every caller has gone.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.FetchTimeout)
	cl := &call{done: make(chan struct{}), waiters: 1, cancel: cancel}
	c.flight[key] = cl
	go func() {
		defer cancel()
		v, err := c.fetch(fctx, key, linkID)
		c.flightMu.Lock()
		delete(c.flight, key)
		c.flightMu.Unlock()
		if err == nil {
			cl.val = v.(fetched)
		}
		cl.err = err
		close(cl.done)
	}()
	return cl
}

// leave stops waiting for cl; the last caller to leave an unfinished call
// cancels it.
func (c *Cache) leave(cl *call) {
	c.flightMu.Lock()
	defer c.flightMu.Unlock()
	cl.waiters--
	if cl.waiters == 0 {
		select {
		case <-cl.done:
		default:
			cl.cancel()
		}
	}
}

// serveStale answers a failed upstream call: with the cached entry when err
// is temporary and the entry is within TTL+MaxStale, else with err.
func (c *Cache) serveStale(ctx context.Context, key, linkID string, err error) (*upstream.Identity, error) {
	if !temporary(err) {
		return nil, err
	}
	e, ok := c.store.GetIfPresent(key)
	if !ok {
		return nil, err
	}
	age := c.age(e)
	switch {
	case age < c.cfg.TTL: // stored by a later call meanwhile
		c.count(&c.hits, "hit")
		servedFrom(ctx).record(linkID, Info{FromCache: true, Age: age})
	case age < c.staleWindow:
		c.count(&c.staleServes, "stale")
		servedFrom(ctx).record(linkID, Info{FromCache: true, Stale: true, Age: age})
	default:
		return nil, err
	}
	return e.identity, nil
}

// fetched is the result of a shared call.
type fetched struct {
	entry     *entry
	fromCache bool // the identity is not the one this call fetched
}

// fetch is the shared upstream call for key. It stores a success and
// deletes the entry on a lasting error, itself rather than in its callers,
// so that this happens even when every caller has gone.
func (c *Cache) fetch(ctx context.Context, key, linkID string) (any, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errClosed
	}
	c.fetches.Add(1)
	c.mu.Unlock()
	defer c.fetches.Done()

	// A caller that missed just before another call stored the answer gets
	// here after that call ended: no second upstream call.
	if e, ok := c.store.GetIfPresent(key); ok && c.age(e) < c.cfg.TTL {
		return fetched{entry: e, fromCache: true}, nil
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.life, cancel)()

	if c.cfg.Shared != nil {
		f, unlock, ok, err := c.viaShared(ctx, key)
		if err != nil || ok {
			return f, err
		}
		defer unlock()
	}

	id, err := c.callNext(ctx, linkID)
	if err != nil {
		// A call cancelled because its callers left says nothing of the
		// link: keep the entry.
		switch {
		case ctx.Err() != nil:
		case !temporary(err):
			c.store.Invalidate(key)
			if c.cfg.Shared != nil {
				c.cfg.Shared.Delete(ctx, key)
			}
		case c.cfg.Shared != nil:
			c.cfg.Shared.MarkFailed(ctx, key, failedTTL)
		}
		return nil, err
	}
	f := c.put(key, id)
	if c.cfg.Shared != nil && !f.fromCache && f.entry.size > 0 {
		c.cfg.Shared.Set(ctx, key, SharedEntry{Identity: f.entry.identity, FetchedAt: f.entry.fetchedAt}, c.staleWindow)
	}
	return f, nil
}

// viaShared answers a local miss from the Shared store when it holds a
// fresh entry (ok), else takes the cross-replica lock for the upstream call
// (unlock must then be called). While another replica holds the lock it
// waits for that replica's answer, polling with backoff, until the lock is
// free or ctx ends. A stale shared entry is copied into the local store, so
// that it can be served if the upstream call fails.
func (c *Cache) viaShared(ctx context.Context, key string) (f fetched, unlock func(), ok bool, err error) {
	if f, ok := c.fromShared(ctx, key); ok {
		return f, nil, true, nil
	}
	delay := sharedPollMin
	for waited := false; ; waited = true {
		if unlock, locked := c.cfg.Shared.Lock(ctx, key, c.cfg.SharedLockTTL); locked {
			if waited {
				// The holder may have stored its answer just before it let go.
				if f, ok := c.fromShared(ctx, key); ok {
					unlock()
					return f, nil, true, nil
				}
				// It let go without an answer. If the upstream failed it for
				// a while (429, 5xx, timeout) and a stale entry is at hand,
				// serve that rather than ask a failing upstream again, one
				// replica after another. Otherwise (a lasting error such as a
				// 404, or a replica that died) ask it ourselves.
				if e, ok := c.store.GetIfPresent(key); ok && c.age(e) < c.staleWindow && c.cfg.Shared.Failed(ctx, key) {
					unlock()
					return fetched{}, nil, false, errHolderFailed
				}
			}
			return fetched{}, unlock, false, nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fetched{}, nil, false, apierr.AsError(context.Cause(ctx))
		case <-t.C:
		}
		delay = min(2*delay, sharedPollMax)
		if f, ok := c.fromShared(ctx, key); ok {
			return f, nil, true, nil
		}
	}
}

// fromShared reads key from the Shared store into the local one, and
// reports whether the entry is fresh.
func (c *Cache) fromShared(ctx context.Context, key string) (fetched, bool) {
	se, ok := c.cfg.Shared.Get(ctx, key)
	if !ok || se.Identity == nil {
		return fetched{}, false
	}
	// A replica whose clock runs ahead must not make entries look younger
	// than they are here, nor older than now.
	now := c.cfg.Now()
	fetchedAt := se.FetchedAt
	if fetchedAt.After(now) {
		fetchedAt = now
	}
	if now.Sub(fetchedAt) >= c.staleWindow {
		return fetched{}, false
	}
	e := c.keep(key, se.Identity, fetchedAt)
	if c.age(e) >= c.cfg.TTL {
		return fetched{}, false
	}
	c.count(&c.sharedHits, "shared_hit")
	return fetched{entry: e, fromCache: true}, true
}

// keep stores an entry read from the Shared store unless the local store
// holds a younger answer or a newer refresh, and returns the entry kept.
func (c *Cache) keep(key string, id *upstream.Identity, fetchedAt time.Time) *entry {
	e, ok := c.newEntry(key, id, fetchedAt)
	if !ok {
		return e
	}
	actual, _ := c.store.Compute(key, func(old *entry, found bool) (*entry, otter.ComputeOp) {
		if found && (old.fetchedAt.After(e.fetchedAt) || e.olderThan(old)) {
			return old, otter.CancelOp
		}
		return e, otter.WriteOp
	})
	if actual == nil {
		return e
	}
	return actual
}

// callNext calls Next, turning a panic into facade.internal: the shared call
// runs on its own goroutine, where a panic would end the process.
func (c *Cache) callNext(ctx context.Context, linkID string) (id *upstream.Identity, err error) {
	defer func() {
		if p := recover(); p != nil {
			id, err = nil, internalError(fmt.Errorf("cache: upstream fetcher panicked (%T)\n%s", p, debug.Stack()))
		}
	}()
	id, err = c.cfg.Next.GetIdentity(ctx, linkID)
	if err == nil && id == nil {
		err = internalError(errors.New("cache: upstream fetcher returned neither an identity nor an error"))
	}
	return id, err
}

// put stores id under key unless the cached entry holds a newer refresh,
// and returns the entry that answers the callers.
func (c *Cache) put(key string, id *upstream.Identity) fetched {
	now := c.cfg.Now()
	e, ok := c.newEntry(key, id, now)
	if !ok {
		// It cannot be cached; neither may an older answer stay.
		c.store.Invalidate(key)
		return fetched{entry: e}
	}
	kept := false
	actual, _ := c.store.Compute(key, func(old *entry, found bool) (*entry, otter.ComputeOp) {
		if found && e.olderThan(old) {
			// The upstream answered from an older refresh than the one we
			// hold (a lagging replica): keep ours, and count it as
			// confirmed now, so that every read does not ask again.
			kept = true
			return &entry{identity: old.identity, fetchedAt: now, refreshedAt: old.refreshedAt, size: old.size}, otter.WriteOp
		}
		return e, otter.WriteOp
	})
	if actual == nil {
		actual = e
	}
	if !kept {
		c.count(&c.stores, "store")
	}
	return fetched{entry: actual, fromCache: kept}
}

// newEntry returns the entry for id under key, weighed; ok is false when
// it cannot be cached (too large, or not encodable).
func (c *Cache) newEntry(key string, id *upstream.Identity, fetchedAt time.Time) (e *entry, ok bool) {
	e = &entry{identity: id, fetchedAt: fetchedAt, refreshedAt: RefreshedAt(id)}
	size, ok := weigh(key, id)
	if !ok || size > c.cfg.MaxBytes {
		return e, false
	}
	e.size = uint32(size)
	return e, true
}

// olderThan reports whether e holds an older refresh than old (both known).
func (e *entry) olderThan(old *entry) bool {
	return !old.refreshedAt.IsZero() && !e.refreshedAt.IsZero() && e.refreshedAt.Before(old.refreshedAt)
}

// weigh returns the approximate bytes an entry for id costs: its JSON
// encoding, the key and a fixed overhead.
func weigh(key string, id *upstream.Identity) (int64, bool) {
	b, err := json.Marshal(id)
	if err != nil {
		return 0, false
	}
	n := int64(len(b)) + int64(len(key)) + entryOverhead
	return n, n <= math.MaxUint32
}

// RefreshedAt returns link.products.identity.refreshed_at, or zero: what
// orders two answers for one link.
func RefreshedAt(id *upstream.Identity) time.Time {
	if p := id.Link.Products["identity"]; p != nil && p.RefreshedAt.Valid() {
		return p.RefreshedAt.Time
	}
	return time.Time{}
}

// temporary reports whether err may pass: an entry may then be served
// stale, and is kept. A 429 (the upstream's or the local budget's), a 5xx,
// a timeout or an unavailable upstream are; a context error is (the call
// was cut short, the upstream said nothing about the link).
func temporary(err error) bool {
	var e *apierr.Error
	if errors.As(err, &e) {
		return e.Temporary() || e.Status >= 500
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

func internalError(cause error) *apierr.Error {
	return &apierr.Error{Code: apierr.CodeInternal, Message: "Internal error.", Err: cause}
}

// errHolderFailed answers the callers of a replica that waited for another
// replica's upstream call, which ended without an answer: temporary, so a
// stale entry is served.
var errHolderFailed = &apierr.Error{
	Code:    apierr.CodeUpstreamUnavailable,
	Message: "The MoneyKit API is unavailable; try again later.",
	Err:     errors.New("cache: another replica's upstream call for this link ended without an answer"),
}

var errClosed = &apierr.Error{
	Code:    apierr.CodeUpstreamUnavailable,
	Message: "The MoneyKit API is unavailable; try again later.",
	Err:     errors.New("cache: closed"),
}

// Stats are a Cache's cumulative counters and current size.
type Stats struct {
	Hits        int64 // fresh answers served without an upstream call
	Misses      int64 // calls that found no fresh entry (joined or started an upstream call)
	StaleServes int64 // stale entries served because the upstream failed
	Stores      int64 // upstream answers stored
	Evictions   int64 // entries dropped to stay within MaxBytes (not expiries)
	Bytes       int64 // approximate bytes held now
	SharedHits  int64 // fresh answers read from the Shared store (another replica's upstream call)
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits:        c.hits.Load(),
		Misses:      c.misses.Load(),
		StaleServes: c.staleServes.Load(),
		Stores:      c.stores.Load(),
		Evictions:   c.evictions.Load(),
		Bytes:       int64(c.store.WeightedSize()),
		SharedHits:  c.sharedHits.Load(),
	}
}

// clock is Config.Now as an otter.Clock.
type clock struct{ now func() time.Time }

func (c clock) NowNano() int64 { return c.now().UnixNano() }

// Tick returns no ticks: a custom clock need not advance with real time, so
// periodic clean-ups would be meaningless.
func (clock) Tick(time.Duration) <-chan time.Time { return nil }

func saturatedAdd(a, b time.Duration) time.Duration {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxInt64
}
