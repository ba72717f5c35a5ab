package loader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/graph/model"
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

func TestLinkDuplicatesInOneRequestFetchOnce(t *testing.T) {
	ff := &fakeFetcher{delay: 5 * time.Millisecond}
	ctx := MustRequest(t, NewFactory(Config{Fetcher: ff}))

	// Selections of one link resolved together, as gqlgen resolves aliases
	// and fragments: Link and Links from many goroutines at once.
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if l, err := Link(ctx, "a"); err != nil || l == nil || l.ID != "a" {
				t.Errorf("Link(ctx, %q) = %v, %v; want link a", "a", l, err)
			}
		})
		wg.Go(func() {
			links, errs := Links(ctx, []string{"a", "b", "a"})
			if errs != nil {
				t.Errorf("Links(ctx, [a b a]) errs = %v, want nil", errs)
			}
			for i, want := range []string{"a", "b", "a"} {
				if links[i] == nil || links[i].ID != want {
					t.Errorf("Links(ctx, [a b a])[%d] = %v, want link %s", i, links[i], want)
				}
			}
		})
	}
	wg.Wait()
	// Later in the same request: served from the request's cache.
	if _, err := Link(ctx, "a"); err != nil {
		t.Fatalf("Link(ctx, a) again: %v", err)
	}

	for _, id := range []string{"a", "b"} {
		if got := ff.callsFor(id); got != 1 {
			t.Errorf("fetches of %q = %d, want 1", id, got)
		}
	}
	if got := ff.totalCalls(); got != 2 {
		t.Errorf("total fetches = %d, want 2", got)
	}
}

func TestLinksOrderAndErrors(t *testing.T) {
	notFound := &apierr.Error{Status: http.StatusNotFound, Code: "link_error.not_found", Message: "Link not found."}
	gone := &apierr.Error{Status: http.StatusGone, Code: "link_error.deleted", Message: "Deleted."}
	// The client's own refusal of a dot segment, without a call.
	dots := apierr.InvalidArgument("A link id must not be empty or a dot segment.")
	ff := &fakeFetcher{errs: map[string]error{"missing": notFound, "gone": gone, "..": dots}}
	ctx := MustRequest(t, NewFactory(Config{Fetcher: ff}))

	ids := []string{"c", "missing", "a", "c", "gone", "b", "missing", "..", "a"}
	wantCodes := []string{"", "link_error.not_found", "", "", "link_error.deleted", "", "link_error.not_found", apierr.CodeInvalidArgument, ""}

	links, errs := Links(ctx, ids)
	if len(links) != len(ids) || len(errs) != len(ids) {
		t.Fatalf("Links(%q) = %d links, %d errs; want %d of each", ids, len(links), len(errs), len(ids))
	}
	for i, id := range ids {
		if wantCodes[i] == "" {
			if errs[i] != nil || links[i] == nil || links[i].ID != id {
				t.Errorf("Links[%d] (%q) = %v, %v; want link %s and no error", i, id, links[i], errs[i], id)
			}
			continue
		}
		if links[i] != nil {
			t.Errorf("Links[%d] (%q) = %+v, want nil", i, id, links[i])
		}
		if got := errCode(errs[i]); got != wantCodes[i] {
			t.Errorf("Links[%d] (%q) error code = %s, want %s", i, id, got, wantCodes[i])
		}
	}
	// The upstream's own error value comes through, not a copy or a wrapper
	// that loses the details.
	if !errors.Is(errs[4], gone) {
		t.Errorf("Links[4] error = %v, want the fetcher's %v", errs[4], gone)
	}
	// Every distinct id is fetched once: validating ids is the resolvers'.
	for _, id := range []string{"a", "b", "c", "missing", "gone", ".."} {
		if got := ff.callsFor(id); got != 1 {
			t.Errorf("fetches of %q = %d, want 1", id, got)
		}
	}
}

