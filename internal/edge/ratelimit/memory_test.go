package ratelimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/time/rate"

	"github.com/mkgraph/mkgraph/internal/testing/clocktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newFakeClock returns a clock tests move by hand.
func newFakeClock() *clocktest.Clock {
	return clocktest.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}

// mustAllow calls m.Allow and checks the answer.
func mustAllow(t *testing.T, m *Memory, key string, wantOK bool, wantRetry time.Duration) {
	t.Helper()
	retry, ok, err := m.Allow(context.Background(), key)
	if err != nil {
		t.Fatalf("Allow(%q): %v", key, err)
	}
	if ok != wantOK || retry != wantRetry {
		t.Fatalf("Allow(%q) = %v, %v; want %v, %v", key, retry, ok, wantRetry, wantOK)
	}
}

func TestMemoryBurstThenRefusal(t *testing.T) {
	tests := []struct {
		perMinute, burst int
		wantBurst        int           // requests allowed at once
		wantRetry        time.Duration // retryAfter of the first refusal
	}{
		{60, 3, 3, time.Second},
		{6, 1, 1, 10 * time.Second},
		{120, 5, 5, 500 * time.Millisecond},
		{1, 1, 1, time.Minute},
		{600, 10, 10, 100 * time.Millisecond},
		{60, 0, 1, time.Second},  // burst < 1 is 1
		{60, -5, 1, time.Second}, // likewise
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/min burst %d", tt.perMinute, tt.burst), func(t *testing.T) {
			clock := newFakeClock()
			m := newMemory(tt.perMinute, tt.burst, 10, clock.Now)
			for range tt.wantBurst {
				mustAllow(t, m, "u1", true, 0)
			}
			mustAllow(t, m, "u1", false, tt.wantRetry)
			// Half way, half the wait is left.
			clock.Advance(tt.wantRetry / 2)
			mustAllow(t, m, "u1", false, tt.wantRetry-tt.wantRetry/2)
			// Once retryAfter has passed, exactly one more request is allowed.
			clock.Advance(tt.wantRetry - tt.wantRetry/2)
			mustAllow(t, m, "u1", true, 0)
			mustAllow(t, m, "u1", false, tt.wantRetry)
			// A full refill allows a full burst again.
			clock.Advance(time.Duration(tt.wantBurst) * tt.wantRetry)
			for range tt.wantBurst {
				mustAllow(t, m, "u1", true, 0)
			}
			mustAllow(t, m, "u1", false, tt.wantRetry)
		})
	}
}

func TestMemoryUnlimited(t *testing.T) {
	for _, perMinute := range []int{0, -1} {
		m := NewMemory(perMinute, 1)
		for range 1000 {
			mustAllow(t, m, "u1", true, 0)
		}
		if m.Len() != 0 {
			t.Errorf("NewMemory(%d, 1): Len = %d, want 0 (nothing to remember)", perMinute, m.Len())
		}
	}
}

func TestMemoryIndependentKeys(t *testing.T) {
	clock := newFakeClock()
	m := newMemory(60, 2, 10, clock.Now)
	mustAllow(t, m, "alice", true, 0)
	mustAllow(t, m, "alice", true, 0)
	mustAllow(t, m, "alice", false, time.Second)
	// Bob is not held back by Alice.
	mustAllow(t, m, "bob", true, 0)
	mustAllow(t, m, "bob", true, 0)
	mustAllow(t, m, "bob", false, time.Second)
	mustAllow(t, m, "alice", false, time.Second)
	// Keys that only differ after the first 64 bytes are distinct callers.
	long := strings.Repeat("k", 100)
	mustAllow(t, m, long+"1", true, 0)
	mustAllow(t, m, long+"1", true, 0)
	mustAllow(t, m, long+"1", false, time.Second)
	mustAllow(t, m, long+"2", true, 0)
	if got := m.Len(); got != 4 {
		t.Errorf("Len = %d, want 4", got)
	}
}

