package cache_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/testing/clocktest"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
)

// The cache stands where the upstream client would: it is a
// loader.Fetcher, and the client's GetIdentity is a Config.Next.
var (
	_ loader.Fetcher = (*cache.Cache)(nil)
	_                = cache.Config{Next: (*upstream.Client)(nil).GetIdentity}
)

// newFakeClock returns a clock the tests move by hand.
func newFakeClock() *clocktest.Clock {
	return clocktest.New(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
}

// mustServed returns how linkID was served, or fails the test.
func mustServed(tb testing.TB, s *cache.Served, linkID string) cache.Info {
	tb.Helper()
	info, ok := s.Get(linkID)
	if !ok {
		tb.Fatalf("Served has no entry for %q", linkID)
	}
	return info
}

// answerFunc answers the n-th call (from 1) of a fakeFetcher.
type answerFunc func(ctx context.Context, linkID string, n int) (*upstream.Identity, error)

// fakeFetcher is a scripted upstream that counts its calls.
type fakeFetcher struct {
	answer answerFunc
	calls  atomic.Int32
}

func (f *fakeFetcher) GetIdentity(ctx context.Context, linkID string) (*upstream.Identity, error) {
	n := int(f.calls.Add(1))
	return f.answer(ctx, linkID, n)
}

func (f *fakeFetcher) Calls() int { return int(f.calls.Load()) }

// script answers the n-th call with answers[n-1], and the last one after.
func script(answers ...func(linkID string) (*upstream.Identity, error)) answerFunc {
	return func(_ context.Context, linkID string, n int) (*upstream.Identity, error) {
		return answers[min(n, len(answers))-1](linkID)
	}
}

// ok answers with an identity marked version, refreshed at refreshed.
func ok(version string, refreshed time.Time) func(string) (*upstream.Identity, error) {
	return func(linkID string) (*upstream.Identity, error) { return identity(linkID, version, refreshed), nil }
}

// fail answers with err.
func fail(err error) func(string) (*upstream.Identity, error) {
	return func(string) (*upstream.Identity, error) { return nil, err }
}

// identity returns an answer for linkID whose only account is named version.
func identity(linkID, version string, refreshed time.Time) *upstream.Identity {
	return &upstream.Identity{
		Accounts: []upstream.Account{{AccountID: "acc_1", AccountType: "depository.checking", Name: version}},
		Link: upstream.Link{
			LinkID:   linkID,
			Products: map[string]*upstream.ProductStatus{"identity": {RefreshedAt: upstream.Timestamp{Time: refreshed}}},
		},
	}
}

// version returns the marker of an identity built by identity.
func version(id *upstream.Identity) string {
	if id == nil || len(id.Accounts) == 0 {
		return "<none>"
	}
	return id.Accounts[0].Name
}

func apiError(status int, code string) *apierr.Error {
	return &apierr.Error{Status: status, Code: code, Message: http.StatusText(status)}
}

var (
	t0 = time.Date(2024, 4, 30, 8, 0, 0, 0, time.UTC)

	errRateLimited = apiError(http.StatusTooManyRequests, apierr.CodeRateLimitExceeded)
	errUnavailable = apiError(http.StatusServiceUnavailable, apierr.CodeUpstreamUnavailable)
	errTimeout     = &apierr.Error{Code: apierr.CodeUpstreamTimeout, Message: "timeout"}
	errNotFound    = apiError(http.StatusNotFound, "link_error.not_found")
)

// MustNew returns a cache closed when the test ends. cfg.Namespace
// defaults to "ns".
func MustNew(tb testing.TB, cfg cache.Config) *cache.Cache {
	tb.Helper()
	if cfg.Namespace == "" {
		cfg.Namespace = "ns"
	}
	c, err := cache.New(cfg)
	if err != nil {
		tb.Fatalf("cache.New: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

// mustGet calls GetIdentity and fails the test on an error.
func mustGet(tb testing.TB, ctx context.Context, c *cache.Cache, linkID string) *upstream.Identity {
	tb.Helper()
	id, err := c.GetIdentity(ctx, linkID)
	if err != nil {
		tb.Fatalf("GetIdentity(ctx, %q): %v", linkID, err)
	}
	return id
}

// wantCode fails the test unless err is an *apierr.Error with code.
func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	var e *apierr.Error
	if !errors.As(err, &e) || e.Code != code {
		tb.Fatalf("error %v, want code %s", err, code)
	}
}

// waitFor polls cond until it holds, or fails the test after 5 s.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	next := &fakeFetcher{answer: script(ok("v1", t0))}
	for _, tc := range []struct {
		name string
		cfg  cache.Config
	}{
		{"no next", cache.Config{Namespace: "ns"}},
		{"no namespace", cache.Config{Next: next.GetIdentity}},
		{"NUL in namespace", cache.Config{Next: next.GetIdentity, Namespace: "a\x00b"}},
		{"negative TTL", cache.Config{Next: next.GetIdentity, Namespace: "ns", TTL: -1}},
		{"negative MaxBytes", cache.Config{Next: next.GetIdentity, Namespace: "ns", MaxBytes: -1}},
		{"negative FetchTimeout", cache.Config{Next: next.GetIdentity, Namespace: "ns", FetchTimeout: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := cache.New(tc.cfg); err == nil {
				c.Close()
				t.Fatalf("New(%+v): no error", tc.cfg)
			}
		})
	}
}

func TestDefaultsWithRealClock(t *testing.T) {
	next := &fakeFetcher{answer: script(ok("v1", t0))}
	c := MustNew(t, cache.Config{Next: next.GetIdentity})
	mustGet(t, t.Context(), c, "l1")
	mustGet(t, t.Context(), c, "l1")
	if got := next.Calls(); got != 1 {
		t.Errorf("upstream calls = %d, want 1", got)
	}
}

func TestFreshHitCostsNoCall(t *testing.T) {
	clk := newFakeClock()
	next := &fakeFetcher{answer: script(ok("v1", t0), ok("v2", t0.Add(time.Hour)))}
	c := MustNew(t, cache.Config{Next: next.GetIdentity, Now: clk.Now, TTL: 5 * time.Minute})

	ctx, served := cache.WithServed(t.Context())
	if got := version(mustGet(t, ctx, c, "l1")); got != "v1" {
		t.Fatalf("first read: %s, want v1", got)
	}
	if info, _ := served.Get("l1"); info != (cache.Info{}) {
		t.Errorf("first read served as %+v, want from upstream", info)
	}

	clk.Advance(5*time.Minute - time.Nanosecond)
	ctx, served = cache.WithServed(t.Context())
	if got := version(mustGet(t, ctx, c, "l1")); got != "v1" {
		t.Fatalf("second read: %s, want v1", got)
	}
	if got := next.Calls(); got != 1 {
		t.Fatalf("upstream calls after a fresh hit = %d, want 1", got)
	}
	if info, _ := served.Get("l1"); info != (cache.Info{FromCache: true, Age: 5*time.Minute - time.Nanosecond}) {
		t.Errorf("hit served as %+v", info)
	}

	clk.Advance(time.Nanosecond) // age == TTL: no longer fresh
	if got := version(mustGet(t, t.Context(), c, "l1")); got != "v2" {
		t.Fatalf("read at TTL: %s, want v2", got)
	}
	if got := next.Calls(); got != 2 {
		t.Fatalf("upstream calls after TTL = %d, want 2", got)
	}
	want := cache.Stats{Hits: 1, Misses: 2, Stores: 2}
	got := c.Stats()
	got.Bytes = 0
	if got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

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

func TestNewerRefreshReplacesOlderDoesNot(t *testing.T) {
	clk := newFakeClock()
	const ttl = 5 * time.Minute
	next := &fakeFetcher{answer: script(
		ok("v1", t0),
		ok("v2", t0.Add(time.Hour)),    // newer refresh: replaces
		ok("v0", t0.Add(-time.Hour)),   // older refresh: must not overwrite
		ok("v3", t0.Add(time.Hour)),    // same refresh, later answer: replaces
		ok("v4", time.Time{}),          // no refreshed_at: cannot be compared, replaces
		ok("v5", t0.Add(-2*time.Hour)), // older than an unknown refresh: replaces
	)}
	c := MustNew(t, cache.Config{Next: next.GetIdentity, Now: clk.Now, TTL: ttl})

	read := func(want string, wantInfo cache.Info) {
		t.Helper()
		ctx, served := cache.WithServed(t.Context())
		if got := version(mustGet(t, ctx, c, "l1")); got != want {
			t.Fatalf("read: %s, want %s", got, want)
		}
		if info, _ := served.Get("l1"); info != wantInfo {
			t.Errorf("%s served as %+v, want %+v", want, info, wantInfo)
		}
	}
	read("v1", cache.Info{})
	clk.Advance(ttl)
	read("v2", cache.Info{})
	clk.Advance(ttl)
	read("v2", cache.Info{FromCache: true}) // upstream said v0: ours is newer
	if got, want := c.Stats().Stores, int64(2); got != want {
		t.Errorf("Stores = %d, want %d: the older answer was stored", got, want)
	}
	// The upstream confirmed it has nothing newer: fresh again.
	clk.Advance(time.Minute)
	read("v2", cache.Info{FromCache: true, Age: time.Minute})
	if got := next.Calls(); got != 3 {
		t.Fatalf("upstream calls = %d, want 3", got)
	}
	clk.Advance(ttl)
	read("v3", cache.Info{})
	clk.Advance(ttl)
	read("v4", cache.Info{})
	clk.Advance(ttl)
	read("v5", cache.Info{})
}

func TestStaleIfError(t *testing.T) {
	localBudget := &apierr.Error{Status: http.StatusTooManyRequests, Code: apierr.CodeRateLimitExceeded,
		Message: "Rate limit exceeded", RetryAfter: 20 * time.Second, HasRetryAfter: true}
	const ttl, maxStale = 5 * time.Minute, time.Hour
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"429 upstream", errRateLimited},
		{"429 local budget", localBudget},
		{"503", errUnavailable},
		{"500 bad gateway code", apiError(http.StatusBadGateway, "api_error.internal")},
		{"timeout", errTimeout},
		{"plain deadline", context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			next := &fakeFetcher{answer: script(ok("v1", t0), fail(tc.err))}
			c := MustNew(t, cache.Config{Next: next.GetIdentity, Now: clk.Now, TTL: ttl, MaxStale: maxStale})
			fetchedAt := clk.Now()
			mustGet(t, t.Context(), c, "l1")

			for _, age := range []time.Duration{ttl, ttl + maxStale - time.Nanosecond} {
				clk.Set(fetchedAt.Add(age))
				ctx, served := cache.WithServed(t.Context())
				id, err := c.GetIdentity(ctx, "l1")
				if err != nil || version(id) != "v1" {
					t.Fatalf("at age %v: %s, %v; want the stale v1", age, version(id), err)
				}
				if info, _ := served.Get("l1"); info != (cache.Info{FromCache: true, Stale: true, Age: age}) {
					t.Errorf("at age %v served as %+v", age, info)
				}
				if maxAge, stale := served.AnyStale(); !stale || maxAge != age {
					t.Errorf("AnyStale() = %v, %v; want %v, true", maxAge, stale, age)
				}
			}

			clk.Advance(time.Nanosecond) // age == TTL+MaxStale: too old
			_, err := c.GetIdentity(t.Context(), "l1")
			if !errors.Is(err, tc.err) {
				t.Fatalf("past the stale window: %v, want %v", err, tc.err)
			}
			if got, want := next.Calls(), 4; got != want {
				t.Errorf("upstream calls = %d, want %d", got, want)
			}
			if got := c.Stats().StaleServes; got != 2 {
				t.Errorf("StaleServes = %d, want 2", got)
			}
		})
	}
}

