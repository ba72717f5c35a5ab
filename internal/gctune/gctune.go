// Package gctune sizes the garbage collector's goal by the live heap: a
// fixed headroom of garbage between collections, rather than Go's default of
// a heap as large again as the live one.
//
// The facade's live heap is small (a few MB plus the identity cache) and it
// allocates fast: with GOGC=100 it collected every few hundred requests, and
// the collector took a large share of the CPU of cached reads. A fixed,
// higher GOGC let the heap grow to several times its live size once the
// cache filled. Here GOGC follows the live heap so that the goal stays about
// live + Headroom: frequent-enough collections for a small heap, no
// multiplication for a large one; the soft memory limit still caps the
// whole. docs/performance.md has the measurements behind this.
package gctune

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// Bounds of the GOGC the tuner sets.
const (
	MinGOGC = 100
	MaxGOGC = 800
)

// Percent returns the GOGC that makes the heap goal live + headroom,
// within [MinGOGC, MaxGOGC].
func Percent(live, headroom uint64) int {
	if live == 0 {
		return MaxGOGC
	}
	p := headroom * 100 / live
	return int(min(max(p, MinGOGC), MaxGOGC))
}

// Start sets GOGC from the live heap every interval until ctx ends, and
// returns a function that waits for it to stop. The first setting is made
// before it returns.
func Start(ctx context.Context, headroom uint64, interval time.Duration) (wait func()) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	last := -1
	tune := func() {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return
		}
		if p := Percent(sample[0].Value.Uint64(), headroom); p != last {
			debug.SetGCPercent(p)
			last = p
		}
	}
	tune()
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				tune()
			}
		}
	})
	return wg.Wait
}
