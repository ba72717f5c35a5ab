package redisstore

import (
	"context"
	"time"

	"github.com/go-redis/redis_rate/v10"

	"github.com/mkgraph/mkgraph/internal/edge/ratelimit"
)

// Limiter is the per-caller rate limit shared by replicas: GCRA (a token
// bucket without a refill timer) by github.com/go-redis/redis_rate, on
// Redis's clock, perMinute a minute with bursts of burst, like
// ratelimit.Memory. When Redis fails it falls back to a ratelimit.Memory of
// this replica. Keys in Redis are a hash of the caller key (a user id or an
// API key name is never stored).
type Limiter struct {
	c     *Client
	rl    *redis_rate.Limiter
	limit redis_rate.Limit
	kind  string
	local *ratelimit.Memory
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// NewLimiter returns a shared limiter for callers of one kind ("user",
// "backend": separate key spaces). perMinute <= 0 allows everything.
func NewLimiter(c *Client, kind string, perMinute, burst int) *Limiter {
	return &Limiter{
		c:     c,
		rl:    redis_rate.NewLimiter(c.rdb),
		limit: redis_rate.Limit{Rate: perMinute, Burst: max(1, burst), Period: time.Minute},
		kind:  kind,
		local: ratelimit.NewMemory(perMinute, burst),
	}
}

// Allow implements ratelimit.Limiter. It never returns an error: when Redis
// fails, this replica's own buckets decide.
func (l *Limiter) Allow(ctx context.Context, key string) (time.Duration, bool, error) {
	if l.limit.Rate <= 0 {
		return 0, true, nil
	}
	var res *redis_rate.Result
	err := l.c.do(ctx, OpRateLimit, func(ctx context.Context) error {
		var err error
		res, err = l.rl.Allow(ctx, l.c.prefix+"caller:"+l.kind+":"+l.c.name(key), l.limit)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return 0, true, nil // the caller left; nothing to refuse
		}
		return l.local.Allow(ctx, key)
	}
	if res.Allowed > 0 {
		return 0, true, nil
	}
	return max(res.RetryAfter, time.Nanosecond), false, nil
}