func TestStaleOff(t *testing.T) {
	clk := newFakeClock()
	next := &fakeFetcher{answer: script(ok("v1", t0), fail(errRateLimited))}
	c := MustNew(t, cache.Config{Next: next.GetIdentity, Now: clk.Now, TTL: time.Minute, MaxStale: -1})
	mustGet(t, t.Context(), c, "l1")
	clk.Advance(time.Minute)
	if _, err := c.GetIdentity(t.Context(), "l1"); !errors.Is(err, errRateLimited) {
		t.Fatalf("with MaxStale off: %v, want %v", err, errRateLimited)
	}
}

func TestLastingErrorDeletesEntry(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
	}{
		{http.StatusNotFound, "link_error.not_found"},
		{http.StatusForbidden, "link_error.forbidden_action"},
		{http.StatusGone, "link_error.deleted"},
		{http.StatusUnprocessableEntity, "link_error.bad_state"},
		{http.StatusUnauthorized, "api_error.auth.unauthorized"},
		{http.StatusOK, apierr.CodeUpstreamBadResponse},
	} {
		t.Run(tc.code, func(t *testing.T) {
			clk := newFakeClock()
			lasting := apiError(tc.status, tc.code)
			next := &fakeFetcher{answer: script(ok("v1", t0), fail(lasting), fail(errRateLimited))}
			c := MustNew(t, cache.Config{Next: next.GetIdentity, Now: clk.Now, TTL: time.Minute})
			mustGet(t, t.Context(), c, "l1")
			clk.Advance(time.Minute)

			if _, err := c.GetIdentity(t.Context(), "l1"); !errors.Is(err, lasting) {
				t.Fatalf("GetIdentity(ctx, %q): %v, want %v", "l1", err, lasting)
			}
			// Deleted: a 429 now finds nothing to serve stale.
			if _, err := c.GetIdentity(t.Context(), "l1"); !errors.Is(err, errRateLimited) {
				t.Fatalf("after %s: %v, want %v (the entry was served)", tc.code, err, errRateLimited)
			}
			if got := next.Calls(); got != 3 {
				t.Errorf("upstream calls = %d, want 3", got)
			}
			if got := c.Stats().StaleServes; got != 0 {
				t.Errorf("StaleServes = %d, want 0", got)
			}
		})
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	next := &fakeFetcher{answer: script(fail(errUnavailable), fail(errNotFound), fail(errRateLimited), ok("v1", t0))}
	c := MustNew(t, cache.Config{Next: next.GetIdentity, Now: newFakeClock().Now})
	for i, want := range []error{errUnavailable, errNotFound, errRateLimited} {
		if _, err := c.GetIdentity(t.Context(), "l1"); !errors.Is(err, want) {
			t.Fatalf("call %d: %v, want %v", i+1, err, want)
		}
	}
	mustGet(t, t.Context(), c, "l1")
	mustGet(t, t.Context(), c, "l1")
	if got := next.Calls(); got != 4 {
		t.Errorf("upstream calls = %d, want 4", got)
	}
}