func TestLinksEmptyAndAllGood(t *testing.T) {
	ff := &fakeFetcher{}
	ctx := MustRequest(t, NewFactory(Config{Fetcher: ff}))

	links, errs := Links(ctx, nil)
	if len(links) != 0 || errs != nil {
		t.Errorf("Links(ctx, nil) = %v, %v; want empty, nil", links, errs)
	}
	links, errs = Links(ctx, []string{"x", "y"})
	if errs != nil {
		t.Errorf("Links(ctx, [x y]) errs = %v, want nil when every link loaded", errs)
	}
	if got := []string{links[0].ID, links[1].ID}; !cmp.Equal(got, []string{"x", "y"}) {
		t.Errorf("Links(ctx, [x y]) ids = %q", got)
	}
}

// TestBatch checks the batch function itself: one non-nil result per key, in
// key order, and the context it was given passed to the fetcher.
func TestBatch(t *testing.T) {
	type ctxMarker struct{}
	ff := &fakeFetcher{
		errs:   map[string]error{"e": &apierr.Error{Code: "link_error.forbidden_action", Status: 403}},
		panics: map[string]any{"p": "boom"},
	}
	l := NewFactory(Config{Fetcher: ff, Concurrency: 3}).New()
	ctx := context.WithValue(context.Background(), ctxMarker{}, "batch-ctx")

	tests := []struct {
		name string
		keys []string
	}{
		{"one", []string{"a"}},
		{"one failing", []string{"e"}},
		{"one invalid", []string{""}},
		{"mixed", []string{"z", "e", "y", "p", strings.Repeat("x", 129), "x", "w"}},
		{"many", strings.Fields("k0 k1 k2 k3 k4 k5 k6 k7 k8 k9 k10 k11 k12")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			results := l.batch(ctx, tt.keys)
			if len(results) != len(tt.keys) {
				t.Fatalf("batch(%q) returned %d results, want %d", tt.keys, len(results), len(tt.keys))
			}
			for i, r := range results {
				if r == nil {
					t.Errorf("batch result %d (%q) is nil", i, tt.keys[i])
					continue
				}
				switch {
				case r.Error == nil && r.Data == nil:
					t.Errorf("batch result %d (%q) has neither data nor error", i, tt.keys[i])
				case r.Error == nil && r.Data.ID != tt.keys[i]:
					t.Errorf("batch result %d is link %q, want %q (key order)", i, r.Data.ID, tt.keys[i])
				case r.Error != nil && r.Data != nil:
					t.Errorf("batch result %d (%q) has data and error %v", i, tt.keys[i], r.Error)
				}
			}
		})
	}

	ctxs := ff.contexts()
	if len(ctxs) == 0 {
		t.Fatal("fetcher never called")
	}
	for i, c := range ctxs {
		if got := c.Value(ctxMarker{}); got != "batch-ctx" {
			t.Errorf("fetch %d got a context without the batch's value (%v): the batch must use the context it is given", i, got)
		}
	}
	if got := ff.maxInFlight(); got > 3 {
		t.Errorf("max fetches in flight = %d, want at most Concurrency 3", got)
	}
}

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

