package linkevents

import (
	"fmt"
	"runtime"
	"testing"
)

// TestIdleSubscriptionMemory measures the heap an idle subscription holds
// (docs/performance.md): 10,000 subscriptions, each to a link of its own
// and to one shared link, with buffers of 1 and 16 events.
//
//	go test -run TestIdleSubscriptionMemory -count=1 -v ./internal/linkevents
func TestIdleSubscriptionMemory(t *testing.T) {
	const n = 10_000
	for _, tt := range []struct {
		buffer int
		shared bool
		max    uint64 // bytes per subscription the test allows
	}{{1, false, 1 << 10}, {16, false, 4 << 10}, {16, true, 4 << 10}} {
		name := fmt.Sprintf("buffer %d, own links", tt.buffer)
		if tt.shared {
			name = fmt.Sprintf("buffer %d, one link", tt.buffer)
		}
		t.Run(name, func(t *testing.T) {
			ids := make([]string, n)
			for i := range ids {
				ids[i] = fmt.Sprintf("mk_sandbox_copy_%08d", i)
				if tt.shared {
					ids[i] = "mk_sandbox_copy_one"
				}
			}
			l := NewLocal()
			defer l.Close()
			before := heap()
			subs := make([]*Subscription, n)
			for i := range subs {
				subs[i] = l.Subscribe(ids[i], tt.buffer)
			}
			after := heap()
			runtime.KeepAlive(subs)
			per := (after - before) / n
			t.Logf("%d idle subscriptions (%s): %.2f MiB, %d bytes each", n, name, float64(after-before)/(1<<20), per)
			if per > tt.max {
				t.Errorf("%d bytes per idle subscription, want at most %d", per, tt.max)
			}
		})
	}
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
