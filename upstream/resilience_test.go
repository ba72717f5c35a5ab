package upstream_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// fast makes retries quick; the breaker stays out of the way unless a test
// is about it.
var fast = upstream.Config{RetryBaseDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond, BreakerMinCalls: 1 << 20}

func TestRetries(t *testing.T) {
	const id = sandbox.LinkSeed
	tests := []struct {
		name      string
		fault     sandbox.Fault
		times     int           // how many calls misbehave
		deadline  time.Duration // of the caller; 0: none
		wantCode  string        // "" = success
		wantCalls int
		minTook   time.Duration
	}{
		{"503 then success", sandbox.Fault{Status: 503}, 1, 0, "", 2, 0},
		{"502 twice then success", sandbox.Fault{Status: 502}, 2, 0, "", 3, 0},
		{"504 always: two retries, then the error", sandbox.Fault{Status: 504}, 0, 0, apierr.CodeUpstreamUnavailable, 3, 0},
		{"connection reset then success", sandbox.Fault{Reset: true}, 1, 0, "", 2, 0},
		{"500 is not retried", sandbox.Fault{Status: 500}, 0, 0, apierr.CodeUpstreamUnavailable, 1, 0},
		{"HTML 200 is not retried", sandbox.Fault{HTML: true}, 0, 0, apierr.CodeUpstreamBadResponse, 1, 0},
		{"429 with a short Retry-After is waited out", sandbox.Fault{Status: 429, RetryAfter: "1"}, 1, 0, "", 2, time.Second},
		{"429 with a long Retry-After returns at once", sandbox.Fault{Status: 429, RetryAfter: "30"}, 0, 0, apierr.CodeRateLimitExceeded, 1, 0},
		{"429 whose wait does not fit the deadline returns at once", sandbox.Fault{Status: 429, RetryAfter: "1"}, 0, 500 * time.Millisecond, apierr.CodeRateLimitExceeded, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb, srv := MustSandbox(t, sandbox.Options{})
			c := MustNewClient(t, srv.URL, fast)
			if _, err := c.GetIdentity(t.Context(), sandbox.LinkHousehold); err != nil { // warm: token
				t.Fatal(err)
			}
			sb.SetFault(id, tt.fault, tt.times)
			sb.Reset()
			ctx := t.Context()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			start := time.Now()
			_, err := c.GetIdentity(ctx, id)
			took := time.Since(start)
			switch {
			case tt.wantCode == "" && err != nil:
				t.Errorf("GetIdentity(ctx, %q): %v, want success", id, err)
			case tt.wantCode != "" && MustAsError(t, err).Code != tt.wantCode:
				t.Errorf("GetIdentity(ctx, %q): %v, want %s", id, err, tt.wantCode)
			}
			// net/http itself resends a GET once when a reused connection
			// is reset, so a reset may cost one call more.
			if got := sb.IdentityCallsFor(id); got != tt.wantCalls && !(tt.fault.Reset && got == tt.wantCalls+1) {
				t.Errorf("GetIdentity(ctx, %q): %d upstream calls, want %d", id, got, tt.wantCalls)
			}
			if took < tt.minTook {
				t.Errorf("GetIdentity(ctx, %q) took %v, want at least %v (Retry-After)", id, took, tt.minTook)
			}
			if tt.wantCalls == 1 && took > 300*time.Millisecond {
				t.Errorf("GetIdentity(ctx, %q) took %v: a call that is not retried must return at once", id, took)
			}
		})
	}
}

// TestRetryBudget: under sustained failure retries add at most the budget's
// share of calls (20%) plus its small floor, not two retries per request.
func TestRetryBudget(t *testing.T) {
	sb, srv := MustSandbox(t, sandbox.Options{})
	c := MustNewClient(t, srv.URL, fast)
	sb.SetFault(sandbox.LinkSeed, sandbox.Fault{Status: 503}, 0)
	const requests = 200
	for range requests {
		c.GetIdentity(t.Context(), sandbox.LinkSeed)
	}
	calls := sb.IdentityCallsFor(sandbox.LinkSeed)
	t.Logf("%d requests against an always-503 upstream: %d calls (%.2f per request)", requests, calls, float64(calls)/requests)
	if max := requests + int(upstream.DefaultRetryBudgetRatio*requests) + 10; calls > max || calls <= requests {
		t.Errorf("%d requests against a failing upstream made %d calls, want more than %d and at most %d", requests, calls, requests, max)
	}
}