func TestRequestsDoNotShareResults(t *testing.T) {
	ff := &fakeFetcher{}
	f := NewFactory(Config{Fetcher: ff})
	ctx1, ctx2 := MustRequest(t, f), MustRequest(t, f)

	l1, err := Link(ctx1, "a")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := Link(ctx2, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got := ff.callsFor("a"); got != 2 {
		t.Errorf("fetches of a over two requests = %d, want 2 (one per request)", got)
	}
	if l1 == l2 || l1.InstitutionName == l2.InstitutionName {
		t.Errorf("the second request got the first request's link (%q, %q)", l1.InstitutionName, l2.InstitutionName)
	}
	if For(ctx1) == For(ctx2) {
		t.Error("two requests share one *Loaders")
	}
}

func TestMiddlewareAttachesFreshLoaders(t *testing.T) {
	ff := &fakeFetcher{}
	f := NewFactory(Config{Fetcher: ff})
	var seen []*Loaders
	h := f.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l := For(r.Context())
		if l == nil {
			t.Error("For(r.Context()) = nil inside Middleware")
			return
		}
		seen = append(seen, l)
		if _, err := Link(r.Context(), "m"); err != nil {
			t.Errorf("Link: %v", err)
		}
	}))
	for range 2 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/graphql", nil))
	}
	if len(seen) != 2 || seen[0] == seen[1] {
		t.Errorf("Middleware gave requests loaders %p; want a distinct set per request", seen)
	}
	if got := ff.callsFor("m"); got != 2 {
		t.Errorf("fetches of m over two HTTP requests = %d, want 2", got)
	}
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

func TestPanickingFetcher(t *testing.T) {
	var logs syncBuffer
	ff := &fakeFetcher{panics: map[string]any{"p": "secret panic text 4711", "q": fmt.Errorf("wrapped %w", errors.New("secret cause"))}}
	ctx := zerolog.New(&logs).WithContext(MustRequest(t, NewFactory(Config{Fetcher: ff})))

	for _, id := range []string{"p", "q"} {
		l, err := Link(ctx, id)
		if l != nil {
			t.Errorf("Link(%q) = %+v, want nil", id, l)
		}
		var e *apierr.Error
		if !errors.As(err, &e) {
			t.Fatalf("Link(%q) error = %T %v, want *apierr.Error", id, err, err)
		}
		if e.Code != apierr.CodeInternal {
			t.Errorf("Link(%q) code = %s, want %s", id, e.Code, apierr.CodeInternal)
		}
		if strings.Contains(err.Error(), "secret") || strings.Contains(e.Message, "secret") {
			t.Errorf("Link(%q) error %q carries the panic value", id, err)
		}
	}
	// Other links of the same request are unaffected.
	links, errs := Links(ctx, []string{"ok", "p"})
	if links[0] == nil || links[0].ID != "ok" || errs[0] != nil {
		t.Errorf("Links[0] = %v, %v; want link ok", links[0], errs[0])
	}
	if errCode(errs[1]) != apierr.CodeInternal {
		t.Errorf("Links[1] code = %s, want %s", errCode(errs[1]), apierr.CodeInternal)
	}
	if !strings.Contains(logs.String(), "panic while loading a link") {
		t.Errorf("panic not logged; logs:\n%s", logs.String())
	}
}

// TestIDsReachFetcherUnchanged: the loader does not validate ids; the
// resolvers do, where an id enters (graph's TestHostileLinkIDs checks that a
// bad id is answered facade.invalid_argument without an upstream call). Each
// id reaches the fetcher as it is, and the fetcher's own refusal comes
// through.
func TestIDsReachFetcherUnchanged(t *testing.T) {
	dots := apierr.InvalidArgument("A link id must not be empty or a dot segment.")
	ff := &fakeFetcher{errs: map[string]error{"": dots, ".": dots, "..": dots}}
	ctx := MustRequest(t, NewFactory(Config{Fetcher: ff}))
	tests := []struct {
		name    string
		id      string
		refused bool // by the fetcher
	}{
		{"empty", "", true},
		{"129 bytes", strings.Repeat("a", upstream.MaxLinkIDLen+1), false},
		{"129 bytes of runes", strings.Repeat("€", 43), false},
		{"newline", "mk_a\nb", false},
		{"NUL", "mk_a\x00", false},
		{"DEL", "mk_a\x7f", false},
		{"dot", ".", true},
		{"dot dot", "..", true},
		{"invalid UTF-8", "mk_\xff", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Link(ctx, tt.id)
			if got := ff.callsFor(tt.id); got != 1 {
				t.Errorf("fetches of %q = %d, want 1", tt.id, got)
			}
			switch {
			case tt.refused && (l != nil || errCode(err) != apierr.CodeInvalidArgument):
				t.Errorf("Link(%q) = %v, %v; want nil, the fetcher's %s", tt.id, l, err, apierr.CodeInvalidArgument)
			case !tt.refused && (err != nil || l == nil || l.ID != tt.id):
				t.Errorf("Link(%q) = %v, %v; want the link", tt.id, l, err)
			}
		})
	}
	// The longest valid id is fetched.
	if _, err := Link(ctx, strings.Repeat("a", upstream.MaxLinkIDLen)); err != nil {
		t.Errorf("Link(128-byte id) = %v, want nil", err)
	}
}

