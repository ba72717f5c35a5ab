package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// reserve is one Reserve call and what it should answer.
type reserve struct {
	replica int    // index of the Budget
	link    string // link id
	scope   string // "" when granted, else upstream.ScopeLink or ScopeApp
}

// checkReserve calls Reserve and checks the answer; a refusal's retryAfter
// must be in (lo, hi].
func checkReserve(t *testing.T, b *Budget, step int, r reserve, lo, hi time.Duration) {
	t.Helper()
	wait, scope, err := b.Reserve(context.Background(), r.link)
	if err != nil {
		t.Fatalf("step %d: Reserve(%s): %v", step, r.link, err)
	}
	if scope != r.scope {
		t.Errorf("step %d: replica %d Reserve(%s) refusedBy = %q, want %q (retryAfter %v)", step, r.replica, r.link, scope, r.scope, wait)
	}
	if r.scope == "" {
		if wait != 0 {
			t.Errorf("step %d: granted with retryAfter %v, want 0", step, wait)
		}
		return
	}
	within(t, fmt.Sprintf("step %d: retryAfter", step), wait, lo, hi)
}

func TestBudgetShared(t *testing.T) {
	const a, b, c = "mk_link_a", "mk_link_b", "mk_link_c"
	tests := []struct {
		name            string
		perLink, perApp int
		steps           []reserve
	}{
		{"per link over two replicas", 3, 0, []reserve{
			{0, a, ""}, {1, a, ""}, {0, a, ""},
			{1, a, upstream.ScopeLink}, {0, a, upstream.ScopeLink},
			{1, b, ""}, {0, b, ""},
		}},
		{"per app over two replicas", 0, 3, []reserve{
			{0, a, ""}, {1, b, ""}, {1, c, ""},
			{0, "mk_link_d", upstream.ScopeApp}, {1, a, upstream.ScopeApp},
		}},
		{"link spent before app", 2, 5, []reserve{
			{0, a, ""}, {1, a, ""}, {0, a, upstream.ScopeLink},
			{1, b, ""}, {0, b, ""}, {1, c, ""},
			{0, c, upstream.ScopeApp}, {1, a, upstream.ScopeApp},
		}},
		{"both spent: the app says so", 3, 3, []reserve{
			{0, a, ""}, {1, a, ""}, {0, a, ""},
			{1, a, upstream.ScopeApp}, {0, b, upstream.ScopeApp},
		}},
		{"a refusal takes nothing", 2, 3, []reserve{
			{0, a, ""}, {1, a, ""},
			{0, a, upstream.ScopeLink}, {1, a, upstream.ScopeLink}, {0, a, upstream.ScopeLink},
			{1, b, ""}, // the app budget has 1 left: refused link calls took none
			{0, c, upstream.ScopeApp},
		}},
	}
	for _, tt := range tests {
		for _, clients := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/%d clients", tt.name, clients), func(t *testing.T) {
				e := newEnv(t)
				c0 := e.open(t)
				c1 := c0
				if clients == 2 {
					c1 = e.open(t)
				}
				replicas := []*Budget{
					NewBudget(c0, testNamespace, tt.perLink, tt.perApp, time.Minute),
					NewBudget(c1, testNamespace, tt.perLink, tt.perApp, time.Minute),
				}
				for i, r := range tt.steps {
					checkReserve(t, replicas[r.replica], i, r, 59*time.Second, time.Minute)
				}
				e.errs.check(t)
				// The logs in Redis name no link.
				keys := e.keys(t)
				if len(keys) == 0 {
					t.Fatal("no budget key in Redis")
				}
				for _, k := range keys {
					if !strings.HasPrefix(k, e.prefix+"budget:") {
						t.Errorf("key %q is not under %sbudget:", k, e.prefix)
					}
					for _, l := range []string{a, b, c, testNamespace} {
						if strings.Contains(k, l) {
							t.Errorf("key %q contains %q", k, l)
						}
					}
					pttl, err := e.rdb.PTTL(context.Background(), k).Result()
					if err != nil {
						t.Fatal(err)
					}
					within(t, "PTTL of "+k, pttl, 58*time.Second, time.Minute)
				}
			})
		}
	}
}

