//go:build load

package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The machine's CPU, as /proc/stat counts it, so that a run can tell how
// much of the cores went to processes outside it (another build or test on
// the same machine): the figures of a busy machine are not comparable.
const (
	quietBusyShare = 0.15             // others' share of the machine below which it counts as quiet
	quietDefault   = 2 * time.Minute  // LOAD_QUIET_WAIT's default, before the first run
	quietPerRun    = 20 * time.Second // before each later run, at most LOAD_QUIET_WAIT
)

// machineBusy is the busy CPU time of all cores since boot (user, nice,
// system, irq, softirq, steal), or 0 if unknown.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * time.Second / loadClockTicks
}

// othersShare is the share of the machine's CPU over elapsed that went to
// processes other than ours, which used ours.
func othersShare(busy, ours, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return max(0, float64(busy-ours)/float64(elapsed)/float64(runtime.NumCPU()))
}

// waitQuiet waits, for at most LOAD_QUIET_WAIT (default 2 min; "0s" does
// not wait), until the machine's cores are nearly idle over a second, and
// returns the busy share it last saw.
func waitQuiet(t *testing.T) float64 {
	t.Helper()
	return waitQuietFor(t, quietWait(t))
}

// quietWait is LOAD_QUIET_WAIT, or its default.
func quietWait(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("LOAD_QUIET_WAIT")
	if v == "" {
		return quietDefault
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		t.Fatalf("LOAD_QUIET_WAIT=%q: want a duration", v)
	}
	return d
}

// waitQuietFor is waitQuiet with its bound.
func waitQuietFor(t *testing.T, wait time.Duration) float64 {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		cpu0, busy0, t0 := loadSelfCPU(), machineBusy(), time.Now()
		time.Sleep(time.Second)
		share := othersShare(machineBusy()-busy0, loadSelfCPU()-cpu0, time.Since(t0))
		if share < quietBusyShare || time.Now().After(deadline) {
			if share >= quietBusyShare {
				t.Logf("the machine is still busy (%.0f%% of its CPU used by other processes) after %s: measuring anyway", 100*share, wait)
			}
			return share
		}
	}
}
