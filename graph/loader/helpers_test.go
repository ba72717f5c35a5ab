package loader

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/testing/logtest"
	"github.com/mkgraph/mkgraph/upstream"
)

// fakeFetcher is a Fetcher that counts calls per link id, holds each call for
// a configurable delay (ended early by the context), fails or panics for
// chosen ids, and records the most calls it saw in flight at once and the
// contexts it was given.
type fakeFetcher struct {
	delay  time.Duration
	errs   map[string]error  // id → error to return
	panics map[string]any    // id → value to panic with
	state  map[string]string // id → upstream link state; "connected" when absent
	// block, when set, holds every call until it is closed or ctx ends
	// (or only until it is closed, with blockIgnoresCtx).
	block           chan struct{}
	blockIgnoresCtx bool

	mu       sync.Mutex
	calls    map[string]int
	ctxs     []context.Context
	inFlight int
	maxIn    int
	total    atomic.Int64 // every call, for names that differ per call
	started  chan string  // when set, receives each id as its call starts
}

var _ Fetcher = (*fakeFetcher)(nil)

func (f *fakeFetcher) GetIdentity(ctx context.Context, id string) (*upstream.Identity, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[id]++
	f.ctxs = append(f.ctxs, ctx)
	f.inFlight++
	f.maxIn = max(f.maxIn, f.inFlight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	n := f.total.Add(1)
	if f.started != nil {
		f.started <- id
	}

	if f.block != nil && f.blockIgnoresCtx {
		<-f.block
	} else if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, apierr.AsError(ctx.Err())
		}
	}
	if f.delay > 0 {
		t := time.NewTimer(f.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, apierr.AsError(ctx.Err())
		}
	}
	if p, ok := f.panics[id]; ok {
		panic(p)
	}
	if err, ok := f.errs[id]; ok {
		return nil, err
	}
	state := "connected"
	if s, ok := f.state[id]; ok {
		state = s
	}
	return &upstream.Identity{
		Link: upstream.Link{
			LinkID:          id,
			InstitutionID:   "inst",
			InstitutionName: fmt.Sprintf("call %d", n),
			State:           state,
		},
		Accounts: []upstream.Account{{AccountID: "acc_" + id, AccountType: "depository.checking", Name: "Checking"}},
	}, nil
}

func (f *fakeFetcher) callsFor(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

func (f *fakeFetcher) totalCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

func (f *fakeFetcher) maxInFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxIn
}

func (f *fakeFetcher) contexts() []context.Context {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]context.Context(nil), f.ctxs...)
}

// MustRequest returns a context carrying a fresh set of loaders from f, as
// Factory.Middleware would attach for one HTTP request.
func MustRequest(tb testing.TB, f *Factory) context.Context {
	tb.Helper()
	l := f.New()
	if l == nil {
		tb.Fatal("Factory.New() = nil")
	}
	return NewContext(context.Background(), l)
}

// errCode returns err's *apierr.Error code, or a description of why it has none.
func errCode(err error) string {
	if err == nil {
		return "<nil>"
	}
	var e *apierr.Error
	if !errors.As(err, &e) {
		return fmt.Sprintf("not an *apierr.Error: %T %v", err, err)
	}
	return e.Code
}

// syncBuffer is a sink for a logger that the test reads.
type syncBuffer = logtest.Buffer