func TestNoLoadersInContext(t *testing.T) {
	ctx := context.Background()
	if l := For(ctx); l != nil {
		t.Fatalf("For(context.Background()) = %v, want nil", l)
	}
	l, err := Link(ctx, "a")
	if l != nil || errCode(err) != apierr.CodeInternal {
		t.Errorf("Link without loaders = %v, %v; want nil, %s", l, err, apierr.CodeInternal)
	}
	links, errs := Links(ctx, []string{"a", "b"})
	if len(links) != 2 || len(errs) != 2 {
		t.Fatalf("Links without loaders = %d links, %d errs; want 2 of each", len(links), len(errs))
	}
	for i := range links {
		if links[i] != nil || errCode(errs[i]) != apierr.CodeInternal {
			t.Errorf("Links[%d] without loaders = %v, %v; want nil, %s", i, links[i], errs[i], apierr.CodeInternal)
		}
	}
}

func TestUnknownValuesWarnedOnceAcrossRequests(t *testing.T) {
	var logs syncBuffer
	ff := &fakeFetcher{state: map[string]string{"n1": "reconnecting", "n2": "reconnecting", "n3": "paused"}}
	f := NewFactory(Config{Fetcher: ff})
	logger := zerolog.New(&logs)

	for range 2 { // two requests
		ctx := logger.WithContext(MustRequest(t, f))
		links, errs := Links(ctx, []string{"n1", "n2", "n3"})
		if errs != nil {
			t.Fatalf("Links: %v", errs)
		}
		for _, l := range links {
			if l.State != model.LinkStateUnknown {
				t.Errorf("link %s state = %s, want %s", l.ID, l.State, model.LinkStateUnknown)
			}
		}
	}

	type entry struct {
		Level, Kind, Value string
	}
	count := map[entry]int{}
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var e entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		count[e]++
	}
	want := map[entry]int{
		{"warn", "link.state", "reconnecting"}: 1,
		{"warn", "link.state", "paused"}:       1,
	}
	if diff := cmp.Diff(want, count); diff != "" {
		t.Errorf("warnings mismatch (-want +got):\n%s", diff)
	}
}

func TestWarnedSetIsBounded(t *testing.T) {
	s := &onceSet{seen: map[string]struct{}{}}
	for i := range maxWarned {
		if !s.add(fmt.Sprint(i)) {
			t.Fatalf("add(%d) = false before the bound", i)
		}
	}
	if s.add("one more") {
		t.Error("add past the bound = true, want false")
	}
	if s.add("0") {
		t.Error("add of a known value = true, want false")
	}
}

func TestWarningValueTruncated(t *testing.T) {
	var logs syncBuffer
	l := NewFactory(Config{Fetcher: &fakeFetcher{}}).New()
	ctx := zerolog.New(&logs).WithContext(context.Background())
	l.warnFunc(ctx)("link.state", strings.Repeat("v", 1000))
	var e struct{ Value string }
	if err := json.Unmarshal(logs.Bytes(), &e); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	if len(e.Value) > 64+len("…") {
		t.Errorf("logged value is %d bytes, want it truncated to 64", len(e.Value))
	}
}

// syncBuffer is a sink for a logger that the test reads.
type syncBuffer = logtest.Buffer