func TestMemoryLRUBound(t *testing.T) {
	clock := newFakeClock()
	m := newMemory(1, 1, 3, clock.Now)
	mustAllow(t, m, "a", true, 0)
	mustAllow(t, m, "b", true, 0)
	mustAllow(t, m, "c", true, 0)
	mustAllow(t, m, "a", false, time.Minute) // a is now the most recently used
	mustAllow(t, m, "d", true, 0)            // evicts b, the least recently used
	if got := m.Len(); got != 3 {
		t.Fatalf("Len = %d, want 3", got)
	}
	mustAllow(t, m, "a", false, time.Minute) // a kept its empty bucket
	mustAllow(t, m, "b", true, 0)            // b was forgotten: a fresh bucket (evicts c)
	mustAllow(t, m, "d", false, time.Minute)

	// A flood of new keys never grows the map past the bound.
	for i := range 10_000 {
		mustAllow(t, m, fmt.Sprint("flood", i), true, 0)
	}
	if got := m.Len(); got != 3 {
		t.Fatalf("after a flood of keys: Len = %d, want 3", got)
	}
}

func TestMemoryTTL(t *testing.T) {
	tests := []struct {
		perMinute, burst int
		wantTTL          time.Duration
	}{
		{60, 10, minTTL},              // refills in 10 s
		{1, 10, 10 * time.Minute},     // refills in 10 min
		{7, 3, minTTL},                // refills in 26 s
		{1, 1000, 1000 * time.Minute}, // refills in 16 h 40 min
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/min burst %d", tt.perMinute, tt.burst), func(t *testing.T) {
			clock := newFakeClock()
			m := newMemory(tt.perMinute, tt.burst, 10, clock.Now)
			if m.ttl != tt.wantTTL {
				t.Fatalf("ttl = %v, want %v", m.ttl, tt.wantTTL)
			}
			for range tt.burst {
				mustAllow(t, m, "idle", true, 0)
			}
			clock.Advance(m.ttl - time.Nanosecond)
			mustAllow(t, m, "other", true, 0)
			if got := m.Len(); got != 2 {
				t.Fatalf("just before the TTL: Len = %d, want 2", got)
			}
			clock.Advance(time.Nanosecond)
			mustAllow(t, m, "other", true, 0)
			if got := m.Len(); got != 1 {
				t.Fatalf("at the TTL: Len = %d, want 1 (idle dropped)", got)
			}
		})
	}
}

// TestMemoryForgettingIsInvisible checks that dropping idle buckets never
// changes a decision: Memory answers as one rate.Limiter per key kept
// forever would, over random traffic with random pauses.
func TestMemoryForgettingIsInvisible(t *testing.T) {
	for _, cfg := range [][2]int{{60, 5}, {6, 2}, {1, 3}, {600, 1}} {
		perMinute, burst := cfg[0], cfg[1]
		t.Run(fmt.Sprintf("%d/min burst %d", perMinute, burst), func(t *testing.T) {
			clock := newFakeClock()
			m := newMemory(perMinute, burst, 1000, clock.Now)
			ref := map[string]*rate.Limiter{}
			rng := rand.New(rand.NewPCG(1, uint64(perMinute)))
			dropped := 0
			for i := range 20_000 {
				switch rng.IntN(10) {
				case 0:
					clock.Advance(time.Duration(rng.Int64N(int64(2 * m.ttl))))
				case 1, 2:
					clock.Advance(time.Duration(rng.Int64N(int64(10 * time.Second))))
				}
				key := fmt.Sprint("k", rng.IntN(20))
				lim, ok := ref[key]
				if !ok {
					lim = rate.NewLimiter(rate.Limit(float64(perMinute)/60), burst)
					ref[key] = lim
				}
				before := m.Len()
				_, got, _ := m.Allow(context.Background(), key)
				if m.Len() < before {
					dropped++
				}
				if want := lim.AllowN(clock.Now(), 1); got != want {
					t.Fatalf("request %d for %s: Allow = %v, want %v", i, key, got, want)
				}
			}
			if dropped == 0 {
				t.Fatal("no bucket was ever dropped: the test did not exercise the TTL")
			}
		})
	}
}

func TestMemoryConcurrent(t *testing.T) {
	const keys, burst, workers, perWorker = 10, 20, 32, 200
	m := NewMemory(1, burst) // refills one token a minute: none during the test
	var allowed [keys]atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				k := (w + i) % keys
				_, ok, err := m.Allow(context.Background(), fmt.Sprint("user", k))
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					allowed[k].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for k := range keys {
		if got := allowed[k].Load(); got != burst {
			t.Errorf("user%d: %d requests allowed, want exactly the burst of %d", k, got, burst)
		}
	}
}
