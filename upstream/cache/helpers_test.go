package cache_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/testing/clocktest"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
)

// The client's GetIdentity is a Config.Next (that a *Cache stands where the
// client would is checked where both are wired: package main).
var _ = cache.Config{Next: (*upstream.Client)(nil).GetIdentity}

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

// memShared is a cache.Shared in memory: what Redis is to the replicas of
// these tests, with a lock that can be held from outside.
type memShared struct {
	mu      sync.Mutex
	entries map[string]cache.SharedEntry
	ttls    map[string]time.Duration
	locks   map[string]string // lease by key
	failed  map[string]bool
	gets    int
	deletes int
	leases  int
	lost    int // writes refused for a lost lease
}

func newMemShared() *memShared {
	return &memShared{entries: map[string]cache.SharedEntry{}, ttls: map[string]time.Duration{}, locks: map[string]string{}, failed: map[string]bool{}}
}

func (s *memShared) Get(_ context.Context, key string) (cache.SharedEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	e, ok := s.entries[key]
	return e, ok
}

func (s *memShared) Set(_ context.Context, key string, e cache.SharedEntry, ttl time.Duration, lease string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lease != "" && s.locks[key] != lease {
		s.lost++
		return cache.ErrLeaseLost
	}
	s.entries[key], s.ttls[key] = e, ttl
	return nil
}

func (s *memShared) Delete(_ context.Context, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deletes++
	delete(s.entries, key)
}

func (s *memShared) Invalidate(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deletes++
	delete(s.entries, key)
	delete(s.locks, key)
	return nil
}

func (s *memShared) Lock(_ context.Context, key string, _ time.Duration) (func(), string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks[key] != "" {
		return nil, "", false
	}
	s.leases++
	lease := fmt.Sprint("lease-", s.leases)
	s.locks[key] = lease
	return func() { s.unlock(key, lease) }, lease, true
}

func (s *memShared) MarkFailed(_ context.Context, key string, _ time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed[key] = true
}

func (s *memShared) Failed(_ context.Context, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed[key]
}

func (s *memShared) unlock(key, lease string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks[key] == lease {
		delete(s.locks, key)
	}
}

func (s *memShared) entry(key string) (cache.SharedEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	return e, ok
}

// replica returns a cache over next sharing shared, as one replica's.
func replica(t *testing.T, next func(context.Context, string) (*upstream.Identity, error), shared cache.Shared, clock *clocktest.Clock) *cache.Cache {
	t.Helper()
	c, err := cache.New(cache.Config{
		Next: next, Namespace: "ns", TTL: time.Minute, MaxStale: time.Hour,
		Now: clock.Now, Shared: shared, SharedLockTTL: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}
