package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
)

// TestSharedAcrossReplicas: what one replica fetched, the others serve
// without an upstream call; it is written with TTL + MaxStale; a lasting
// error deletes it everywhere; a temporary one serves the shared entry
// stale on a replica that never fetched it.
func TestSharedAcrossReplicas(t *testing.T) {
	clock := newFakeClock()
	shared := newMemShared()
	up := &fakeFetcher{answer: script(ok("v1", t0), fail(errUnavailable), fail(errNotFound))}
	a, b, c := replica(t, up.GetIdentity, shared, clock), replica(t, up.GetIdentity, shared, clock), replica(t, up.GetIdentity, shared, clock)

	for i, r := range []*cache.Cache{a, b, c, b, a} {
		id, err := r.GetIdentity(t.Context(), "link")
		if err != nil || version(id) != "v1" {
			t.Fatalf("read %d = %q, %v; want v1", i+1, version(id), err)
		}
	}
	if up.Calls() != 1 {
		t.Fatalf("5 reads over 3 replicas made %d upstream calls, want 1", up.Calls())
	}
	if got := b.Stats().SharedHits; got != 1 {
		t.Errorf("replica b shared hits = %d, want 1 (then its own copy)", got)
	}
	e, ok := shared.entry(a.Key("link"))
	if !ok || !e.FetchedAt.Equal(clock.Now()) || shared.ttls[a.Key("link")] != time.Minute+time.Hour {
		t.Errorf("shared entry = %+v (ttl %v), want fetched now with TTL+MaxStale", e, shared.ttls[a.Key("link")])
	}

	// Past the TTL the upstream fails (temporary): a fresh replica serves
	// the shared entry, stale.
	clock.Advance(2 * time.Minute)
	d := replica(t, up.GetIdentity, shared, clock)
	ctx, served := cache.WithServed(t.Context())
	id, err := d.GetIdentity(ctx, "link")
	if err != nil || version(id) != "v1" || !mustServed(t, served, "link").Stale {
		t.Fatalf("stale read on a new replica = %q, %v, %+v; want v1 marked stale", version(id), err, mustServed(t, served, "link"))
	}

	// The link is gone (404): deleted from the shared store too.
	if _, err := d.GetIdentity(t.Context(), "link"); err == nil {
		t.Fatal("404 served from cache")
	}
	if _, ok := shared.entry(a.Key("link")); ok {
		t.Error("a 404 left the shared entry in place")
	}
}

