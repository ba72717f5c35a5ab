//go:build load

package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// loadFigures are one run (direct or facade) of one scenario.
type loadFigures struct {
	requests, errs int
	errKinds       map[string]int
	elapsed        time.Duration
	lat            []time.Duration // sorted
	identityCalls  int             // sandbox delta, warm-up included
	tokenCalls     int
	peakRSSKiB     int           // facade VmHWM
	cpuFacade      time.Duration // facade user+system CPU during the timed run
	cpuSandbox     time.Duration
	cpuGenerator   time.Duration // this test process
	cpuMachine     time.Duration // every core's busy time, for othersShare
}

// loadRun is one scenario's two runs, directly and through the facade.
type loadRun struct {
	shape          loadShape
	direct, facade loadFigures
}

func (f loadFigures) rps() float64 { return float64(f.requests) / f.elapsed.Seconds() }

func (f loadFigures) p(q float64) time.Duration {
	return percentile(f.lat, q)
}

func (f loadFigures) perReq(d time.Duration) time.Duration {
	return d / time.Duration(max(f.requests, 1))
}

// others is the share of the machine's CPU that processes outside the run
// used during it.
func (f loadFigures) others() float64 {
	return othersShare(f.cpuMachine, f.cpuFacade+f.cpuSandbox+f.cpuGenerator, f.elapsed)
}

func (f loadFigures) callsPerReq(warmups int) float64 {
	return float64(f.identityCalls) / float64(max(f.requests+warmups, 1))
}

// loadMeasure runs one closed-loop run of do and returns its figures; the
// sandbox's counters and the processes' CPU are read around it. facade is
// nil for a direct run; with several, their CPU is summed and the largest
// peak RSS kept.
func loadMeasure(t *testing.T, c *http.Client, clients int, d time.Duration, maxRequests int, seq *atomic.Int64,
	sandboxURL string, sbx *process, facades []*process, do func(n int64) error) loadFigures {
	t.Helper()
	statsBefore := sandboxStats(t, sandboxURL)
	var f loadFigures
	var cpuFacade, cpuSandbox, cpuSelf time.Duration
	f.errKinds = map[string]int{}
	var (
		mu      sync.Mutex
		warm    sync.WaitGroup
		done    sync.WaitGroup
		start   = make(chan struct{})
		started time.Time
		count   atomic.Int64
	)
	record := func(lat []time.Duration, kinds map[string]int) {
		mu.Lock()
		defer mu.Unlock()
		f.lat = append(f.lat, lat...)
		for k, n := range kinds {
			f.errKinds[k] += n
			f.errs += n
		}
	}
	warm.Add(clients)
	for range clients {
		done.Go(func() {
			kinds := map[string]int{}
			// One untimed request each: connections open, caches as they are.
			if err := do(seq.Add(1)); err != nil {
				kinds["warm-up: "+err.Error()]++
			}
			warm.Done()
			<-start
			lat := make([]time.Duration, 0, 1024)
			for time.Since(started) < d && count.Add(1) <= int64(maxRequests) {
				n := seq.Add(1)
				t0 := time.Now()
				err := do(n)
				took := time.Since(t0)
				if err != nil {
					kinds[err.Error()]++
					continue
				}
				lat = append(lat, took)
			}
			record(lat, kinds)
		})
	}
	warm.Wait()
	cpuSandbox = loadProcCPU(sbx.cmd.Process.Pid)
	for _, facade := range facades {
		cpuFacade += loadProcCPU(facade.cmd.Process.Pid)
	}
	cpuSelf = loadSelfCPU()
	machine := machineBusy()
	started = time.Now()
	close(start)
	done.Wait()
	f.elapsed = time.Since(started)
	f.cpuMachine = machineBusy() - machine
	f.cpuSandbox = loadProcCPU(sbx.cmd.Process.Pid) - cpuSandbox
	f.cpuGenerator = loadSelfCPU() - cpuSelf
	for _, facade := range facades {
		f.cpuFacade += loadProcCPU(facade.cmd.Process.Pid)
		f.peakRSSKiB = max(f.peakRSSKiB, procStatusKiB(facade.cmd.Process.Pid, "VmHWM:"))
	}
	f.cpuFacade -= cpuFacade
	statsAfter := sandboxStats(t, sandboxURL)
	f.identityCalls = statsAfter.IdentityCalls - statsBefore.IdentityCalls
	f.tokenCalls = statsAfter.TokenCalls - statsBefore.TokenCalls
	f.requests = len(f.lat)
	slices.Sort(f.lat)
	return f
}

// loadProcCPU is the user + system CPU time pid has used (0 if unknown).
func loadProcCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the parenthesized command: state is the first,
	// utime and stime the 12th and 13th.
	i := bytes.LastIndex(b, []byte(") "))
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * time.Second / loadClockTicks
}

// loadSelfCPU is the user + system CPU time of this process.
func loadSelfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
