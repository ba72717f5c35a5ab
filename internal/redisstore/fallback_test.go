package redisstore

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"

	"github.com/mkgraph/mkgraph/upstream/cache"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// A command whose reply is lost must not be sent again: the fallback is the
// retry. A retried SET NX finds the lock its first attempt took and
// reports it held by another replica; a retried budget script finds the
// slot its first run took and refuses the call.
func TestLostReplyNotRetried(t *testing.T) {
	nx := func(cmd []byte) bool { return bytes.Contains(bytes.ToLower(cmd), []byte("\r\nnx\r\n")) }
	eval := func(cmd []byte) bool { return bytes.Contains(bytes.ToLower(cmd), []byte("evalsha")) }
	tests := []struct {
		name    string
		trigger func([]byte) bool
		check   func(t *testing.T, e *env, c *Client)
		report  string // the op reported for the lost reply
		caught  string // the bug this case caught (fixed)
	}{
		{"lock", nx, func(t *testing.T, e *env, c *Client) {
			s := mustIdentities(t, c, testKey(0xA1))
			unlock, _, ok := s.Lock(context.Background(), cacheKey(sandbox.LinkSeed), time.Minute)
			if !ok {
				t.Fatal("Lock refused: the retried SET NX found the lock of its own first attempt")
			}
			unlock()
			if n := c.Redis().Options().MaxRetries; n != 0 {
				t.Errorf("go-redis MaxRetries = %d, want 0", n)
			}
		}, OpLock,
			"client.go:113 sets opts.MaxRetries = 0, which go-redis v9 reads as its default of 3 retries (-1 disables them): " +
				"every failed command is re-sent up to 3 times with backoff (4 connections per operation against a dead Redis), " +
				"and a SET NX whose reply was lost after Redis ran it is re-sent: Lock then reports its own lock as another replica's " +
				"and every replica waits out the whole lock ttl; fix: opts.MaxRetries = -1"},
		{"budget", eval, func(t *testing.T, e *env, c *Client) {
			if err := reserveScript.Load(context.Background(), e.rdb).Err(); err != nil {
				t.Fatal(err)
			}
			// Two calls of 3 spent through a healthy connection.
			direct := NewBudget(e.open(t), testNamespace, 3, 0, time.Minute)
			for range 2 {
				if _, scope, _ := direct.Reserve(context.Background(), "mk_a"); scope != "" {
					t.Fatal("refused within the limit")
				}
			}
			// The third is taken in Redis but its reply is lost: resent,
			// the script finds the budget spent (by this very call) and
			// refuses it.
			b := NewBudget(c, testNamespace, 3, 0, time.Minute)
			if wait, scope, err := b.Reserve(context.Background(), "mk_a"); scope != "" || err != nil {
				t.Errorf("Reserve = %v, %q, %v; want granted (by the local window, after the error)", wait, scope, err)
			}
		}, OpBudget, "the same MaxRetries bug (client.go:113): the budget script is resent after a lost reply; its member is the same, so nothing is counted twice, but a call that took the last slot is then refused by its own slot (the caller gets a 429 for a call that was never made, and the slot stays spent for the window); fix: opts.MaxRetries = -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			opts, err := redis.ParseURL(e.url)
			if err != nil {
				t.Fatal(err)
			}
			p := newLossyProxy(t, opts.Addr, tt.trigger)
			c := mustOpen(t, Config{URL: "redis://" + p.addr + "/" + strconv.Itoa(opts.DB), Prefix: e.prefix, OnError: e.errs.onError})
			tt.check(t, e, c)
			if !p.fired.Load() {
				t.Fatal("the proxy never dropped a reply: the test proved nothing")
			}
			e.errs.check(t, tt.report)
		})
	}
}

// Repeated failures of one operation log one warning per warnEvery, and
// count every one; the next warning says how many were left out.
func TestFailuresThrottled(t *testing.T) {
	d := openDead(t, "")
	ids := mustIdentities(t, d.c, testKey(0xA1))
	ctx := context.Background()
	for range 10 {
		if _, ok := ids.Get(ctx, cacheKey(sandbox.LinkSeed)); ok {
			t.Fatal("hit with Redis down")
		}
	}
	if got := d.errs.count(OpCacheGet); got != 10 {
		t.Errorf("OpCacheGet reported %d times, want 10", got)
	}
	ws := d.log.warnings(t, OpCacheGet)
	if len(ws) != 1 {
		t.Fatalf("%d cache_get warnings for 10 failures, want 1: %s", len(ws), d.log)
	}
	if ws[0]["suppressed"] != float64(0) {
		t.Errorf("first warning suppressed = %v, want 0", ws[0]["suppressed"])
	}

	// Another op has its own budget of warnings.
	ids.Set(ctx, cacheKey(sandbox.LinkSeed), cache.SharedEntry{Identity: fixture(t, sandbox.LinkSeed), FetchedAt: time.Now()}, time.Minute, "")
	if n := len(d.log.warnings(t, OpCacheSet)); n != 1 {
		t.Errorf("%d cache_set warnings, want 1", n)
	}

	// warnEvery later, the next failure warns again with the count of the
	// muted ones; the breaker is open by now, and says so.
	d.c.warnMu.Lock()
	d.c.lastWarn[OpCacheGet] = time.Now().Add(-warnEvery - time.Second)
	d.c.warnMu.Unlock()
	ids.Get(ctx, cacheKey(sandbox.LinkSeed))
	ws = d.log.warnings(t, OpCacheGet)
	if len(ws) != 2 {
		t.Fatalf("%d cache_get warnings after warnEvery, want 2", len(ws))
	}
	if ws[1]["suppressed"] != float64(9) {
		t.Errorf("second warning suppressed = %v, want 9", ws[1]["suppressed"])
	}
	if ws[1]["error"] != "circuit open after repeated failures" {
		t.Errorf("second warning error = %v, want the open breaker", ws[1]["error"])
	}
	if got := d.errs.count(OpCacheGet); got != 11 {
		t.Errorf("OpCacheGet reported %d times, want 11", got)
	}
}

