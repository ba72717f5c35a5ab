package cache_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
)

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

// TestDeadlineServesStale: without any shared level, an upstream slower
// than the caller's deadline is answered from a stale entry, not with a
// timeout.
func TestDeadlineServesStale(t *testing.T) {
	clock := newFakeClock()
	first := true
	up := &fakeFetcher{answer: func(ctx context.Context, linkID string, n int) (*upstream.Identity, error) {
		if first {
			first = false
			return identity(linkID, "v1", t0), nil
		}
		<-ctx.Done() // hangs until cancelled
		return nil, ctx.Err()
	}}
	c, err := cache.New(cache.Config{Next: up.GetIdentity, Namespace: "ns", TTL: time.Minute, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.GetIdentity(t.Context(), "link"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	ctx, served := cache.WithServed(ctx)
	id, err := c.GetIdentity(ctx, "link")
	if err != nil || version(id) != "v1" || !mustServed(t, served, "link").Stale {
		t.Fatalf("read past the deadline = %q, %v; want v1 served stale", version(id), err)
	}
}
