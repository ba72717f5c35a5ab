package cache_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
)

func TestConcurrentMissesShareOneCall(t *testing.T) {
	release := make(chan struct{})
	next := &fakeFetcher{answer: func(ctx context.Context, linkID string, n int) (*upstream.Identity, error) {
		<-release
		return identity(linkID, fmt.Sprint("v", n), t0), nil
	}}
	c := MustNew(t, cache.Config{Next: next.GetIdentity, Now: newFakeClock().Now})

	const callers = 50
	ctx, served := cache.WithServed(t.Context())
	got := make([]*upstream.Identity, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { got[i], errs[i] = c.GetIdentity(ctx, "l1") })
	}
	// Every caller missed while the one call was held.
	waitFor(t, "50 misses", func() bool { return c.Stats().Misses == callers })
	close(release)
	wg.Wait()

	if n := next.Calls(); n != 1 {
		t.Fatalf("%d concurrent misses made %d upstream calls, want 1", callers, n)
	}
	for i := range callers {
		if errs[i] != nil || got[i] != got[0] || version(got[i]) != "v1" {
			t.Fatalf("caller %d: %s, %v; want the shared v1 answer", i, version(got[i]), errs[i])
		}
	}
	if _, ok := served.Get("l1"); !ok {
		t.Error("Served has no entry for l1")
	}
}

func TestFirstCallerCancelledOthersGetAnswer(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	next := &fakeFetcher{answer: func(ctx context.Context, linkID string, n int) (*upstream.Identity, error) {
		close(entered)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, apierr.AsError(ctx.Err())
		}
		return identity(linkID, "v1", t0), nil
	}}
	c := MustNew(t, cache.Config{Next: next.GetIdentity, Now: newFakeClock().Now})

	first, cancelFirst := context.WithCancel(t.Context())
	firstErr := make(chan error, 1)
	go func() {
		_, err := c.GetIdentity(first, "l1")
		firstErr <- err
	}()
	<-entered

	const others = 5
	got := make([]*upstream.Identity, others)
	errs := make([]error, others)
	var wg sync.WaitGroup
	for i := range others {
		wg.Go(func() { got[i], errs[i] = c.GetIdentity(t.Context(), "l1") })
	}
	waitFor(t, "all misses", func() bool { return c.Stats().Misses == 1+others })

	cancelFirst()
	select {
	case err := <-firstErr:
		wantCode(t, err, apierr.CodeUpstreamTimeout)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("first caller's error %v does not wrap context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the cancelled caller still waits for the shared call")
	}

	close(release)
	wg.Wait()
	for i := range others {
		if errs[i] != nil || version(got[i]) != "v1" {
			t.Errorf("caller %d: %s, %v; want v1", i, version(got[i]), errs[i])
		}
	}
	if n := next.Calls(); n != 1 {
		t.Errorf("upstream calls = %d, want 1", n)
	}
	// The answer of the call whose starter left was stored.
	mustGet(t, t.Context(), c, "l1")
	if n := next.Calls(); n != 1 {
		t.Errorf("upstream calls after a re-read = %d, want 1", n)
	}
}

type ctxKey struct{}

func TestSharedCallIsBoundedAndKeepsValues(t *testing.T) {
	var sawValue atomic.Bool
	var sawDeadline atomic.Bool
	next := &fakeFetcher{answer: func(ctx context.Context, linkID string, n int) (*upstream.Identity, error) {
		sawValue.Store(ctx.Value(ctxKey{}) == "request-1")
		_, ok := ctx.Deadline()
		sawDeadline.Store(ok)
		<-ctx.Done() // a hung upstream
		return nil, apierr.AsError(ctx.Err())
	}}
	c := MustNew(t, cache.Config{Next: next.GetIdentity, Now: newFakeClock().Now, FetchTimeout: 20 * time.Millisecond})

	ctx := context.WithValue(t.Context(), ctxKey{}, "request-1")
	_, err := c.GetIdentity(ctx, "l1")
	wantCode(t, err, apierr.CodeUpstreamTimeout)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
	if !sawDeadline.Load() {
		t.Error("the shared call ran without a deadline")
	}
	if !sawValue.Load() {
		t.Error("the shared call lost the caller's context values")
	}
}

func TestFetcherPanicIsAnError(t *testing.T) {
	next := &fakeFetcher{answer: func(ctx context.Context, linkID string, n int) (*upstream.Identity, error) {
		if n == 1 {
			panic("secret@example.com")
		}
		return nil, nil
	}}
	c := MustNew(t, cache.Config{Next: next.GetIdentity, Now: newFakeClock().Now})
	for i := range 2 {
		_, err := c.GetIdentity(t.Context(), "l1")
		wantCode(t, err, apierr.CodeInternal)
		if strings.Contains(err.Error(), "secret@") {
			t.Errorf("call %d: error %q holds the panic value", i+1, err)
		}
	}
	if got := next.Calls(); got != 2 {
		t.Errorf("upstream calls = %d, want 2", got)
	}
}

// blockingFetcher waits for its context and reports that it was cancelled.
type blockingFetcher struct{ cancelled chan struct{} }

func (f *blockingFetcher) GetIdentity(ctx context.Context, _ string) (*upstream.Identity, error) {
	<-ctx.Done()
	close(f.cancelled)
	return nil, apierr.AsError(ctx.Err())
}

// TestCallCancelledWhenEveryCallerLeaves: a client that disconnects cancels
// the upstream call it caused, when no other caller shares it.
func TestCallCancelledWhenEveryCallerLeaves(t *testing.T) {
	f := &blockingFetcher{cancelled: make(chan struct{})}
	c := MustNew(t, cache.Config{Next: f.GetIdentity, Namespace: "ns"})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := c.GetIdentity(ctx, "mk_1")
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("GetIdentity after its context ended = nil error")
	}
	select {
	case <-f.cancelled:
	case <-time.After(2 * time.Second):
		t.Fatal("the upstream call went on after its only caller left")
	}
}
