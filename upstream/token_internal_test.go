package upstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/testing/clocktest"
)

func TestRenewMargin(t *testing.T) {
	tests := []struct{ ttl, want time.Duration }{
		{3600 * time.Second, time.Minute},
		{2 * time.Hour, time.Minute},
		{10 * time.Minute, time.Minute},
		{5 * time.Minute, 30 * time.Second},
		{100 * time.Second, 10 * time.Second},
		{time.Second, 100 * time.Millisecond},
		{0, 0},
	}
	for _, tt := range tests {
		if got := renewMargin(tt.ttl); got != tt.want {
			t.Errorf("renewMargin(%v) = %v, want %v", tt.ttl, got, tt.want)
		}
	}
}

// fakeFetch is a token fetch that counts its calls and answers tok-<n>.
type fakeFetch struct {
	calls   atomic.Int32
	ttl     time.Duration
	err     error
	release chan struct{}        // when set, each fetch waits for it
	ctxs    chan context.Context // receives the first fetch's context
}

func (f *fakeFetch) fetch(ctx context.Context) (string, time.Duration, error) {
	n := f.calls.Add(1)
	if f.ctxs != nil {
		select {
		case f.ctxs <- ctx: // the first fetch's context; later ones would be a bug
		default:
		}
	}
	if f.release != nil {
		<-f.release
	}
	if f.err != nil {
		return "", 0, f.err
	}
	return fmt.Sprintf("tok-%d", n), f.ttl, nil
}

func mustToken(tb testing.TB, ts *tokenSource, want string) {
	tb.Helper()
	got, err := ts.Token(context.Background())
	if err != nil || got != want {
		tb.Fatalf("Token(ctx) = %q, %v; want %q, nil", got, err, want)
	}
}

func TestTokenSourceCachesUntilRenewal(t *testing.T) {
	clock := clocktest.New(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))
	f := &fakeFetch{ttl: time.Hour}
	ts := &tokenSource{fetch: f.fetch, now: clock.Now}
	mustToken(t, ts, "tok-1")
	clock.Advance(59*time.Minute - time.Nanosecond)
	mustToken(t, ts, "tok-1")
	clock.Advance(time.Nanosecond) // exactly ttl - margin
	mustToken(t, ts, "tok-2")
	if got := f.calls.Load(); got != 2 {
		t.Errorf("fetches = %d, want 2", got)
	}
}

func TestTokenSourceErrorNotCached(t *testing.T) {
	boom := errors.New("boom")
	f := &fakeFetch{ttl: time.Hour, err: boom}
	ts := &tokenSource{fetch: f.fetch, now: time.Now}
	for range 2 {
		if _, err := ts.Token(context.Background()); !errors.Is(err, boom) {
			t.Errorf("Token(ctx): %v, want %v", err, boom)
		}
	}
	f.err = nil
	mustToken(t, ts, "tok-3")
	if got := f.calls.Load(); got != 3 {
		t.Errorf("fetches = %d, want 3", got)
	}
}

// TestTokenSourceInvalidateStale: two calls both saw tok-1 expire; the first
// renews it, and the second's late Invalidate(tok-1) must not drop tok-2.
func TestTokenSourceInvalidateStale(t *testing.T) {
	f := &fakeFetch{ttl: time.Hour}
	ts := &tokenSource{fetch: f.fetch, now: time.Now}
	mustToken(t, ts, "tok-1")
	ts.Invalidate("tok-1")
	mustToken(t, ts, "tok-2")
	ts.Invalidate("tok-1")
	mustToken(t, ts, "tok-2")
	if got := f.calls.Load(); got != 2 {
		t.Errorf("fetches = %d, want 2", got)
	}
}

func TestTokenSourceSingleFlight(t *testing.T) {
	f := &fakeFetch{ttl: time.Hour, release: make(chan struct{}), ctxs: make(chan context.Context, 1)}
	ts := &tokenSource{fetch: f.fetch, now: time.Now}
	const n = 50
	var wg sync.WaitGroup
	results := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = ts.Token(context.Background()) })
	}
	<-f.ctxs
	time.Sleep(20 * time.Millisecond) // let the others queue behind the fetch
	close(f.release)
	wg.Wait()
	for i := range n {
		if results[i] != "tok-1" || errs[i] != nil {
			t.Errorf("caller %d: Token(ctx) = %q, %v; want tok-1, nil", i, results[i], errs[i])
		}
	}
	if got := f.calls.Load(); got != 1 {
		t.Errorf("fetches = %d, want 1", got)
	}
}

// TestTokenSourceFetchOutlivesLeader: the fetch serves every waiter, so the
// leader's cancellation must not cancel it.
func TestTokenSourceFetchOutlivesLeader(t *testing.T) {
	f := &fakeFetch{ttl: time.Hour, release: make(chan struct{}), ctxs: make(chan context.Context, 1)}
	ts := &tokenSource{fetch: f.fetch, now: time.Now}
	leaderCtx, cancelLeader := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "leader"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		ts.Token(leaderCtx)
	}()
	fetchCtx := <-f.ctxs
	cancelLeader()
	if fetchCtx.Err() != nil {
		t.Errorf("fetch context: %v after the leader was cancelled, want still live", fetchCtx.Err())
	}
	if got, _ := fetchCtx.Value(ctxKey{}).(string); got != "leader" {
		t.Errorf("fetch context value = %q, want the leader's values kept", got)
	}
	close(f.release)
	<-done
	mustToken(t, ts, "tok-1")
}

type ctxKey struct{}

func TestTokenSourceWaiterCancelled(t *testing.T) {
	f := &fakeFetch{ttl: time.Hour, release: make(chan struct{}), ctxs: make(chan context.Context, 1)}
	ts := &tokenSource{fetch: f.fetch, now: time.Now}
	leader := make(chan error, 1)
	go func() {
		_, err := ts.Token(context.Background())
		leader <- err
	}()
	<-f.ctxs
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ts.Token(ctx)
	var e *apierr.Error
	if !errors.As(err, &e) || e.Code != apierr.CodeUpstreamTimeout || !errors.Is(err, context.Canceled) {
		t.Errorf("Token(cancelled ctx) while another fetches: %v, want %s wrapping context.Canceled", err, apierr.CodeUpstreamTimeout)
	}
	close(f.release)
	if err := <-leader; err != nil {
		t.Errorf("leader Token(ctx): %v, want nil", err)
	}
	if got := f.calls.Load(); got != 1 {
		t.Errorf("fetches = %d, want 1", got)
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc…"},
		{"aé", 2, "a…"},   // byte 2 is inside é
		{"aéb", 3, "aé…"}, // byte 3 starts b
		{"日本語", 4, "日…"},
	}
	for _, tt := range tests {
		if got := truncate(tt.s, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}