func TestBudgetNamespaces(t *testing.T) {
	e := newEnv(t)
	c := e.open(t)
	b1 := NewBudget(c, "namespace-1", 1, 2, time.Minute)
	b2 := NewBudget(c, "namespace-2", 1, 2, time.Minute)
	ctx := context.Background()
	for i, step := range []struct {
		b     *Budget
		link  string
		scope string
	}{
		{b1, "mk_a", ""},
		{b1, "mk_a", upstream.ScopeLink},
		{b2, "mk_a", ""}, // same link, other credentials
		{b2, "mk_a", upstream.ScopeLink},
		{b1, "mk_b", ""},
		{b1, "mk_c", upstream.ScopeApp},
		{b2, "mk_c", ""}, // namespace-2's app budget is its own
		{b2, "mk_d", upstream.ScopeApp},
	} {
		_, scope, err := step.b.Reserve(ctx, step.link)
		if err != nil || scope != step.scope {
			t.Errorf("step %d: refusedBy %q, err %v; want %q", i, scope, err, step.scope)
		}
	}
}

func TestBudgetConcurrent(t *testing.T) {
	tests := []struct {
		name            string
		perLink, perApp int
		links           int // distinct links the calls spread over
		want            int
	}{
		{"one link", 5, 0, 1, 5},
		{"app over many links", 0, 7, 50, 7},
		{"one link, app wider", 3, 100, 1, 3},
		{"links of 2, app of 9", 2, 9, 10, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			replicas := []*Budget{
				NewBudget(e.open(t), testNamespace, tt.perLink, tt.perApp, time.Minute),
				NewBudget(e.open(t), testNamespace, tt.perLink, tt.perApp, time.Minute),
			}
			var granted atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range 50 {
				wg.Go(func() {
					<-start
					wait, scope, err := replicas[i%2].Reserve(context.Background(), fmt.Sprintf("mk_link_%d", i%tt.links))
					switch {
					case err != nil:
						t.Errorf("Reserve: %v", err)
					case scope == "" && wait == 0:
						granted.Add(1)
					case scope == "" || wait <= 0:
						t.Errorf("Reserve = %v, %q: a refusal needs both", wait, scope)
					}
				})
			}
			close(start)
			wg.Wait()
			if got := granted.Load(); got != int64(tt.want) {
				t.Errorf("%d of 50 concurrent calls granted, want %d", got, tt.want)
			}
			e.errs.check(t)
		})
	}
}

func TestBudgetUnlimited(t *testing.T) {
	e := newEnv(t)
	c := e.open(t)
	hook := &cmdHook{}
	c.Redis().AddHook(hook)
	b := NewBudget(c, testNamespace, 0, 0, time.Minute)
	for i := range 100 {
		wait, scope, err := b.Reserve(context.Background(), "mk_a")
		if wait != 0 || scope != "" || err != nil {
			t.Fatalf("call %d: Reserve = %v, %q, %v; want granted", i, wait, scope, err)
		}
	}
	if cmds := hook.all(); len(cmds) != 0 {
		t.Errorf("an unlimited budget asked Redis %d times", len(cmds))
	}
	if keys := e.keys(t); len(keys) != 0 {
		t.Errorf("an unlimited budget wrote %q", keys)
	}

	// Only the app limited: links are not logged.
	b = NewBudget(c, testNamespace, 0, 50, time.Minute)
	for range 10 {
		if _, scope, _ := b.Reserve(context.Background(), "mk_a"); scope != "" {
			t.Fatalf("refused by %q under the app limit", scope)
		}
	}
	if keys := e.keys(t); len(keys) != 1 || !strings.Contains(keys[0], ":budget:app:") {
		t.Errorf("keys = %q, want the app log only", keys)
	}
}

