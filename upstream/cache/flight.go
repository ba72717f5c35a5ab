package cache

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
)

// call is one shared upstream call and the callers waiting for it. When
// every caller has gone (clients that disconnected, requests past their
// deadline), the call is cancelled: nobody would read its answer.
type call struct {
	done    chan struct{}
	val     fetched
	err     error
	waiters int
	cancel  context.CancelFunc

	// invalidated is set by Invalidate while the call is in flight: what it
	// fetched may predate the invalidation, so it must not be stored
	// (locally or in the Shared store). Its callers, who arrived before the
	// invalidation, still get it; later callers start a call of their own.
	invalidated atomic.Bool
	// sharedWrite is held while the call writes to the Shared store, so
	// that Invalidate can wait for a write in progress before it deletes.
	sharedWrite sync.Mutex
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
		v, err := c.fetch(fctx, cl, key, linkID)
		c.flightMu.Lock()
		if c.flight[key] == cl { // an invalidation may have put another call there
			delete(c.flight, key)
		}
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
func (c *Cache) fetch(ctx context.Context, cl *call, key, linkID string) (any, error) {
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

	var lease string
	if c.cfg.Shared != nil {
		f, unlock, l, ok, err := c.viaShared(ctx, cl, key)
		if err != nil || ok {
			return f, err
		}
		defer unlock()
		lease = l
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
	f := c.put(key, id, &cl.invalidated)
	// Written only under a lease the store recorded: a write without one
	// could land after another replica's Invalidate.
	if c.cfg.Shared != nil && lease != "" && !f.fromCache && f.entry.size > 0 {
		cl.sharedWrite.Lock()
		var err error
		if !cl.invalidated.Load() {
			err = c.cfg.Shared.Set(ctx, key, SharedEntry{Identity: f.entry.identity, FetchedAt: f.entry.fetchedAt}, c.staleWindow, lease)
		}
		cl.sharedWrite.Unlock()
		if errors.Is(err, ErrLeaseLost) {
			// Another replica invalidated the link while the call was in
			// flight (or the lease expired): this answer may predate the
			// change. Its callers still get it, but it is not kept here
			// either, should the broadcast of the invalidation not arrive.
			c.drop(key, cl, f.entry)
		}
	}
	return f, nil
}

// callNext calls Next, turning a panic into facade.internal: the shared call
// runs on its own goroutine, where a panic would end the process.
func (c *Cache) callNext(ctx context.Context, linkID string) (id *upstream.Identity, err error) {
	defer func() {
		if p := recover(); p != nil {
			id, err = nil, internalError(fmt.Errorf("cache: upstream fetcher panicked (%T)\n%s", p, debug.Stack()))
		}
	}()
	id, err = c.cfg.Next(ctx, linkID)
	if err == nil && id == nil {
		err = internalError(errors.New("cache: upstream fetcher returned neither an identity nor an error"))
	}
	return id, err
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

var errClosed = &apierr.Error{
	Code:    apierr.CodeUpstreamUnavailable,
	Message: "The MoneyKit API is unavailable; try again later.",
	Err:     errors.New("cache: closed"),
}
