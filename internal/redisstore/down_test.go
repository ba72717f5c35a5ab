package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// waitDown waits up to 3 s for c.Down() to be want.
func waitDown(t *testing.T, c *Client, want bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for c.Down() != want {
		if time.Now().After(deadline) {
			t.Fatalf("Down() = %v after 3s, want %v", !want, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDownWhileIdle: a replica that serves no request still reports a dead
// Redis (mkgraph_redis_down), past the breaker's cooldown, thanks to the
// background PING; and none of those PINGs counts as a fallback.
func TestDownWhileIdle(t *testing.T) {
	errs, log := &recorder{}, &logBuffer{}
	c := mustOpen(t, Config{
		URL: "redis://" + deadAddr(t) + "/0", Timeout: deadTimeout, ProbeInterval: 20 * time.Millisecond,
		Log: zerolog.New(log), OnError: errs.onError,
	})
	if !c.Down() {
		t.Error("Down() = false right after a failed connect")
	}
	// Well past the breaker's cooldown, with no operation at all.
	time.Sleep(breakerCooldown + 300*time.Millisecond)
	if !c.Down() {
		t.Error("Down() = false on an idle replica of a dead Redis, past the breaker cooldown")
	}
	errs.check(t, OpConnect) // the probes are not fallbacks
	if n := len(log.entries(t)); n != 1 {
		t.Errorf("%d log lines, want only the connect warning: %s", n, log)
	}
}

// TestDownFollowsRedis: a live Redis is not down; an operation that fails
// sets Down at once, and the next success (a request's or a PING's) clears
// it, with one line saying Redis answers again.
func TestDownFollowsRedis(t *testing.T) {
	e := newEnv(t)
	c := mustOpen(t, Config{URL: e.url, Prefix: e.prefix, Log: zerolog.New(e.log), OnError: e.errs.onError, ProbeInterval: 200 * time.Millisecond})
	if c.Down() {
		t.Fatal("Down() = true with a live Redis")
	}
	// A failure (here a command Redis refuses) marks it down until a success.
	if err := c.do(context.Background(), OpCacheGet, func(ctx context.Context) error {
		return c.rdb.Do(ctx, "NO-SUCH-COMMAND").Err()
	}); err == nil {
		t.Fatal("an unknown command did not fail")
	}
	if !c.Down() {
		t.Error("Down() = false right after a failed operation")
	}
	waitDown(t, c, false)
	if len(e.log.entries(t)) == 0 {
		t.Error("no log line when Redis answered again")
	}
}

// TestCloseStopsProbe: Close ends the background PING (goleak checks the
// goroutine in TestMain) and may be called twice.
func TestCloseStopsProbe(t *testing.T) {
	c, err := Open(context.Background(), Config{URL: "redis://" + deadAddr(t) + "/0", Timeout: deadTimeout, ProbeInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case <-c.probeDone:
	default:
		t.Error("the probe goroutine outlived Close")
	}
	c.Close()
}