func TestBudgetWindowSlides(t *testing.T) {
	e := newEnv(t)
	const window = 200 * time.Millisecond
	b := NewBudget(e.open(t), testNamespace, 2, 0, window)
	ctx := context.Background()
	for range 2 {
		if _, scope, _ := b.Reserve(ctx, "mk_a"); scope != "" {
			t.Fatal("refused within the limit")
		}
	}
	wait, scope, _ := b.Reserve(ctx, "mk_a")
	if scope != upstream.ScopeLink {
		t.Fatalf("third call refusedBy %q, want link", scope)
	}
	within(t, "retryAfter", wait, 0, window)
	time.Sleep(wait + 20*time.Millisecond)
	if wait, scope, _ := b.Reserve(ctx, "mk_a"); scope != "" {
		t.Errorf("after retryAfter, still refused (%v)", wait)
	}
}

// With Redis unreachable each replica decides by its own window, and says
// so; once the breaker is open it does not wait for Redis any more.
func TestBudgetRedisDown(t *testing.T) {
	d := openDead(t, "pw-budget")
	b := NewBudget(d.c, testNamespace, 3, 0, time.Minute)
	ctx := context.Background()
	for i, want := range []string{"", "", "", upstream.ScopeLink, upstream.ScopeLink} {
		wait, scope, err := b.Reserve(ctx, sandbox.LinkSeed)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if scope != want {
			t.Errorf("call %d: refusedBy %q, want %q", i, scope, want)
		}
		if want != "" {
			within(t, "retryAfter of the local window", wait, 59*time.Second, time.Minute)
		}
	}
	if st := d.c.breaker.State(); st != gobreaker.StateOpen {
		t.Errorf("breaker %v after 5 failures, want open", st)
	}
	start := time.Now()
	for i := range 20 {
		if _, scope, _ := b.Reserve(ctx, fmt.Sprintf("mk_other_%d", i)); scope != "" {
			t.Errorf("other link %d refused by %q", i, scope)
		}
	}
	if el := time.Since(start); el > 100*time.Millisecond {
		t.Errorf("20 calls with the breaker open took %v: they waited for Redis", el)
	}
	if got, want := d.errs.count(OpBudget), 25; got != want {
		t.Errorf("OpBudget reported %d times, want %d (every fallback)", got, want)
	}
	if w := d.log.warnings(t, OpBudget); len(w) != 1 {
		t.Errorf("%d budget warnings logged, want 1 (throttled): %s", len(w), d.log)
	}
	if strings.Contains(d.log.String(), "pw-budget") || strings.Contains(d.log.String(), sandbox.LinkSeed) {
		t.Errorf("the log holds the password or a link id: %s", d.log)
	}
}

// A slow Redis costs a call at most about Config.Timeout before the local
// window answers.
func TestBudgetRedisHangs(t *testing.T) {
	const timeout = 50 * time.Millisecond
	c, errs := openAt(t, hangingRedis(t), timeout)
	b := NewBudget(c, testNamespace, 1, 0, time.Minute)
	start := time.Now()
	if _, scope, err := b.Reserve(context.Background(), "mk_a"); scope != "" || err != nil {
		t.Errorf("Reserve = %q, %v; want granted by the local window", scope, err)
	}
	if el := time.Since(start); el > 10*timeout {
		t.Errorf("Reserve took %v with a %v timeout", el, timeout)
	}
	if _, scope, _ := b.Reserve(context.Background(), "mk_a"); scope != upstream.ScopeLink {
		t.Errorf("second Reserve refusedBy %q, want link (local window)", scope)
	}
	errs.check(t, OpConnect, OpBudget, OpBudget)
}

// A caller that left is not a Redis failure: the error is the caller's,
// nothing is reported and the breaker does not count it.
func TestBudgetCanceled(t *testing.T) {
	e := newEnv(t)
	c := e.open(t)
	b := NewBudget(c, testNamespace, 3, 0, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 5 {
		_, _, err := b.Reserve(ctx, "mk_a")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Reserve with a canceled context: %v, want context.Canceled", err)
		}
	}
	e.errs.check(t)
	if st := c.breaker.State(); st != gobreaker.StateClosed {
		t.Errorf("breaker %v after canceled calls, want closed", st)
	}
	if _, scope, err := b.Reserve(context.Background(), "mk_a"); scope != "" || err != nil {
		t.Errorf("Reserve after canceled ones = %q, %v: they took from the budget", scope, err)
	}
}
