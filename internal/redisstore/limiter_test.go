package redisstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sony/gobreaker/v2"

	"github.com/mkgraph/mkgraph/internal/edge/ratelimit"
)

var _ ratelimit.Limiter = (*Limiter)(nil)

// burstThenRefuse calls Allow alternately on limiters until one refuses,
// and checks that exactly burst calls were allowed and the refusal's
// retryAfter is in (0, interval].
func burstThenRefuse(t *testing.T, ls []*Limiter, key string, burst int, interval time.Duration) {
	t.Helper()
	for i := range burst + 1 {
		retry, ok, err := ls[i%len(ls)].Allow(context.Background(), key)
		if err != nil {
			t.Fatalf("call %d: Allow: %v", i, err)
		}
		if i < burst {
			if !ok || retry != 0 {
				t.Fatalf("call %d of a burst of %d: Allow = %v, %v; want allowed", i+1, burst, retry, ok)
			}
			continue
		}
		if ok {
			t.Fatalf("call %d after a burst of %d: allowed", i+1, burst)
		}
		within(t, "retryAfter", retry, 0, interval)
	}
}

func TestLimiterShared(t *testing.T) {
	tests := []struct {
		name             string
		perMinute, burst int
		wantBurst        int
	}{
		{"60/min burst 3", 60, 3, 3},
		{"1/min burst 1", 1, 1, 1},
		{"burst 0 is 1", 30, 0, 1},
		{"10/min burst 10", 10, 10, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ls := []*Limiter{
				NewLimiter(e.open(t), "user", tt.perMinute, tt.burst),
				NewLimiter(e.open(t), "user", tt.perMinute, tt.burst),
			}
			burstThenRefuse(t, ls, "user-123", tt.wantBurst, time.Minute/time.Duration(tt.perMinute))
			// A third replica agrees.
			if _, ok, _ := NewLimiter(e.open(t), "user", tt.perMinute, tt.burst).Allow(context.Background(), "user-123"); ok {
				t.Error("a third replica allowed a spent caller")
			}
			e.errs.check(t)
		})
	}
}

// The shared limiter allows what ratelimit.Memory allows for one replica.
func TestLimiterMatchesMemory(t *testing.T) {
	for _, cfg := range [][2]int{{60, 3}, {120, 1}, {6, 4}, {30, -2}} {
		t.Run(fmt.Sprintf("%d/min burst %d", cfg[0], cfg[1]), func(t *testing.T) {
			e := newEnv(t)
			shared := NewLimiter(e.open(t), "user", cfg[0], cfg[1])
			local := ratelimit.NewMemory(cfg[0], cfg[1])
			var got, want []bool
			for range 8 {
				_, ok, _ := shared.Allow(context.Background(), "k")
				got = append(got, ok)
				_, ok, _ = local.Allow(context.Background(), "k")
				want = append(want, ok)
			}
			if !cmp.Equal(got, want) {
				t.Errorf("shared allows %v, Memory allows %v", got, want)
			}
		})
	}
}

func TestLimiterSeparateSpaces(t *testing.T) {
	tests := []struct {
		name               string
		kind1, key1        string
		kind2, key2        string
		shared             bool
		perMinute2, burst2 int
	}{
		{"same kind, same key", "user", "alice", "user", "alice", true, 60, 1},
		{"same kind, other key", "user", "alice", "user", "bob", false, 60, 1},
		{"other kind, same key", "user", "alice", "backend", "alice", false, 60, 1},
		{"keys that would collide when joined", "user", "a:b", "user:a", "b", false, 60, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.open(t)
			l1 := NewLimiter(c, tt.kind1, 60, 1)
			l2 := NewLimiter(c, tt.kind2, tt.perMinute2, tt.burst2)
			if _, ok, _ := l1.Allow(context.Background(), tt.key1); !ok {
				t.Fatal("first call refused")
			}
			if _, ok, _ := l1.Allow(context.Background(), tt.key1); ok {
				t.Fatal("second call allowed with burst 1")
			}
			_, ok, _ := l2.Allow(context.Background(), tt.key2)
			if ok == tt.shared {
				t.Errorf("%s/%s after %s/%s was spent: allowed = %v, want %v", tt.kind2, tt.key2, tt.kind1, tt.key1, ok, !tt.shared)
			}
		})
	}
}

