package upstream_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
)

func TestTokenSingleFlight(t *testing.T) {
	f := newFakeUpstream(t, fakeOptions{token: func(w http.ResponseWriter, r *http.Request, n int) {
		time.Sleep(100 * time.Millisecond)
		writeJSON(w, http.StatusCreated, `{"access_token":"tok-shared","token_type":"bearer","expires_in":3600}`)
	}})
	c := MustNewClient(t, f.URL, upstream.Config{})
	const n = 50
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = c.GetIdentity(t.Context(), "mk_test")
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("%d concurrent GetIdentity calls: %v, want no error", n, err)
	}
	if gotIdentity, gotToken := f.Counts(); gotToken != 1 || gotIdentity != n {
		t.Errorf("%d concurrent GetIdentity calls: %d token and %d identity calls, want 1 and %d", n, gotToken, gotIdentity, n)
	}
	for _, r := range f.Requests() {
		if r.EscapedPath != "/auth/token" && r.Header.Get("Authorization") != "Bearer tok-shared" {
			t.Errorf("identity request Authorization = %q, want Bearer tok-shared", r.Header.Get("Authorization"))
		}
	}
}

// slowTokenUpstream is a fake whose token endpoint answers only when release
// is closed (or the client gives up); started receives one value per token call.
func slowTokenUpstream(t *testing.T) (f *fakeUpstream, started chan struct{}, release func()) {
	t.Helper()
	started = make(chan struct{}, 10)
	ch := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	f = newFakeUpstream(t, fakeOptions{token: func(w http.ResponseWriter, r *http.Request, n int) {
		started <- struct{}{}
		select {
		case <-ch:
			writeJSON(w, http.StatusCreated, `{"access_token":"tok-slow","token_type":"bearer","expires_in":3600}`)
		case <-r.Context().Done():
		}
	}})
	t.Cleanup(release) // runs before the server's Close
	return f, started, release
}

func TestTokenWaiterCancelled(t *testing.T) {
	f, started, release := slowTokenUpstream(t)
	c := MustNewClient(t, f.URL, upstream.Config{})

	leaderErr := make(chan error, 1)
	go func() {
		_, err := c.GetIdentity(context.Background(), "mk_test")
		leaderErr <- err
	}()
	<-started // the leader is fetching the token

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.GetIdentity(ctx, "mk_test")
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("waiter with a 50ms deadline returned after %v, want promptly", elapsed)
	}
	if e := MustAsError(t, err); e.Code != apierr.CodeUpstreamTimeout {
		t.Errorf("GetIdentity(ctx with 50ms deadline, %q): %v, want %s", "mk_test", err, apierr.CodeUpstreamTimeout)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GetIdentity(ctx with 50ms deadline, %q): %v, want it to wrap context.DeadlineExceeded", "mk_test", err)
	}

	// The waiter's departure does not disturb the fetch it was waiting for.
	release()
	if err := <-leaderErr; err != nil {
		t.Errorf("leader GetIdentity(ctx, %q): %v, want nil", "mk_test", err)
	}
	if gotIdentity, gotToken := f.Counts(); gotToken != 1 || gotIdentity != 1 {
		t.Errorf("%d token and %d identity calls, want 1 and 1", gotToken, gotIdentity)
	}
}

// TestTokenLeaderCancelled: the caller that happens to start the token fetch
// is bounded by its own context too, not by Config.Timeout.
func TestTokenLeaderCancelled(t *testing.T) {
	f, started, release := slowTokenUpstream(t)
	c := MustNewClient(t, f.URL, upstream.Config{Timeout: 2 * time.Second})

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.GetIdentity(ctx, "mk_test")
	elapsed := time.Since(start)
	<-started
	if elapsed > time.Second {
		t.Errorf("leader with a 50ms deadline returned after %v, want promptly", elapsed)
	}
	if e := MustAsError(t, err); e.Code != apierr.CodeUpstreamTimeout {
		t.Errorf("GetIdentity(ctx with 50ms deadline, %q): %v, want %s", "mk_test", err, apierr.CodeUpstreamTimeout)
	}
	// The fetch carries on for the callers that come next.
	release()
	if _, err := c.GetIdentity(t.Context(), "mk_test"); err != nil {
		t.Errorf("next GetIdentity(ctx, %q): %v, want nil", "mk_test", err)
	}
	if _, gotToken := f.Counts(); gotToken != 1 {
		t.Errorf("%d token calls, want 1", gotToken)
	}
}
