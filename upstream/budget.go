package upstream

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

// MoneyKit's identity limits, which the default budgets mirror.
const (
	IdentityCallsPerLink = 3           // per link per IdentityLimitWindow
	IdentityCallsPerApp  = 600         // per app per IdentityLimitWindow
	IdentityLimitWindow  = time.Minute // the window both limits count over
)

// RateBudget mirrors the upstream's rate limits on the client side, so that
// the facade refuses a call that would be answered 429 anyway instead of
// spending it. Reserve takes one call from the budget of linkID and from the
// app's; when either is spent it takes nothing and returns which
// (refusedBy: ScopeLink or ScopeApp, "" when granted) and how long until a
// call is free. Implementations are safe for concurrent use; the in-memory
// SlidingWindow serves one replica, a shared store (Redis) serves many.
type RateBudget interface {
	Reserve(ctx context.Context, linkID string) (retryAfter time.Duration, refusedBy string, err error)
}

// Budgets a RateBudget refuses by.
const (
	ScopeLink = "link" // the link's identity calls per minute
	ScopeApp  = "app"  // the app's identity calls per minute
)

// errLocalBudget marks a 429 the facade answered itself.
var errLocalBudget = errors.New("refused by the facade's own rate budget, before calling the upstream")

// SlidingWindow is the in-memory RateBudget: at most PerLink calls for one
// link and PerApp calls in all within any Window, counted exactly (a log of
// call times, not a token bucket, which would let a burst through at the
// edge of MoneyKit's window). A limit of 0 is no limit.
type SlidingWindow struct {
	perLink, perApp int
	window          time.Duration
	now             func() time.Time

	mu        sync.Mutex
	app       []time.Time            // call times within the window, oldest first
	links     map[string][]time.Time // the same per link
	lastSweep time.Time
}

var _ RateBudget = (*SlidingWindow)(nil)

// NewSlidingWindow returns a budget of perLink and perApp calls per window;
// now is its clock (nil: time.Now).
func NewSlidingWindow(perLink, perApp int, window time.Duration, now func() time.Time) *SlidingWindow {
	if now == nil {
		now = time.Now
	}
	return &SlidingWindow{perLink: perLink, perApp: perApp, window: window, now: now, links: map[string][]time.Time{}}
}

// Reserve implements RateBudget. A refused call takes nothing from either
// budget.
func (b *SlidingWindow) Reserve(_ context.Context, linkID string) (time.Duration, string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	since := now.Add(-b.window)
	b.sweep(now, since)
	b.app = prune(b.app, since)
	var calls []time.Time
	if b.perLink > 0 {
		calls = prune(b.links[linkID], since)
	}
	var wait time.Duration
	scope := ""
	if b.perApp > 0 && len(b.app) >= b.perApp {
		wait, scope = b.app[len(b.app)-b.perApp].Add(b.window).Sub(now), ScopeApp
	}
	if b.perLink > 0 && len(calls) >= b.perLink {
		if w := calls[len(calls)-b.perLink].Add(b.window).Sub(now); w > wait {
			wait, scope = w, ScopeLink
		}
	}
	if wait > 0 {
		return wait, scope, nil
	}
	if b.perApp > 0 {
		b.app = append(b.app, now)
	}
	if b.perLink > 0 {
		b.links[linkID] = append(calls, now)
	}
	return 0, "", nil
}

// sweep forgets links without a call in the window, once per window, so the
// map holds only links called recently.
func (b *SlidingWindow) sweep(now, since time.Time) {
	if now.Sub(b.lastSweep) < b.window {
		return
	}
	b.lastSweep = now
	for id, calls := range b.links {
		if len(prune(calls, since)) == 0 {
			delete(b.links, id)
		}
	}
}

// prune drops the times before since from a list kept oldest first.
func prune(times []time.Time, since time.Time) []time.Time {
	i := 0
	for i < len(times) && !times[i].After(since) {
		i++
	}
	if i == len(times) {
		return times[:0]
	}
	return times[i:]
}

// reserve takes one call from the rate budget, if there is one.
func (c *Client) reserve(ctx context.Context, linkID string) error {
	if c.cfg.Budget == nil {
		return nil
	}
	wait, refusedBy, err := c.cfg.Budget.Reserve(ctx, linkID)
	switch {
	case err != nil:
		// A budget that cannot answer must not stop every call: the
		// upstream still enforces its limits.
		return nil
	case refusedBy != "":
		if c.cfg.OnBudgetRefused != nil {
			c.cfg.OnBudgetRefused(refusedBy)
		}
		return &apierr.Error{
			Status:        http.StatusTooManyRequests,
			Code:          apierr.CodeRateLimitExceeded,
			Message:       "Rate limit exceeded: MoneyKit allows only a few identity calls per link and per app each minute. Retry after the time in extensions.retryAfter.",
			RetryAfter:    wait,
			HasRetryAfter: true,
			Err:           errLocalBudget,
		}
	}
	return nil
}