func TestNamespacesAreIsolated(t *testing.T) {
	clk := newFakeClock()
	nextA := &fakeFetcher{answer: script(ok("from-a", t0))}
	nextB := &fakeFetcher{answer: script(ok("from-b", t0))}
	a := MustNew(t, cache.Config{Next: nextA.GetIdentity, Namespace: cache.NamespaceFor("https://api.moneykit.com", "client-a"), Now: clk.Now})
	b := MustNew(t, cache.Config{Next: nextB.GetIdentity, Namespace: cache.NamespaceFor("https://api.moneykit.com", "client-b"), Now: clk.Now})
	cache.ShareStore(b, a) // one store, as replicas sharing Redis would have

	if a.Key("l1") == b.Key("l1") {
		t.Fatalf("both namespaces use key %q", a.Key("l1"))
	}
	if got := version(mustGet(t, t.Context(), a, "l1")); got != "from-a" {
		t.Fatalf("a: %s", got)
	}
	if got := version(mustGet(t, t.Context(), b, "l1")); got != "from-b" {
		t.Fatalf("b served %s, want its own upstream's answer", got)
	}
	if got := version(mustGet(t, t.Context(), a, "l1")); got != "from-a" {
		t.Fatalf("a after b: %s", got)
	}
	if na, nb := nextA.Calls(), nextB.Calls(); na != 1 || nb != 1 {
		t.Errorf("upstream calls a=%d b=%d, want 1 each", na, nb)
	}
}

