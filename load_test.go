//go:build load

// The load benchmarks: the facade and the sandbox run as two processes of
// the real binary on loopback, the sandbox answering every identity call
// after loadSandboxLatency, and a closed-loop load generator (LOAD_CLIENTS
// clients, each sending its next request as soon as the last one is
// answered) drives each scenario for LOAD_DURATION, bounded also by
// LOAD_MAX_REQUESTS. Each scenario is run twice in a row: once
// directly against the sandbox with the equivalent REST calls, then through
// a fresh facade process, so that the ratio compares like with like and the
// facade's peak RSS and CPU are the scenario's own. It is behind the load
// build tag, so `go test ./...` never runs it; run it with `make load`.
//
//	LOAD_DURATION=3s go test -tags load -run TestLoad -count=1 -v .
package main

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/testing/redistest"
)

// Settings of the load run; the environment overrides the first three.
const (
	loadDefaultClients     = 32
	loadDefaultDuration    = 10 * time.Second
	loadDefaultMaxRequests = 200000 // per run (direct or facade) of a scenario
	loadSandboxLatency     = "20ms"
	loadBudget             = "100000000" // identity calls per link and per app per minute: out of the way
	loadClientTimeout      = 10 * time.Second
	loadCheckEvery         = 100 // every n-th answer is decoded and checked in full
	loadClockTicks         = 100 // USER_HZ of /proc/<pid>/stat on Linux

	loadDoc       = "docs/performance.md"
	loadBeginMark = "<!-- load:begin -->"
	loadEndMark   = "<!-- load:end -->"

	loadSeedLink  = "mk_eqkWN34UEoa2NxyALG8pcV" // 1 account
	loadLargeLink = "mk_sandbox_large"          // 500 accounts
	loadCopyLink  = "mk_sandbox_copy_"          // + anything: the household fixture (3 accounts)
)

// The targets; only the error count and the cache's upstream calls
// fail the test, the others are reported as met or missed.
const (
	loadTargetOverheadP50 = time.Millisecond
	loadTargetOverheadP99 = 5 * time.Millisecond
	loadTargetCachedRPS   = 5000
	loadTargetRSSMiB      = 100
	loadMaxCachedCalls    = 1
)

