package upstream_test

import (
	"sync"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestSlidingWindow(t *testing.T) {
	clock := newFakeClock()
	b := upstream.NewSlidingWindow(3, 5, time.Minute, clock.Now)
	reserve := func(link string) (time.Duration, bool) {
		t.Helper()
		d, refusedBy, err := b.Reserve(t.Context(), link)
		if err != nil {
			t.Fatal(err)
		}
		return d, refusedBy == ""
	}
	for i := range 3 {
		if _, ok := reserve("a"); !ok {
			t.Fatalf("call %d of link a refused, want 3 allowed", i+1)
		}
		clock.Advance(10 * time.Second)
	}
	// 30 s after the first call: the 4th waits until the first leaves the window.
	if d, ok := reserve("a"); ok || d != 30*time.Second {
		t.Errorf("4th call of link a = %v, %v; want refused, 30s", d, ok)
	}
	// A refused call took nothing: link b still has the app's 2 left.
	for i := range 2 {
		if _, ok := reserve("b"); !ok {
			t.Fatalf("call %d of link b refused, want allowed (app budget 5)", i+1)
		}
	}
	if d, ok := reserve("c"); ok || d != 30*time.Second {
		t.Errorf("6th call of the app = %v, %v; want refused until the oldest call leaves, 30s", d, ok)
	}
	clock.Advance(30 * time.Second)
	if _, ok := reserve("a"); !ok {
		t.Errorf("link a a minute after its first call refused, want allowed")
	}
}

func TestSlidingWindowUnlimited(t *testing.T) {
	b := upstream.NewSlidingWindow(0, 0, time.Minute, nil)
	for range 1000 {
		if _, refusedBy, _ := b.Reserve(t.Context(), "a"); refusedBy != "" {
			t.Fatal("refused with no limits")
		}
	}
}

func TestSlidingWindowConcurrent(t *testing.T) {
	b := upstream.NewSlidingWindow(10, 100, time.Minute, nil)
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 10 {
				if _, refusedBy, _ := b.Reserve(t.Context(), "a"); refusedBy == "" {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if allowed != 10 {
		t.Errorf("%d calls of one link allowed under contention, want exactly 10", allowed)
	}
}

// TestClientBudget: the 4th identity call for a link within a minute is
// refused by the facade itself, without an upstream call, with a retryAfter
// the caller can show.
func TestClientBudget(t *testing.T) {
	sb, srv := MustSandbox(t, sandbox.Options{})
	clock := newFakeClock()
	c := MustNewClient(t, srv.URL, upstream.Config{
		Budget: upstream.NewSlidingWindow(upstream.IdentityCallsPerLink, upstream.IdentityCallsPerApp, time.Minute, clock.Now),
	})
	for i := range 3 {
		if _, err := c.GetIdentity(t.Context(), sandbox.LinkSeed); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		clock.Advance(time.Second)
	}
	start := time.Now()
	_, err := c.GetIdentity(t.Context(), sandbox.LinkSeed)
	e := MustAsError(t, err)
	if e.Code != apierr.CodeRateLimitExceeded || e.Status != 429 || !e.HasRetryAfter || e.RetryAfter != 57*time.Second {
		t.Errorf("4th call: %+v, want a 429 %s with RetryAfter 57s", e, apierr.CodeRateLimitExceeded)
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("4th call took %v, want an answer at once", took)
	}
	if got := sb.IdentityCallsFor(sandbox.LinkSeed); got != 3 {
		t.Errorf("upstream calls = %d, want 3", got)
	}
	if _, err := c.GetIdentity(t.Context(), sandbox.LinkHousehold); err != nil {
		t.Errorf("another link: %v, want its own budget", err)
	}
}

// TestSlidingWindowScope: a refusal names the budget that was spent, the
// one that frees last when both are.
func TestSlidingWindowScope(t *testing.T) {
	tests := []struct {
		name            string
		perLink, perApp int
		calls           []string // links called before the checked one
		link            string
		want            string
	}{
		{"link spent", 2, 10, []string{"a", "a"}, "a", upstream.ScopeLink},
		{"app spent", 5, 2, []string{"a", "b"}, "c", upstream.ScopeApp},
		{"both spent at once: the link frees as late", 1, 1, []string{"a"}, "a", upstream.ScopeApp},
		{"granted", 2, 2, []string{"a"}, "b", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := upstream.NewSlidingWindow(tt.perLink, tt.perApp, time.Minute, newFakeClock().Now)
			for _, l := range tt.calls {
				if _, refusedBy, _ := b.Reserve(t.Context(), l); refusedBy != "" {
					t.Fatalf("setup call of %s refused by %s", l, refusedBy)
				}
			}
			if _, refusedBy, _ := b.Reserve(t.Context(), tt.link); refusedBy != tt.want {
				t.Errorf("refusedBy = %q, want %q", refusedBy, tt.want)
			}
		})
	}
}
