package loader

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/graph/model"
	"github.com/mkgraph/mkgraph/internal/apierr"
)

func TestConcurrencyBound(t *testing.T) {
	ff := &fakeFetcher{delay: 20 * time.Millisecond}
	ctx := MustRequest(t, NewFactory(Config{Fetcher: ff, Concurrency: 2}))

	ids := strings.Fields("l0 l1 l2 l3 l4 l5 l6 l7 l8 l9")
	links, errs := Links(ctx, ids)
	if errs != nil {
		t.Fatalf("Links: errs = %v", errs)
	}
	for i, l := range links {
		if l == nil || l.ID != ids[i] {
			t.Errorf("Links[%d] = %v, want %s", i, l, ids[i])
		}
	}
	if got := ff.maxInFlight(); got != 2 {
		t.Errorf("max fetches in flight = %d, want exactly Concurrency 2", got)
	}
}

// TestConcurrencyBoundAcrossBatches checks that the bound holds for the
// request, not per batch: loads that land in separate batch windows share it.
func TestConcurrencyBoundAcrossBatches(t *testing.T) {
	ff := &fakeFetcher{delay: 30 * time.Millisecond}
	ctx := MustRequest(t, NewFactory(Config{Fetcher: ff, Concurrency: 2, Wait: 100 * time.Microsecond}))

	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * time.Millisecond) // separate batch windows
			if _, err := Link(ctx, fmt.Sprintf("s%d", i)); err != nil {
				t.Errorf("Link(s%d): %v", i, err)
			}
		})
	}
	wg.Wait()
	if got := ff.maxInFlight(); got > 2 {
		t.Errorf("max fetches in flight across batches = %d, want at most 2", got)
	}
}

func TestDistinctLinksRunConcurrently(t *testing.T) {
	const n, delay = 10, 50 * time.Millisecond
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("c%d", i)
	}
	// Sequential fetches would take n × delay = 500 ms; concurrent ones
	// about 50 ms. The bound only needs to tell the two apart, with room for
	// a loaded CI machine running the race detector.
	const limit = 450 * time.Millisecond

	// How the loads fall into batch windows depends on scheduling: with the
	// default window they may each get a batch of their own. A 20 ms window
	// puts them in one batch, so the batch function itself must fetch
	// concurrently.
	for _, wait := range []time.Duration{0, 20 * time.Millisecond} {
		t.Run(fmt.Sprintf("Links, wait %v", wait), func(t *testing.T) {
			ff := &fakeFetcher{delay: delay}
			ctx := MustRequest(t, NewFactory(Config{Fetcher: ff, Concurrency: n, Wait: wait}))
			start := time.Now()
			_, errs := Links(ctx, ids)
			elapsed := time.Since(start)
			if errs != nil {
				t.Fatalf("Links: errs = %v", errs)
			}
			if elapsed >= limit {
				t.Errorf("%d links × %v with Concurrency %d took %v, want < %v", n, delay, n, elapsed, limit)
			}
			if got := ff.maxInFlight(); got != n {
				t.Errorf("max fetches in flight = %d, want %d", got, n)
			}
		})
	}

	t.Run("batch", func(t *testing.T) {
		ff := &fakeFetcher{delay: delay}
		l := NewFactory(Config{Fetcher: ff, Concurrency: n}).New()
		start := time.Now()
		results := l.batch(context.Background(), ids)
		elapsed := time.Since(start)
		for i, r := range results {
			if r == nil || r.Error != nil {
				t.Errorf("batch result %d = %+v", i, r)
			}
		}
		if elapsed >= limit {
			t.Errorf("batch of %d keys × %v with Concurrency %d took %v, want < %v", n, delay, n, elapsed, limit)
		}
		if got := ff.maxInFlight(); got != n {
			t.Errorf("max fetches in flight = %d, want %d", got, n)
		}
	})
}

func TestContextCancellationReachesFetcher(t *testing.T) {
	ff := &fakeFetcher{block: make(chan struct{}), started: make(chan string, 1)}
	f := NewFactory(Config{Fetcher: ff})
	ctx, cancel := context.WithCancel(MustRequest(t, f))
	defer cancel()

	type result struct {
		l   *model.Link
		err error
	}
	done := make(chan result, 1)
	go func() {
		l, err := Link(ctx, "slow")
		done <- result{l, err}
	}()
	<-ff.started
	cancel()
	select {
	case r := <-done:
		if r.l != nil || errCode(r.err) != apierr.CodeUpstreamTimeout {
			t.Errorf("Link after cancel = %v, %v (code %s); want nil, %s", r.l, r.err, errCode(r.err), apierr.CodeUpstreamTimeout)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Link did not return after its context was cancelled: the fetcher never saw the cancellation")
	}
	for i, c := range ff.contexts() {
		if c.Err() == nil {
			t.Errorf("fetch %d context not cancelled after the caller's was", i)
		}
	}
}

// TestCancelledWhileWaitingForSlot checks that a fetch queued behind the
// concurrency bound gives up when its request ends, without calling upstream.
func TestCancelledWhileWaitingForSlot(t *testing.T) {
	// The first fetch holds the only slot until block closes, whatever its
	// context does.
	ff := &fakeFetcher{block: make(chan struct{}), blockIgnoresCtx: true, started: make(chan string, 2)}
	ctx, cancel := context.WithCancel(MustRequest(t, NewFactory(Config{Fetcher: ff, Concurrency: 1})))
	defer cancel()

	first := make(chan error, 1)
	go func() {
		_, err := Link(ctx, "first")
		first <- err
	}()
	<-ff.started
	second := make(chan error, 1)
	go func() {
		_, err := Link(ctx, "second")
		second <- err
	}()
	cancel()
	select {
	case err := <-second:
		if got := errCode(err); got != apierr.CodeUpstreamTimeout {
			t.Errorf("queued Link after cancel: code %s, want %s", got, apierr.CodeUpstreamTimeout)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a Link queued for a slot did not return after its context was cancelled")
	}
	close(ff.block)
	<-first
	if got := ff.callsFor("second"); got != 0 {
		t.Errorf("fetches of the queued link = %d, want 0", got)
	}
}

// TestCancelledContextNeverCallsFetcher checks that a load whose request has
// already ended does not call upstream even when a slot is free.
func TestCancelledContextNeverCallsFetcher(t *testing.T) {
	ff := &fakeFetcher{}
	f := NewFactory(Config{Fetcher: ff, Concurrency: 1})
	const n = 64
	for i := range n {
		ctx, cancel := context.WithCancel(MustRequest(t, f))
		cancel()
		if _, err := Link(ctx, fmt.Sprintf("id%d", i)); errCode(err) != apierr.CodeUpstreamTimeout {
			t.Errorf("Link on a cancelled context: code %s, want %s", errCode(err), apierr.CodeUpstreamTimeout)
		}
	}
	if got := ff.totalCalls(); got != 0 {
		t.Errorf("fetches for %d loads on cancelled contexts = %d, want 0", n, got)
	}
}