func TestLoad(t *testing.T) {
	clients := envInt(t, "LOAD_CLIENTS", loadDefaultClients)
	duration := envDuration(t, "LOAD_DURATION", loadDefaultDuration)
	maxRequests := envInt(t, "LOAD_MAX_REQUESTS", loadDefaultMaxRequests)
	dir := t.TempDir()

	// One binary; one sandbox for the whole run, a fresh facade per scenario.
	bin := buildBinary(t, dir)
	sandboxAddr := freeAddr(t)
	sandboxURL := "http://" + sandboxAddr
	sbx := startProcess(t, dir, "sandbox", bin, []string{"sandbox", "-addr", sandboxAddr, "-latency", loadSandboxLatency},
		[]string{"MKGRAPH_LOG_LEVEL=warn"})
	waitFor(t, sbx, sandboxURL+"/_sandbox/stats")

	// One client for everything; (b) directly holds 10 connections per client.
	client := loopbackClient(t, loadClientTimeout, 20*clients)

	var seq atomic.Int64 // request numbers, unique over the run: fresh link ids
	var results []loadRun
	loadBefore := loadAverage()
	for _, s := range loadShapes {
		// 1. Directly against the sandbox.
		direct := loadMeasure(t, client, clients, duration, maxRequests, &seq, sandboxURL, sbx, nil, func(n int64) error {
			return loadDirect(client, sandboxURL, s.directIDs(s.ids(n)))
		})
		// 2. Through a fresh facade (or several sharing Redis).
		env := []string{
			"MONEYKIT_BASE_URL=" + sandboxURL,
			"MONEYKIT_CLIENT_ID=" + sandboxClientID,
			"MONEYKIT_CLIENT_SECRET=" + sandboxClientSecret,
			"MKGRAPH_LOG_LEVEL=warn",
			"MKGRAPH_AUTH=none",
			"MKGRAPH_USER_RATE_LIMIT=0",
			"MKGRAPH_BACKEND_RATE_LIMIT=0",
			"MKGRAPH_IDENTITY_BUDGET_PER_LINK=" + loadBudget,
			"MKGRAPH_IDENTITY_BUDGET_PER_APP=" + loadBudget,
		}
		if !s.cache {
			env = append(env, "MKGRAPH_CACHE_TTL=0s")
		}
		if s.replicas > 1 {
			redisURL := redistest.URL(t)
			env = append(env, "MKGRAPH_REDIS_URL="+redisURL, "MKGRAPH_REDIS_PREFIX="+redistest.Prefix(t, redisURL))
		}
		var facades []*process
		var facadeURLs []string
		for i := range max(s.replicas, 1) {
			addr := freeAddr(t)
			facadeURLs = append(facadeURLs, "http://"+addr)
			facades = append(facades, startProcess(t, dir, fmt.Sprintf("facade-%s%d", s.key, i), bin, nil, append([]string{"MKGRAPH_ADDR=" + addr}, env...)))
			waitFor(t, facades[i], facadeURLs[i]+"/readyz")
			// Each facade's token and first upstream connection, on a link
			// no scenario reads, before the sandbox counters are taken.
			if err := loadGraphQL(client, facadeURLs[i], []string{fmt.Sprintf("%swarmup_%s%d", loadCopyLink, s.key, i)}, 3, true); err != nil {
				t.Fatalf("(%s) warm-up request: %v", s.key, err)
			}
		}
		fac := loadMeasure(t, client, clients, duration, maxRequests, &seq, sandboxURL, sbx, facades, func(n int64) error {
			return loadGraphQL(client, facadeURLs[n%int64(len(facadeURLs))], s.ids(n), s.accounts, n%loadCheckEvery == 0)
		})
		for _, f := range facades {
			f.stop()
		}
		results = append(results, loadRun{s, direct, fac})
		t.Logf("(%s) %s: direct %.0f req/s p50 %s p99 %s; facade %.0f req/s p50 %s p99 %s, %d errors, %.3f upstream calls/request, peak RSS %.1f MiB, %d token calls",
			s.key, s.title, direct.rps(), loadMS(direct.p(50)), loadMS(direct.p(99)),
			fac.rps(), loadMS(fac.p(50)), loadMS(fac.p(99)), fac.errs, fac.callsPerReq(clients), float64(fac.peakRSSKiB)/1024, fac.tokenCalls)
	}
	loadAfter := loadAverage()
	client.CloseIdleConnections()

	table := loadReport(results, clients, duration, maxRequests, loadBefore, loadAfter)
	t.Logf("load figures:\n\n%s", table)
	if os.Getenv("LOAD_WRITE") == "1" {
		if err := writeMarked(loadDoc, loadBeginMark, loadEndMark, table); err != nil {
			t.Errorf("write %s: %v", loadDoc, err)
		} else {
			t.Logf("wrote the figures into %s", loadDoc)
		}
	}

	// The contract.
	byKey := loadByKey(results)
	d := byKey["d"]
	for _, r := range results {
		for name, f := range map[string]loadFigures{"direct": r.direct, "facade": r.facade} {
			if f.requests == 0 {
				t.Errorf("(%s) %s: no request was answered", r.shape.key, name)
			}
			if f.errs > 0 {
				t.Errorf("(%s) %s: %d error answers: %v", r.shape.key, name, f.errs, f.errKinds)
			}
		}
	}
	if d.facade.identityCalls > loadMaxCachedCalls {
		t.Errorf("(d) cost %d upstream identity calls, want at most %d", d.facade.identityCalls, loadMaxCachedCalls)
	}
	if f, ok := byKey["f"]; ok && f.facade.identityCalls > loadMaxCachedCalls {
		t.Errorf("(f) three replicas cost %d upstream identity calls, want at most %d (shared through Redis)", f.facade.identityCalls, loadMaxCachedCalls)
	}
}