// TestBreaker: repeated failures open the breaker, which then fails fast
// without calling the upstream, and lets one probe through after its
// cool-down.
func TestBreaker(t *testing.T) {
	sb, srv := MustSandbox(t, sandbox.Options{})
	c := MustNewClient(t, srv.URL, upstream.Config{MaxRetries: -1, BreakerMinCalls: 3, BreakerCooldown: 200 * time.Millisecond})
	sb.SetFault(sandbox.LinkSeed, sandbox.Fault{Status: 503}, 0)
	for range 3 {
		c.GetIdentity(t.Context(), sandbox.LinkSeed)
	}
	before := sb.IdentityCalls()
	start := time.Now()
	_, err := c.GetIdentity(t.Context(), sandbox.LinkHousehold)
	if e := MustAsError(t, err); e.Code != apierr.CodeUpstreamUnavailable || sb.IdentityCalls() != before {
		t.Errorf("open breaker: %v with %d upstream calls, want %s and none", err, sb.IdentityCalls()-before, apierr.CodeUpstreamUnavailable)
	}
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Errorf("open breaker took %v to answer, want at once", took)
	}
	time.Sleep(250 * time.Millisecond)
	if _, err := c.GetIdentity(t.Context(), sandbox.LinkHousehold); err != nil {
		t.Errorf("after the cool-down, the probe: %v, want success", err)
	}
	if _, err := c.GetIdentity(t.Context(), sandbox.LinkHousehold); err != nil {
		t.Errorf("after a good probe: %v, want success (breaker closed)", err)
	}
}

// TestRefusalsDoNotOpenBreaker: 4xx answers are the upstream working.
func TestRefusalsDoNotOpenBreaker(t *testing.T) {
	_, srv := MustSandbox(t, sandbox.Options{})
	c := MustNewClient(t, srv.URL, upstream.Config{BreakerMinCalls: 2})
	for range 5 {
		c.GetIdentity(t.Context(), "mk_no_such_link")
	}
	if _, err := c.GetIdentity(t.Context(), sandbox.LinkSeed); err != nil {
		t.Errorf("after 404s: %v, want success", err)
	}
}

// TestInFlightBound: calls beyond MaxInFlight wait a bounded time for a slot,
// then fail fast without calling the upstream.
func TestInFlightBound(t *testing.T) {
	sb, srv := MustSandbox(t, sandbox.Options{})
	c := MustNewClient(t, srv.URL, upstream.Config{MaxInFlight: 1, InFlightWait: 50 * time.Millisecond, Timeout: time.Second, MaxRetries: -1})
	if _, err := c.GetIdentity(t.Context(), sandbox.LinkHousehold); err != nil { // warm: token
		t.Fatal(err)
	}
	sb.SetFault(sandbox.LinkSeed, sandbox.Fault{Latency: 300 * time.Millisecond}, 1)
	before := sb.IdentityCalls()
	var wg sync.WaitGroup
	wg.Go(func() { c.GetIdentity(t.Context(), sandbox.LinkSeed) })
	// The slow call holds the only slot once the sandbox has it (on a
	// busy machine a fixed sleep may not be long enough).
	for deadline := time.Now().Add(5 * time.Second); sb.IdentityCalls() == before && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	_, err := c.GetIdentity(t.Context(), sandbox.LinkHousehold)
	if e := MustAsError(t, err); e.Code != apierr.CodeUpstreamUnavailable {
		t.Errorf("second call: %v, want %s", err, apierr.CodeUpstreamUnavailable)
	}
	if took := time.Since(start); took > 250*time.Millisecond {
		t.Errorf("second call waited %v for a slot, want about 50ms", took)
	}
	wg.Wait()
	if got := sb.IdentityCallsFor(sandbox.LinkHousehold); got != 1 {
		t.Errorf("household calls = %d, want 1 (the refused call made none)", got)
	}
}

// TestRefusedCredentials fail fast: one token call, however many requests,
// and Ready reports the refusal.
func TestRefusedCredentials(t *testing.T) {
	sb, srv := MustSandbox(t, sandbox.Options{})
	c := MustNewClient(t, srv.URL, upstream.Config{ClientSecret: "wrong"})
	if err := c.Ready(); err != nil {
		t.Fatalf("Ready() before any call = %v, want nil", err)
	}
	for range 5 {
		_, err := c.GetIdentity(t.Context(), sandbox.LinkSeed)
		if e := MustAsError(t, err); e.Code != apierr.CodeUnauthorized {
			t.Fatalf("GetIdentity: %v, want %s", err, apierr.CodeUnauthorized)
		}
	}
	if got := sb.TokenCalls(); got != 1 {
		t.Errorf("token calls = %d, want 1", got)
	}
	if err := c.Ready(); err == nil {
		t.Errorf("Ready() = nil after refused credentials, want the refusal")
	}
}