func TestKeyFormat(t *testing.T) {
	next := &fakeFetcher{answer: script(ok("v1", t0))}
	c := MustNew(t, cache.Config{Next: next.GetIdentity, Namespace: "ns1"})
	if got, want := c.Key("mk_1"), "ns1\x00mk_1"; got != want {
		t.Errorf("Key(%q) = %q, want %q", "mk_1", got, want)
	}
	if got, want := len(cache.NamespaceFor("https://x", "id")), 64; got != want {
		t.Errorf("len(NamespaceFor) = %d, want %d", got, want)
	}
	if cache.NamespaceFor("https://x", "ab") == cache.NamespaceFor("https://xa", "b") {
		t.Error("NamespaceFor does not separate base URL from client id")
	}
}

func TestBoundedByBytes(t *testing.T) {
	clk := newFakeClock()
	next := &fakeFetcher{answer: script(ok("v1", t0))}
	probe := MustNew(t, cache.Config{Next: next.GetIdentity, Now: clk.Now})
	mustGet(t, t.Context(), probe, "link-00")
	probe.CleanUp()
	one := probe.Stats().Bytes
	if one <= 0 {
		t.Fatalf("one entry weighs %d bytes", one)
	}

	maxBytes := 3*one + one/2
	c := MustNew(t, cache.Config{Next: next.GetIdentity, Now: clk.Now, MaxBytes: maxBytes})
	for i := range 10 {
		mustGet(t, t.Context(), c, fmt.Sprintf("link-%02d", i))
	}
	c.CleanUp()
	s := c.Stats()
	if s.Stores != 10 || s.Evictions < 6 || s.Bytes > maxBytes || s.Bytes < one {
		t.Errorf("Stats() = %+v; want 10 stores, at least 6 evictions, %d <= Bytes <= %d", s, one, maxBytes)
	}
}

