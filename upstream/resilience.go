package upstream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

// Defaults of the resilience settings in Config.
const (
	DefaultMaxRetries        = 2
	DefaultRetryBaseDelay    = 100 * time.Millisecond
	DefaultRetryMaxDelay     = time.Second
	DefaultMaxRetryAfterWait = time.Second
	DefaultRetryBudgetRatio  = 0.19
	// DefaultMaxInFlight matches the client's idle connection pool per
	// host (128): at 64, ten distinct links per request against an upstream
	// answering in 20 ms were held to ~300 requests/s by this bound alone.
	DefaultMaxInFlight         = 128
	DefaultInFlightWait        = time.Second
	DefaultBreakerMinCalls     = 20
	DefaultBreakerFailureRatio = 0.5
	DefaultBreakerWindow       = 10 * time.Second
	DefaultBreakerCooldown     = 10 * time.Second
)

// retryBudgetFloor is how many retries may be spent before any request has
// paid for them, so that a quiet facade can still retry.
const retryBudgetFloor = 10

// errCallerGone marks a failure caused by the caller's own context (the
// GraphQL request ended), which says nothing about the upstream's health.
var errCallerGone = errors.New("the request that needed the call ended")

// errBreakerOpen and errTooBusy are failures the facade decided on without
// calling the upstream; neither is retried.
var (
	errBreakerOpen = errors.New("circuit breaker open after repeated upstream failures")
	errTooBusy     = errors.New("too many upstream calls in flight")
	errNoRetry     = errors.New("not retried")
)

// retryBudget lets retries add at most ratio extra calls under sustained
// failure (plus a small floor): each request deposits ratio, each retry
// withdraws one (the scheme of Finagle's RetryBudget and gRPC's retry
// throttling). With the default 0.19 and a floor of 10, retries add at most
// 20% from 1,000 requests on.
type retryBudget struct {
	mu      sync.Mutex
	ratio   float64
	balance float64
}

func newRetryBudget(ratio float64) *retryBudget {
	return &retryBudget{ratio: ratio, balance: retryBudgetFloor}
}

func (b *retryBudget) deposit() {
	b.mu.Lock()
	b.balance = min(b.balance+b.ratio, retryBudgetFloor+1000*b.ratio)
	b.mu.Unlock()
}

func (b *retryBudget) withdraw() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.balance < 1 {
		return false
	}
	b.balance--
	return true
}

// retryDelay decides whether the failed attempt number attempt (0-based) of
// a GET is tried again, and after how long. Only answers that say "later"
// are retried: a 429 whose Retry-After is short, connection failures and
// 502/503/504. Nothing is retried that would not fit before ctx's deadline:
// the caller gets the error (with retryAfter) at once instead.
func (c *Client) retryDelay(ctx context.Context, attempt int, err error) (time.Duration, bool) {
	e := apierr.AsError(err)
	if attempt >= c.cfg.MaxRetries || errors.Is(err, errCallerGone) || errors.Is(err, errBreakerOpen) || errors.Is(err, errTooBusy) || errors.Is(err, errNoRetry) {
		return 0, false
	}
	var d time.Duration
	switch {
	case e.Status == http.StatusTooManyRequests:
		// An HTTP-date counts in whole seconds: "2 s from now" may be read
		// as anything above 1 s, so a date up to the bound plus that second
		// is still a short wait.
		if !e.HasRetryAfter || e.RetryAfter > c.cfg.MaxRetryAfterWait+e.RetryAfterSlack {
			return 0, false
		}
		d = e.RetryAfter
	case e.Code == apierr.CodeUpstreamUnavailable && (e.Status == 0 || e.Status == http.StatusBadGateway ||
		e.Status == http.StatusServiceUnavailable || e.Status == http.StatusGatewayTimeout):
		// Full jitter: uniform in [0, min(max, base·2^attempt)].
		ceiling := min(c.cfg.RetryMaxDelay, c.cfg.RetryBaseDelay<<attempt)
		d = time.Duration(c.cfg.Rand() * float64(ceiling))
	default:
		return 0, false
	}
	// The retry must fit, with time for an answer, before the deadline.
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d+minAttemptTime {
		return 0, false
	}
	return d, true
}

// minAttemptTime is the least time worth starting a retry with.
const minAttemptTime = 50 * time.Millisecond

// sleepCtx waits d, or less when ctx ends first (reported as false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// acquire takes an in-flight slot, waiting at most InFlightWait (and never
// past ctx's end); release gives it back.
func (c *Client) acquire(ctx context.Context) (release func(), err error) {
	select {
	case c.inFlight <- struct{}{}:
		return func() { <-c.inFlight }, nil
	default:
	}
	t := time.NewTimer(c.cfg.InFlightWait)
	defer t.Stop()
	select {
	case c.inFlight <- struct{}{}:
		return func() { <-c.inFlight }, nil
	case <-t.C:
		return nil, apierr.New(apierr.CodeUpstreamUnavailable, 0, errTooBusy)
	case <-ctx.Done():
		return nil, apierr.New(apierr.CodeUpstreamTimeout, 0, fmt.Errorf("%w: %w", errCallerGone, context.Cause(ctx)))
	}
}

// newBreaker opens when, over the last BreakerWindow, at least
// BreakerMinCalls calls were made and at least BreakerFailureRatio of them
// failed in a way that says the upstream is unwell (5xx, timeouts,
// connection failures). A ratio over a rolling window tells a dead upstream
// from a flaky one: a run of a few unlucky calls in a busy minute does not
// shut every caller out. Open, it fails fast for BreakerCooldown, then lets
// a few probes through. Refusals (4xx) are answers, not failures, and a call
// whose caller went away counts for nothing.
func newBreaker(cfg Config) *gobreaker.CircuitBreaker[struct{}] {
	return gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         "moneykit",
		MaxRequests:  3,
		Interval:     cfg.BreakerWindow,
		BucketPeriod: cfg.BreakerWindow / 10,
		Timeout:      cfg.BreakerCooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.Requests >= uint32(cfg.BreakerMinCalls) &&
				float64(c.TotalFailures) >= cfg.BreakerFailureRatio*float64(c.Requests)
		},
		// Not about the upstream's health: the caller left, the facade was
		// busy, or its own rate budget said no.
		IsExcluded: func(err error) bool {
			return errors.Is(err, errCallerGone) || errors.Is(err, errTooBusy) || errors.Is(err, errLocalBudget)
		},
		IsSuccessful: func(err error) bool {
			if err == nil {
				return true
			}
			switch apierr.AsError(err).Code {
			case apierr.CodeUpstreamUnavailable, apierr.CodeUpstreamTimeout:
				return false
			}
			return true
		},
	})
}

// throughBreaker runs call unless the breaker is open.
func (c *Client) throughBreaker(call func() error) error {
	_, err := c.breaker.Execute(func() (struct{}, error) { return struct{}{}, call() })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return apierr.New(apierr.CodeUpstreamUnavailable, 0, fmt.Errorf("%w: %w", errBreakerOpen, err))
	}
	return err
}

// defaultRand is the jitter source: math/rand/v2's global generator.
func defaultRand() float64 { return rand.Float64() }