// TestTokenExpiryRenewed: tokens that expire after N calls are renewed and
// the call retried once, invisibly to the caller.
func TestTokenExpiryRenewed(t *testing.T) {
	sb, srv := MustSandbox(t, sandbox.Options{})
	c := MustNewClient(t, srv.URL, upstream.Config{})
	sb.ExpireTokensAfter(2)
	for i := range 6 {
		if _, err := c.GetIdentity(t.Context(), sandbox.LinkSeed); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if got := sb.TokenCalls(); got != 3 {
		t.Errorf("token calls = %d, want 3 (one per two calls)", got)
	}
}

// TestBreakerIgnoresFlakiness: a minority of failures, however they bunch
// up, does not open the breaker; a majority does.
func TestBreakerIgnoresFlakiness(t *testing.T) {
	sb, srv := MustSandbox(t, sandbox.Options{})
	c := MustNewClient(t, srv.URL, upstream.Config{MaxRetries: -1, BreakerMinCalls: 10})
	sb.SetFault(sandbox.LinkSeed, sandbox.Fault{Status: 503}, 0)
	for range 6 { // six failures in a row…
		c.GetIdentity(t.Context(), sandbox.LinkSeed)
	}
	for range 10 { // …among sixteen calls: 37% failed
		if _, err := c.GetIdentity(t.Context(), sandbox.LinkHousehold); err != nil {
			t.Fatalf("a healthy link while the upstream is mostly healthy: %v", err)
		}
	}
	for range 12 { // 18 of 28 failed: the breaker opens
		c.GetIdentity(t.Context(), sandbox.LinkSeed)
	}
	before := sb.IdentityCalls()
	if _, err := c.GetIdentity(t.Context(), sandbox.LinkHousehold); MustAsError(t, err).Code != apierr.CodeUpstreamUnavailable || sb.IdentityCalls() != before {
		t.Errorf("after a majority of failures: %v, want the breaker open (no call)", err)
	}
}

// TestBreakerIgnoresOwnRefusals: the facade's own refusals (no free slot, its
// rate budget) say nothing of the upstream's health and never open the
// breaker.
func TestBreakerIgnoresOwnRefusals(t *testing.T) {
	sb, srv := MustSandbox(t, sandbox.Options{})
	c := MustNewClient(t, srv.URL, upstream.Config{
		BreakerMinCalls: 3,
		Budget:          upstream.NewSlidingWindow(1, 0, time.Minute, nil),
	})
	c.GetIdentity(t.Context(), sandbox.LinkSeed)
	for range 10 { // refused by the budget
		c.GetIdentity(t.Context(), sandbox.LinkSeed)
	}
	if _, err := c.GetIdentity(t.Context(), sandbox.LinkHousehold); err != nil {
		t.Errorf("after budget refusals: %v, want the breaker closed", err)
	}
	if got := sb.IdentityCalls(); got != 2 {
		t.Errorf("upstream calls = %d, want 2", got)
	}
}

// TestRefusalHeldUntilSuccess: readiness stays down while the credentials
// are refused, past the hold that gates new token fetches.
func TestRefusalHeldUntilSuccess(t *testing.T) {
	_, srv := MustSandbox(t, sandbox.Options{})
	clock := newFakeClock()
	c := MustNewClient(t, srv.URL, upstream.Config{ClientSecret: "wrong", Now: clock.Now})
	c.GetIdentity(t.Context(), sandbox.LinkSeed)
	clock.Advance(time.Hour)
	if err := c.Ready(); err == nil {
		t.Errorf("Ready() an hour after a refusal, with no success since = nil, want the refusal")
	}
}

// TestRetryAfterHTTPDate: an HTTP-date has a one-second resolution, so one
// "2 s ahead" means a wait of one to two seconds: with the default bound of
// 1 s it is still waited out; a date further ahead is answered at once.
func TestRetryAfterHTTPDate(t *testing.T) {
	tests := []struct {
		name      string
		ahead     time.Duration
		wantCode  string
		wantCalls int
	}{
		{"2 s ahead: waited out", 2 * time.Second, "", 2},
		{"4 s ahead: answered at once", 4 * time.Second, apierr.CodeRateLimitExceeded, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb, srv := MustSandbox(t, sandbox.Options{})
			c := MustNewClient(t, srv.URL, fast)
			if _, err := c.GetIdentity(t.Context(), sandbox.LinkHousehold); err != nil { // warm: token
				t.Fatal(err)
			}
			date := time.Now().Add(tt.ahead).UTC().Format(http.TimeFormat)
			sb.SetFault(sandbox.LinkSeed, sandbox.Fault{Status: 429, RetryAfter: date}, 1)
			sb.Reset()
			start := time.Now()
			_, err := c.GetIdentity(t.Context(), sandbox.LinkSeed)
			took := time.Since(start)
			switch {
			case tt.wantCode == "" && err != nil:
				t.Errorf("Retry-After %q: %v, want success after the wait", date, err)
			case tt.wantCode != "" && MustAsError(t, err).Code != tt.wantCode:
				t.Errorf("Retry-After %q: %v, want %s", date, err, tt.wantCode)
			}
			if got := sb.IdentityCalls(); got != tt.wantCalls {
				t.Errorf("Retry-After %q: %d upstream calls, want %d", date, got, tt.wantCalls)
			}
			if tt.wantCode != "" && took > 500*time.Millisecond {
				t.Errorf("Retry-After %q: took %v, want an answer at once", date, took)
			}
		})
	}
}