func TestTooLargeIsNotCached(t *testing.T) {
	clk := newFakeClock()
	next := &fakeFetcher{answer: script(ok("v1", t0))}
	c := MustNew(t, cache.Config{Next: next.GetIdentity, Now: clk.Now, MaxBytes: 64})
	mustGet(t, t.Context(), c, "l1")
	mustGet(t, t.Context(), c, "l1")
	if got := next.Calls(); got != 2 {
		t.Errorf("upstream calls = %d, want 2", got)
	}
	if s := c.Stats(); s.Stores != 0 || s.Bytes != 0 {
		t.Errorf("Stats() = %+v, want nothing stored", s)
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

func TestCloseEndsInFlightCalls(t *testing.T) {
	entered := make(chan struct{})
	next := &fakeFetcher{answer: func(ctx context.Context, linkID string, n int) (*upstream.Identity, error) {
		if n == 1 {
			close(entered)
			<-ctx.Done()
			return nil, apierr.AsError(ctx.Err())
		}
		return identity(linkID, "v1", t0), nil
	}}
	c, err := cache.New(cache.Config{Next: next.GetIdentity, Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.GetIdentity(t.Context(), "l1")
		done <- err
	}()
	<-entered
	c.Close()
	select {
	case err := <-done:
		wantCode(t, err, apierr.CodeUpstreamTimeout)
	case <-time.After(5 * time.Second):
		t.Fatal("Close returned while its call still runs")
	}
	_, err = c.GetIdentity(t.Context(), "l1")
	wantCode(t, err, apierr.CodeUpstreamUnavailable)
	if got := next.Calls(); got != 1 {
		t.Errorf("upstream calls = %d, want 1 (none after Close)", got)
	}
	c.Close() // twice is fine
}

func TestServed(t *testing.T) {
	clk := newFakeClock()
	next := &fakeFetcher{answer: func(ctx context.Context, linkID string, n int) (*upstream.Identity, error) {
		if n > 3 {
			return nil, errUnavailable
		}
		return identity(linkID, "v1", t0), nil
	}}
	c := MustNew(t, cache.Config{Next: next.GetIdentity, Now: clk.Now, TTL: time.Minute})
	mustGet(t, t.Context(), c, "old")
	clk.Advance(30 * time.Minute)
	mustGet(t, t.Context(), c, "older")
	clk.Advance(-40 * time.Minute)
	ctx, served := cache.WithServed(t.Context())
	mustGet(t, ctx, c, "older") // a clock stepping back makes no negative age
	if got, want := mustServed(t, served, "older"), (cache.Info{FromCache: true}); got != want {
		t.Errorf("after the clock stepped back: %+v, want %+v", got, want)
	}
	mustGet(t, t.Context(), c, "fresh")
	clk.Advance(50 * time.Minute)

	ctx, served = cache.WithServed(t.Context())
	for _, id := range []string{"old", "older", "fresh"} {
		mustGet(t, ctx, c, id)
	}
	for id, want := range map[string]cache.Info{
		"old":   {FromCache: true, Stale: true, Age: 40 * time.Minute},
		"older": {FromCache: true, Stale: true, Age: 10 * time.Minute},
		"fresh": {FromCache: true, Stale: true, Age: 50 * time.Minute},
	} {
		if got, ok := served.Get(id); !ok || got != want {
			t.Errorf("Get(%q) = %+v, %v; want %+v", id, got, ok, want)
		}
	}
	if maxAge, stale := served.AnyStale(); !stale || maxAge != 50*time.Minute {
		t.Errorf("AnyStale() = %v, %v; want 50m, true", maxAge, stale)
	}
	if _, ok := served.Get("unknown"); ok {
		t.Error("Get(unknown) found an entry")
	}

	// A fresh answer for a link already served stale keeps it stale.
	clk.Advance(-50 * time.Minute)
	mustGet(t, ctx, c, "fresh")
	if got, _ := served.Get("fresh"); !got.Stale {
		t.Errorf("fresh re-read turned the stale record into %+v", got)
	}

	var none *cache.Served
	if _, stale := none.AnyStale(); stale {
		t.Error("nil Served is stale")
	}
	if _, ok := none.Get("old"); ok {
		t.Error("nil Served has entries")
	}
	_, empty := cache.WithServed(t.Context())
	if _, stale := empty.AnyStale(); stale {
		t.Error("empty Served is stale")
	}
}

func BenchmarkHit(b *testing.B) {
	next := &fakeFetcher{answer: script(ok("v1", t0))}
	c := MustNew(b, cache.Config{Next: next.GetIdentity, TTL: time.Hour})
	ctx := context.Background()
	mustGet(b, ctx, c, "mk_link")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.GetIdentity(ctx, "mk_link"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if n := next.Calls(); n != 1 {
		b.Fatalf("upstream calls = %d, want 1", n)
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
