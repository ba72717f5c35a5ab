package cache

import (
	"context"
	"errors"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
)

// Shared is a cache level shared by replicas. Cache asks it on a local
// miss, before the upstream, and writes each upstream answer to it, with a
// TTL of Config.TTL + Config.MaxStale. Its methods must not fail a query: a
// store that cannot answer reports a miss, and Lock grants the lock (the
// rate budget still bounds upstream calls).
//
// Lock, Set and Invalidate fence writes: a replica writes an upstream
// answer only under the lease it took before calling the upstream, and only
// while that lease still holds the lock. Invalidate breaks the lease, so
// that an answer whose call started before it (on any replica, whenever
// that replica hears of the invalidation) never lands in the store.
type Shared interface {
	Get(ctx context.Context, key string) (SharedEntry, bool)
	// Set writes e for ttl, unless the store holds an answer of a newer
	// refresh. With a lease (from Lock; "" for none), it writes only while
	// that lease still holds key's lock, and returns ErrLeaseLost when it
	// does not (Invalidate broke it, or it expired). Other failures are not
	// reported: the entry is simply not shared.
	Set(ctx context.Context, key string, e SharedEntry, ttl time.Duration, lease string) error
	// Delete deletes key's entry (the upstream refused the link for good).
	Delete(ctx context.Context, key string)
	// Invalidate deletes key's entry and breaks its lock: a call holding
	// that lock then writes nothing (Set with its lease fails), and the
	// next caller takes the lock and asks the upstream. An error means the
	// store could not be told: the entry may still be served.
	Invalidate(ctx context.Context, key string) error
	// Lock claims, for at most ttl, the right to call the upstream for
	// key; ok is false while another replica holds it. lease names the
	// claim for Set: "" when the store could not record it (then the
	// caller must not write to the store: nothing would fence its write).
	Lock(ctx context.Context, key string, ttl time.Duration) (unlock func(), lease string, ok bool)
	// MarkFailed records, for ttl, that the upstream failed key with a
	// temporary error; Failed reports whether it did. Replicas that waited
	// for that call serve their stale copy instead of asking again.
	MarkFailed(ctx context.Context, key string, ttl time.Duration)
	Failed(ctx context.Context, key string) bool
}

// ErrLeaseLost is Shared.Set's refusal of a write whose lease no longer
// holds the lock: an invalidation broke it (what the call fetched may
// predate the change), or it expired.
var ErrLeaseLost = errors.New("cache: the shared lock was lost before the write (invalidated or expired)")

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

// viaShared answers a local miss from the Shared store when it holds a
// fresh entry (ok), else takes the cross-replica lock for the upstream call
// (unlock must then be called; lease fences the write of its answer). While another replica holds the lock it
// waits for that replica's answer, polling with backoff, until the lock is
// free or ctx ends. A stale shared entry is copied into the local store, so
// that it can be served if the upstream call fails.
func (c *Cache) viaShared(ctx context.Context, cl *call, key string) (f fetched, unlock func(), lease string, ok bool, err error) {
	if f, ok := c.fromShared(ctx, cl, key); ok {
		return f, nil, "", true, nil
	}
	delay := sharedPollMin
	for waited := false; ; waited = true {
		if unlock, lease, locked := c.cfg.Shared.Lock(ctx, key, c.cfg.SharedLockTTL); locked {
			if waited {
				// The holder may have stored its answer just before it let go.
				if f, ok := c.fromShared(ctx, cl, key); ok {
					unlock()
					return f, nil, "", true, nil
				}
				// It let go without an answer. If the upstream failed it for
				// a while (429, 5xx, timeout) and a stale entry is at hand,
				// serve that rather than ask a failing upstream again, one
				// replica after another. Otherwise (a lasting error such as a
				// 404, or a replica that died) ask it ourselves.
				if e, ok := c.store.GetIfPresent(key); ok && c.age(e) < c.staleWindow && c.cfg.Shared.Failed(ctx, key) {
					unlock()
					return fetched{}, nil, "", false, errHolderFailed
				}
			}
			return fetched{}, unlock, lease, false, nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fetched{}, nil, "", false, apierr.AsError(context.Cause(ctx))
		case <-t.C:
		}
		delay = min(2*delay, sharedPollMax)
		if f, ok := c.fromShared(ctx, cl, key); ok {
			return f, nil, "", true, nil
		}
	}
}

// fromShared reads key from the Shared store into the local one, and
// reports whether the entry is fresh.
func (c *Cache) fromShared(ctx context.Context, cl *call, key string) (fetched, bool) {
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
	e := c.keep(key, se.Identity, fetchedAt, &cl.invalidated)
	if c.age(e) >= c.cfg.TTL {
		return fetched{}, false
	}
	c.count(&c.sharedHits, "shared_hit")
	return fetched{entry: e, fromCache: true}, true
}

// errHolderFailed answers the callers of a replica that waited for another
// replica's upstream call, which ended without an answer: temporary, so a
// stale entry is served.
var errHolderFailed = &apierr.Error{
	Code:    apierr.CodeUpstreamUnavailable,
	Message: "The MoneyKit API is unavailable; try again later.",
	Err:     errors.New("cache: another replica's upstream call for this link ended without an answer"),
}
