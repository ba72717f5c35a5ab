package main

import (
	"context"
	"net/http"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/obs/metrics"
	"github.com/mkgraph/mkgraph/internal/redisstore"
	"github.com/mkgraph/mkgraph/upstream"
)

// MoneyKit's identity refresh limit, which the default refresh budget
// mirrors: once per link per day.
const (
	refreshesPerLink = 1
	refreshWindow    = 24 * time.Hour
)

// refreshBudget is the facade's own identity refresh budget
// (MKGRAPH_REFRESH_BUDGET_PER_LINK per link per day): unset, MoneyKit's own
// with a real upstream and none with the embedded sandbox (whose own limit
// is short, so a developer sees its 429); shared through Redis, under its
// own namespace, so that a refresh spent on one replica is spent on all.
func refreshBudget(c *config, embedded bool, rs *redisstore.Client, namespace string) upstream.RateBudget {
	perLink := c.RefreshBudgetPerLink
	if perLink < 0 {
		perLink = refreshesPerLink
		if embedded {
			perLink = 0
		}
	}
	switch {
	case perLink == 0:
		return nil
	case rs != nil:
		return redisstore.NewBudget(rs, "refresh\x00"+namespace, perLink, 0, refreshWindow)
	}
	return upstream.NewSlidingWindow(perLink, 0, refreshWindow, nil)
}

// newRefresher returns graph.HandlerConfig.Refresh: within budget (nil: no
// budget), it asks MoneyKit to refresh the link's identity data. A refresh
// the budget refuses is api_error.rate_limit_exceeded (429) with retryAfter
// the time until a refresh is free again, counted as
// mkgraph_rate_budget_refusals_total{scope="refresh"}, and makes no call.
// The caller has been authorized for the link.
func newRefresher(client *upstream.Client, budget upstream.RateBudget, m *metrics.Metrics) func(ctx context.Context, linkID string) (*upstream.Link, error) {
	return func(ctx context.Context, linkID string) (*upstream.Link, error) {
		if err := upstream.ValidateLinkID(linkID); err != nil {
			return nil, err
		}
		if budget != nil {
			wait, refusedBy, err := budget.Reserve(ctx, linkID)
			switch {
			case err != nil && ctx.Err() != nil:
				return nil, apierr.AsError(context.Cause(ctx))
			case err == nil && refusedBy != "":
				m.BudgetRefused(metrics.ScopeRefresh)
				return nil, errRefreshBudget(wait)
			}
			// A budget that cannot answer does not stop the refresh:
			// MoneyKit still enforces its limit.
		}
		return client.RefreshProducts(ctx, linkID, []string{upstream.ProductIdentity})
	}
}

// errRefreshBudget refuses a refresh the facade's budget has no room for.
func errRefreshBudget(wait time.Duration) *apierr.Error {
	return &apierr.Error{
		Status:        http.StatusTooManyRequests,
		Code:          apierr.CodeRateLimitExceeded,
		Message:       "Rate limit exceeded: MoneyKit allows one identity refresh per link a day. Retry after the time in extensions.retryAfter.",
		RetryAfter:    wait,
		HasRetryAfter: true,
	}
}