// TestSharedLockWaits: while another replica holds the lock for a link, a
// miss waits for that replica's answer instead of calling the upstream.
func TestSharedLockWaits(t *testing.T) {
	clock := newFakeClock()
	shared := newMemShared()
	up := &fakeFetcher{answer: script(ok("theirs", t0))}
	r := replica(t, up.GetIdentity, shared, clock)
	key := r.Key("link")
	unlock, _, _ := shared.Lock(t.Context(), key, time.Second)

	got := make(chan string, 1)
	go func() {
		id, err := r.GetIdentity(t.Context(), "link")
		if err != nil {
			got <- err.Error()
			return
		}
		got <- version(id)
	}()
	// The other replica answers after a while, then lets go.
	time.Sleep(30 * time.Millisecond)
	shared.Set(t.Context(), key, cache.SharedEntry{Identity: identity("link", "other replica", t0), FetchedAt: clock.Now()}, time.Hour, "")
	unlock()
	select {
	case v := <-got:
		if v != "other replica" {
			t.Errorf("read = %q, want the other replica's answer", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting replica did not return")
	}
	if up.Calls() != 0 {
		t.Errorf("%d upstream calls while another replica held the lock, want 0", up.Calls())
	}

	// A holder that let go without an answer: the waiter calls itself.
	unlock, _, _ = shared.Lock(t.Context(), r.Key("other"), time.Second)
	go func() { time.Sleep(20 * time.Millisecond); unlock() }()
	if id, err := r.GetIdentity(t.Context(), "other"); err != nil || version(id) != "theirs" {
		t.Fatalf("read after a failed holder = %q, %v", version(id), err)
	}
	if up.Calls() != 1 {
		t.Errorf("%d upstream calls after the holder let go empty-handed, want 1", up.Calls())
	}
}

// TestSharedWaitEndsWithCaller: a caller waiting on another replica's lock
// returns when its context ends.
func TestSharedWaitEndsWithCaller(t *testing.T) {
	shared := newMemShared()
	up := &fakeFetcher{answer: script(ok("v1", t0))}
	r := replica(t, up.GetIdentity, shared, newFakeClock())
	shared.Lock(t.Context(), r.Key("link"), time.Hour) // never released
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := r.GetIdentity(ctx, "link")
	if apierr.AsError(err).Code != apierr.CodeUpstreamTimeout {
		t.Errorf("err = %v, want %s", err, apierr.CodeUpstreamTimeout)
	}
	if up.Calls() != 0 {
		t.Errorf("%d upstream calls, want 0", up.Calls())
	}
}

// TestSharedOlderRefreshKept: an entry in the shared store never replaces a
// local one that is younger or holds a newer refresh.
func TestSharedOlderRefreshKept(t *testing.T) {
	clock := newFakeClock()
	shared := newMemShared()
	up := &fakeFetcher{answer: script(ok("new", t0.Add(time.Hour)), ok("newer", t0.Add(2*time.Hour)))}
	r := replica(t, up.GetIdentity, shared, clock)
	if _, err := r.GetIdentity(t.Context(), "link"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute) // local entry stale
	// A lagging replica wrote an answer of an older refresh, fetched now.
	shared.Set(t.Context(), r.Key("link"), cache.SharedEntry{Identity: identity("link", "old", t0), FetchedAt: clock.Now()}, time.Hour, "")
	id, err := r.GetIdentity(t.Context(), "link")
	if err != nil {
		t.Fatal(err)
	}
	if version(id) == "old" {
		t.Errorf("served the shared answer of an older refresh over the local newer one")
	}
}

// TestSharedWaitServesStale: a replica holding a stale entry does not turn
// another replica's slow or failing upstream call into an error: at its
// deadline, or when the holder lets go after a temporary failure, it serves
// the stale entry (marked so) without calling the upstream itself. After a
// lasting error (the holder deleted the link everywhere) it asks the
// upstream itself and serves nothing stale.
func TestSharedWaitServesStale(t *testing.T) {
	for _, tt := range []struct {
		name      string
		release   bool // the holder lets go (else it keeps the lock past the deadline)
		marked    bool // the holder's call failed temporarily
		wantStale bool
		wantCalls int
	}{
		{"deadline while another replica holds the lock", false, false, true, 1},
		{"holder failed temporarily", true, true, true, 1},
		{"holder got a lasting error", true, false, false, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			shared := newMemShared()
			up := &fakeFetcher{answer: script(ok("v1", t0), fail(errNotFound))}
			r := replica(t, up.GetIdentity, shared, clock)
			if _, err := r.GetIdentity(t.Context(), "link"); err != nil {
				t.Fatal(err)
			}
			clock.Advance(2 * time.Minute) // past the TTL, within max-stale
			shared.Delete(t.Context(), r.Key("link"))
			unlock, _, _ := shared.Lock(t.Context(), r.Key("link"), time.Hour)
			if tt.release {
				go func() {
					time.Sleep(20 * time.Millisecond)
					if tt.marked {
						shared.MarkFailed(t.Context(), r.Key("link"), time.Second)
					}
					unlock()
				}()
			}
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			ctx, served := cache.WithServed(ctx)
			id, err := r.GetIdentity(ctx, "link")
			if tt.wantStale {
				if err != nil || version(id) != "v1" || !mustServed(t, served, "link").Stale {
					t.Fatalf("read = %q, %v, %+v; want v1 served stale", version(id), err, mustServed(t, served, "link"))
				}
			} else if err == nil {
				t.Fatalf("read = %q, want the upstream's lasting error, nothing stale", version(id))
			}
			if up.Calls() != tt.wantCalls {
				t.Errorf("%d upstream calls, want %d", up.Calls(), tt.wantCalls)
			}
		})
	}
}

// TestSharedMarksTemporaryFailures: a temporary upstream failure is marked
// for the other replicas; a lasting one is not (it deletes the entry).
func TestSharedMarksTemporaryFailures(t *testing.T) {
	shared := newMemShared()
	up := &fakeFetcher{answer: func(_ context.Context, linkID string, _ int) (*upstream.Identity, error) {
		if linkID == "flaky" {
			return nil, errUnavailable
		}
		return nil, errNotFound
	}}
	r := replica(t, up.GetIdentity, shared, newFakeClock())
	r.GetIdentity(t.Context(), "flaky")
	r.GetIdentity(t.Context(), "gone")
	if !shared.Failed(t.Context(), r.Key("flaky")) {
		t.Error("a 503 was not marked for the other replicas")
	}
	if shared.Failed(t.Context(), r.Key("gone")) {
		t.Error("a 404 was marked as a temporary failure")
	}
}
