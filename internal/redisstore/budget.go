package redisstore

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mkgraph/mkgraph/upstream"
)

// Budget is the upstream rate budget shared by replicas: the same exact
// sliding window as upstream.SlidingWindow (a log of call times per link
// and per app, in sorted sets), decided atomically in one script on Redis's
// own clock, so that replicas with skewed clocks agree. When Redis fails it
// falls back to a SlidingWindow of this replica.
type Budget struct {
	c               *Client
	perLink, perApp int
	window          time.Duration
	appKey          string
	namespace       string
	local           *upstream.SlidingWindow
}

var _ upstream.RateBudget = (*Budget)(nil)

// NewBudget returns a shared budget of perLink calls per link and perApp in
// all within window (0: no limit), for the upstream credentials namespace
// names (so that two apps sharing one Redis do not share budgets).
func NewBudget(c *Client, namespace string, perLink, perApp int, window time.Duration) *Budget {
	return &Budget{
		c: c, perLink: perLink, perApp: perApp, window: window, namespace: namespace,
		appKey: c.key("budget", "app:"+c.name(namespace)),
		local:  upstream.NewSlidingWindow(perLink, perApp, window, nil),
	}
}

// reserveScript: KEYS = app log, link log; ARGV = perApp, perLink, window
// (ms), member. Returns {0, ""} when granted, else {wait ms, scope}.
var reserveScript = redis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local perApp, perLink, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local since = now - window
local wait, scope = 0, ""
local function check(key, limit, name)
	if limit <= 0 then return end
	redis.call("ZREMRANGEBYSCORE", key, "-inf", since)
	local n = redis.call("ZCARD", key)
	if n >= limit then
		local oldest = redis.call("ZRANGE", key, n - limit, n - limit, "WITHSCORES")
		local w = tonumber(oldest[2]) + window - now
		if w > wait then wait, scope = w, name end
	end
end
check(KEYS[1], perApp, "app")
check(KEYS[2], perLink, "link")
if wait > 0 then return {wait, scope} end
if perApp > 0 then
	redis.call("ZADD", KEYS[1], now, ARGV[4])
	redis.call("PEXPIRE", KEYS[1], window)
end
if perLink > 0 then
	redis.call("ZADD", KEYS[2], now, ARGV[4])
	redis.call("PEXPIRE", KEYS[2], window)
end
return {0, ""}`)

// Reserve implements upstream.RateBudget. It never returns an error: when
// Redis fails, this replica's own window decides.
func (b *Budget) Reserve(ctx context.Context, linkID string) (time.Duration, string, error) {
	if b.perLink <= 0 && b.perApp <= 0 {
		return 0, "", nil
	}
	linkKey := b.c.key("budget", "link:"+b.c.name(b.namespace, linkID))
	var wait time.Duration
	var scope string
	err := b.c.do(ctx, OpBudget, func(ctx context.Context) error {
		res, err := reserveScript.Run(ctx, b.c.rdb, []string{b.appKey, linkKey},
			b.perApp, b.perLink, b.window.Milliseconds(), randomMember()).Slice()
		if err != nil {
			return err
		}
		if len(res) != 2 {
			return errors.New("budget script: unexpected reply")
		}
		ms, ok := res[0].(int64)
		s, _ := res[1].(string)
		if !ok {
			return errors.New("budget script: unexpected reply")
		}
		wait, scope = time.Duration(ms)*time.Millisecond, s
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return 0, "", ctx.Err()
		}
		return b.local.Reserve(ctx, linkID)
	}
	if wait > 0 {
		return wait, scope, nil
	}
	return 0, "", nil
}

// randomMember names one call in the logs: two replicas' calls in the same
// millisecond must not collapse into one member.
func randomMember() string {
	return strconv.FormatUint(rand.Uint64(), 36)
}