func TestLimiterKeysHideCallers(t *testing.T) {
	e := newEnv(t)
	c := e.open(t)
	callers := map[string][]string{
		"user":    {"auth0|5f1e2d3c4b5a69788", "alice@example.com"},
		"backend": {"billing-backend-prod"},
	}
	for kind, keys := range callers {
		l := NewLimiter(c, kind, 60, 5)
		for _, k := range keys {
			if _, ok, _ := l.Allow(context.Background(), k); !ok {
				t.Fatalf("%s %s refused", kind, k)
			}
		}
	}
	keys := e.keys(t)
	if len(keys) != 3 {
		t.Fatalf("keys = %q, want one per caller (3)", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "rate:"+e.prefix+"caller:") {
			t.Errorf("key %q is not under rate:%scaller:", k, e.prefix)
		}
		for _, ks := range callers {
			for _, caller := range ks {
				for _, part := range append(strings.FieldsFunc(caller, func(r rune) bool { return r == '|' || r == '@' }), caller) {
					if len(part) >= 5 && strings.Contains(k, part) {
						t.Errorf("key %q contains %q of caller %q", k, part, caller)
					}
				}
			}
		}
		pttl, err := e.rdb.PTTL(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if pttl <= 0 || pttl > 5*time.Second+time.Second {
			t.Errorf("PTTL of %q = %v, want about the refill time of the bucket (5s)", k, pttl)
		}
	}
}

func TestLimiterUnlimited(t *testing.T) {
	e := newEnv(t)
	c := e.open(t)
	hook := &cmdHook{}
	c.Redis().AddHook(hook)
	for _, perMinute := range []int{0, -1} {
		l := NewLimiter(c, "user", perMinute, 1)
		for i := range 50 {
			if retry, ok, err := l.Allow(context.Background(), "alice"); !ok || retry != 0 || err != nil {
				t.Fatalf("perMinute %d call %d: Allow = %v, %v, %v", perMinute, i, retry, ok, err)
			}
		}
	}
	if n := len(hook.all()); n != 0 {
		t.Errorf("an unlimited limiter asked Redis %d times", n)
	}
}

func TestLimiterRedisDown(t *testing.T) {
	d := openDead(t, "pw-limiter")
	l := NewLimiter(d.c, "user", 60, 2)
	burstThenRefuse(t, []*Limiter{l}, "alice@example.com", 2, time.Second)
	if _, ok, _ := l.Allow(context.Background(), "bob"); !ok {
		t.Error("another caller refused by the local fallback")
	}
	if st := d.c.breaker.State(); st != gobreaker.StateOpen {
		t.Errorf("breaker %v, want open", st)
	}
	if got := d.errs.count(OpRateLimit); got != 4 {
		t.Errorf("OpRateLimit reported %d times, want 4", got)
	}
	if w := d.log.warnings(t, OpRateLimit); len(w) != 1 {
		t.Errorf("%d rate-limit warnings, want 1", len(w))
	}
	if s := d.log.String(); strings.Contains(s, "alice") || strings.Contains(s, "pw-limiter") {
		t.Errorf("the log holds a caller or the password: %s", s)
	}
}

func TestLimiterCanceled(t *testing.T) {
	e := newEnv(t)
	c := e.open(t)
	l := NewLimiter(c, "user", 60, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 5 {
		if _, ok, err := l.Allow(ctx, "alice"); !ok || err != nil {
			t.Fatalf("Allow with a canceled context = %v, %v; want allowed", ok, err)
		}
	}
	e.errs.check(t)
	if st := c.breaker.State(); st != gobreaker.StateClosed {
		t.Errorf("breaker %v, want closed", st)
	}
	if _, ok, _ := l.Allow(context.Background(), "alice"); !ok {
		t.Error("canceled calls took tokens")
	}
}