// The breaker stops asking a dead Redis after breakerFailures failures.
func TestBreakerOpens(t *testing.T) {
	d := openDead(t, "")
	hook := &cmdHook{}
	d.c.Redis().AddHook(hook)
	ids := mustIdentities(t, d.c, testKey(0xA1))
	for range 10 {
		ids.Get(context.Background(), cacheKey(sandbox.LinkSeed))
	}
	// Each Get is one MULTI, GET, PTTL, EXEC.
	if n := len(hook.all()); n != 4*breakerFailures {
		t.Errorf("Redis was sent %d commands for 10 Gets, want %d (then the breaker opens)", n, 4*breakerFailures)
	}
	if st := d.c.breaker.State(); st != gobreaker.StateOpen {
		t.Errorf("breaker %v, want open", st)
	}
}

// A refused connection is known at once: it should cost no more than a
// dial, not the whole operation timeout.
func TestRefusedConnectionFailsFast(t *testing.T) {
	const timeout = 500 * time.Millisecond
	c, _ := openAt(t, deadAddr(t), timeout)
	b := NewBudget(c, testNamespace, 3, 0, time.Minute)
	start := time.Now()
	b.Reserve(context.Background(), "mk_a")
	if el := time.Since(start); el > timeout/2 {
		t.Errorf("a Reserve on a refused connection took %v (timeout %v)", el, timeout)
	}
}

// A caller that left, or whose deadline passed, says nothing about Redis:
// its calls are not reported as Redis failures and do not open the breaker
// for everyone else.
func TestCallerGoneIsNotARedisFailure(t *testing.T) {
	tests := []struct {
		name   string
		ctx    func() (context.Context, context.CancelFunc)
		caught string // the bug this case caught (fixed)
	}{
		{"canceled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, ""},
		{"deadline passed", func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		}, "client.go:131 and :163 exclude only context.Canceled: a caller whose own deadline passed (context.DeadlineExceeded from its ctx, Redis healthy) is counted and logged as a Redis timeout, and 3 such callers in a row open the breaker, so every other request falls back to memory for 2 s; " +
			"fix: in do, return early without counting when ctx.Err() != nil before or after the call (e.g. wrap the error in Execute as an excluded callerGone error when the parent ctx is done, and test ctx.Err() != nil rather than errors.Is(err, context.Canceled) at :163)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.open(t)
			ctx, cancel := tt.ctx()
			defer cancel()
			ids := mustIdentities(t, c, testKey(0xA1))
			b := NewBudget(c, testNamespace, 3, 0, time.Minute)
			l := NewLimiter(c, "user", 60, 1)
			apq := NewAPQ(c, 10, time.Minute)
			for range 3 {
				ids.Get(ctx, cacheKey(sandbox.LinkSeed))
				if _, _, err := b.Reserve(ctx, "mk_a"); err == nil {
					t.Error("Reserve with a finished context: no error")
				}
				if _, ok, err := l.Allow(ctx, "alice"); !ok || err != nil {
					t.Errorf("Allow with a finished context = %v, %v; want allowed", ok, err)
				}
				apq.Get(ctx, sha("q"))
			}
			e.errs.check(t)
			if st := c.breaker.State(); st != gobreaker.StateClosed {
				t.Errorf("breaker %v, want closed", st)
			}
			if w := e.log.warnings(t, ""); len(w) != 0 {
				t.Errorf("warnings logged: %v", w)
			}
			// A caller with time left is served by Redis.
			if _, scope, err := b.Reserve(context.Background(), "mk_a"); scope != "" || err != nil {
				t.Errorf("Reserve = %q, %v", scope, err)
			}
			if n, _ := e.rdb.ZCard(context.Background(), c.key("budget", "link:"+hashName(testNamespace, "mk_a"))).Result(); n != 1 {
				t.Errorf("the link log holds %d calls, want 1 (the finished callers took none)", n)
			}
		})
	}
}
