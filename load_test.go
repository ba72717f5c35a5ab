//go:build load

// The load benchmarks of issue 5 ("4. Load benchmarks"): the facade and the
// sandbox run as two processes of the real binary on loopback, the sandbox
// answering every identity call after 20 ms, and a closed-loop load
// generator (LOAD_CLIENTS clients, each sending its next request as soon as
// the last one is answered) drives each scenario for LOAD_DURATION, bounded
// also by LOAD_MAX_REQUESTS. Each scenario is run twice in a row: once
// directly against the sandbox with the equivalent REST calls, then through
// a fresh facade process, so that the ratio compares like with like and the
// facade's peak RSS and CPU are the scenario's own. It is behind the load
// build tag, so `go test ./...` never runs it; run it with `make load`.
//
//	LOAD_DURATION=3s go test -tags load -run TestLoad -count=1 -v .
package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

	loadDoc        = "docs/performance.md"
	loadBeginMark  = "<!-- load:begin -->"
	loadEndMark    = "<!-- load:end -->"
	loadSandboxID  = "mkgraph_sandbox_client"
	loadSandboxKey = "mkgraph_sandbox_secret"

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

// loadShape is one scenario: what the n-th request asks for, through the
// facade and directly.
type loadShape struct {
	key, title string
	cache      bool // the facade runs with its identity cache on (default TTL)
	accounts   int  // accounts of each link in the answer
	// replicas > 1: that many facades share one Redis (MKGRAPH_REDIS_URL),
	// the n-th request going to replica n mod replicas.
	replicas int
	// ids are the link ids the n-th request reads, one per alias (n is
	// unique over the whole run, so fresh ids never repeat).
	ids func(n int64) []string
	// directIDs are the distinct links the equivalent REST client GETs,
	// concurrently, for the same request.
	directIDs func(ids []string) []string
}

var loadShapes = []loadShape{
	{key: "a", title: "one link, all fields (fresh link per request)", accounts: 3,
		ids:       func(n int64) []string { return []string{loadCopyLink + strconv.FormatInt(n, 10)} },
		directIDs: func(ids []string) []string { return ids }},
	{key: "b", title: "10 distinct links in one query (fresh links per request)", accounts: 3,
		ids: func(n int64) []string {
			ids := make([]string, 10)
			for i := range ids {
				ids[i] = fmt.Sprintf("%s%d_%d", loadCopyLink, n, i)
			}
			return ids
		},
		directIDs: func(ids []string) []string { return ids }},
	{key: "c", title: "10 aliases of one link (fresh link per request)", accounts: 3,
		ids: func(n int64) []string {
			ids := make([]string, 10)
			for i := range ids {
				ids[i] = loadCopyLink + strconv.FormatInt(n, 10)
			}
			return ids
		},
		directIDs: func(ids []string) []string { return ids[:1] }},
	{key: "d", title: "same link re-read by every client, cache on", cache: true, accounts: 1,
		ids:       func(int64) []string { return []string{loadSeedLink} },
		directIDs: func(ids []string) []string { return ids }},
	{key: "e", title: "the 500-account link, all fields", accounts: 500,
		ids:       func(int64) []string { return []string{loadLargeLink} },
		directIDs: func(ids []string) []string { return ids }},
	{key: "f", title: "3 replicas sharing Redis: same link re-read by every client, cache on", cache: true, accounts: 1, replicas: 3,
		ids:       func(int64) []string { return []string{loadSeedLink} },
		directIDs: func(ids []string) []string { return ids }},
	{key: "g", title: "3 replicas sharing Redis: fresh link per request, cache on (every read a miss through Redis)", cache: true, accounts: 3, replicas: 3,
		ids:       func(n int64) []string { return []string{loadCopyLink + "r" + strconv.FormatInt(n, 10)} },
		directIDs: func(ids []string) []string { return ids }},
}

// loadQuery is the GraphQL body reading every field of each id, aliased
// l0, l1, … when there are several. The ids travel as variables, one per
// distinct id, as a real client sends them: the query text of a scenario
// stays the same, so the facade's parsed-query cache serves it.
func loadQuery(ids []string) []byte {
	var q, sel strings.Builder
	vars := map[string]string{}
	var params []string
	for i, id := range ids {
		v := "id" + strconv.Itoa(slices.Index(ids, id))
		if _, ok := vars[v]; !ok {
			vars[v] = id
			params = append(params, "$"+v+": ID!")
		}
		if len(ids) > 1 {
			fmt.Fprintf(&sel, " l%d:", i)
		}
		sel.WriteString(" link(id: $" + v + ") { " + allFields + " }")
	}
	q.WriteString("query Load(" + strings.Join(params, ", ") + ") {" + sel.String() + " } " + statusFragment)
	b, _ := json.Marshal(map[string]any{"query": q.String(), "variables": vars})
	return b
}

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
}

func (f loadFigures) rps() float64 { return float64(f.requests) / f.elapsed.Seconds() }
func (f loadFigures) p(q float64) time.Duration {
	return percentile(f.lat, q)
}
func (f loadFigures) perReq(d time.Duration) time.Duration {
	return d / time.Duration(max(f.requests, 1))
}
func (f loadFigures) callsPerReq(warmups int) float64 {
	return float64(f.identityCalls) / float64(max(f.requests+warmups, 1))
}

func TestLoad(t *testing.T) {
	clients := envInt(t, "LOAD_CLIENTS", loadDefaultClients)
	duration := envDuration(t, "LOAD_DURATION", loadDefaultDuration)
	maxRequests := envInt(t, "LOAD_MAX_REQUESTS", loadDefaultMaxRequests)
	dir := t.TempDir()

	// One binary; one sandbox for the whole run, a fresh facade per scenario.
	bin := filepath.Join(dir, "mkgraph")
	build := exec.Command(cmp.Or(os.Getenv("GO"), "go"), "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sandboxAddr := freeAddr(t)
	sandboxURL := "http://" + sandboxAddr
	sbx := startProcess(t, dir, "sandbox", bin, []string{"sandbox", "-addr", sandboxAddr, "-latency", loadSandboxLatency},
		[]string{"MKGRAPH_LOG_LEVEL=warn"})
	waitFor(t, sbx, sandboxURL+"/_sandbox/stats")

	// One client for everything; (b) directly holds 10 connections per client.
	client := &http.Client{
		Timeout: loadClientTimeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        20 * clients,
			MaxIdleConnsPerHost: 20 * clients,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
	t.Cleanup(client.CloseIdleConnections)

	var seq atomic.Int64 // request numbers, unique over the run: fresh link ids
	type result struct {
		shape          loadShape
		direct, facade loadFigures
	}
	var results []result
	loadBefore := loadAverage()
	for _, s := range loadShapes {
		// 1. Directly against the sandbox.
		direct := loadMeasure(t, client, clients, duration, maxRequests, &seq, sandboxURL, sbx, nil, func(n int64) error {
			return loadDirect(client, sandboxURL, s.directIDs(s.ids(n)))
		})
		// 2. Through a fresh facade (or several sharing Redis).
		env := []string{
			"MONEYKIT_BASE_URL=" + sandboxURL,
			"MONEYKIT_CLIENT_ID=" + loadSandboxID,
			"MONEYKIT_CLIENT_SECRET=" + loadSandboxKey,
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
		results = append(results, result{s, direct, fac})
		t.Logf("(%s) %s: direct %.0f req/s p50 %s p99 %s; facade %.0f req/s p50 %s p99 %s, %d errors, %.3f upstream calls/request, peak RSS %.1f MiB, %d token calls",
			s.key, s.title, direct.rps(), loadMS(direct.p(50)), loadMS(direct.p(99)),
			fac.rps(), loadMS(fac.p(50)), loadMS(fac.p(99)), fac.errs, fac.callsPerReq(clients), float64(fac.peakRSSKiB)/1024, fac.tokenCalls)
	}
	loadAfter := loadAverage()
	client.CloseIdleConnections()

	// The report.
	var b strings.Builder
	fmt.Fprintf(&b, "Run of %s on %d vCPU (%s), %s, %s/%s. Settings: %d closed-loop clients (each sends its next request when the last is answered) over one shared `http.Client`, "+
		"%s per run (at most %d requests), sandbox (`mkgraph sandbox -latency %s`) and facade as separate processes of one binary on loopback, "+
		"a fresh facade per scenario with `MKGRAPH_AUTH=none`, `MKGRAPH_LOG_LEVEL=warn`, identity budgets raised to %s per link and per app, "+
		"`MKGRAPH_CACHE_TTL=0s` except for (d) (default TTL), every other setting at its default (e.g. `MKGRAPH_UPSTREAM_MAX_IN_FLIGHT` 64, `MKGRAPH_UPSTREAM_CONCURRENCY` 10). "+
		"Every query selects all fields (`allFields` of `server_bench_test.go`), with the link ids as variables (one query text per scenario, as a real client sends it). (a)–(c) read a fresh `mk_sandbox_copy_<n>` link per request (3 accounts each), so neither the cache nor the budgets are in the way; "+
		"(d) reads the seed link (1 account), (e) `mk_sandbox_large` (500 accounts), with the cache off. "+
		"(f) and (g) run three facades sharing one Redis (`MKGRAPH_REDIS_URL`, the redis-server of `make test` on loopback), the n-th request going to facade n mod 3, with the cache on: (f) re-reads the seed link, (g) reads a fresh link per request, so every read misses both cache levels and goes through Redis (GET, lock, upstream call, SET, unlock); their CPU is the three facades' together and their RSS the largest.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), loadCPUModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		clients, duration, maxRequests, loadSandboxLatency, loadBudget)
	fmt.Fprintf(&b, "**The load generator, the sandbox and the facade share the same %d CPUs**, so every figure includes their contention (machine load average, 1/5/15 min, before → after: %s → %s).\n\n",
		runtime.NumCPU(), loadBefore, loadAfter)

	b.WriteString("| scenario | req/s | p50 | p90 | p99 | errors | upstream identity calls / request | facade peak RSS (VmHWM) | CPU / request: facade · sandbox · generator |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		f := r.facade
		fmt.Fprintf(&b, "| (%s) %s | %.0f | %s | %s | %s | %d | %.3f (%d calls / %d requests) | %.1f MiB | %s · %s · %s |\n",
			r.shape.key, r.shape.title, f.rps(), loadMS(f.p(50)), loadMS(f.p(90)), loadMS(f.p(99)), f.errs,
			f.callsPerReq(clients), f.identityCalls, f.requests+clients, float64(f.peakRSSKiB)/1024,
			loadMS(f.perReq(f.cpuFacade)), loadMS(f.perReq(f.cpuSandbox)), loadMS(f.perReq(f.cpuGenerator)))
	}
	b.WriteString("\nThe same shapes sent directly to the sandbox in the same run, with the equivalent REST calls (`GET /links/{id}/identity` with `X-Client-Id`/`X-Client-Secret`; ")
	b.WriteString("for (b) 10 concurrent GETs per request, for (c) one GET):\n\n")
	b.WriteString("| scenario | direct req/s | direct p50 | direct p99 | facade / direct, p50 | facade / direct, req/s | facade − direct, p50 · p99 |\n|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		d, f := r.direct, r.facade
		fmt.Fprintf(&b, "| (%s) | %.0f | %s | %s | %.2f | %.2f | %s · %s |\n", r.shape.key, d.rps(), loadMS(d.p(50)), loadMS(d.p(99)),
			float64(f.p(50))/float64(max(d.p(50), 1)), f.rps()/max(d.rps(), 1e-9), loadSignedMS(f.p(50)-d.p(50)), loadSignedMS(f.p(99)-d.p(99)))
	}

	byKey := map[string]result{}
	peakRSS, replicasRSS, errorsTotal := 0, 0, 0
	for _, r := range results {
		byKey[r.shape.key] = r
		if r.shape.replicas > 1 {
			replicasRSS = max(replicasRSS, r.facade.peakRSSKiB)
		} else {
			peakRSS = max(peakRSS, r.facade.peakRSSKiB)
		}
		errorsTotal += r.facade.errs + r.direct.errs
	}
	a, d, e := byKey["a"], byKey["d"], byKey["e"]
	overP50, overP99 := a.facade.p(50)-a.direct.p(50), a.facade.p(99)-a.direct.p(99)
	perAccount := func(r result) time.Duration {
		return r.facade.perReq(r.facade.cpuFacade) / time.Duration(r.shape.accounts*len(r.shape.ids(0)))
	}
	b.WriteString("\n| target | measured | verdict |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| (a) facade overhead at p50 ≤ 1 ms over the upstream's 20 ms | %s (facade %s − direct %s) | %s |\n",
		loadSignedMS(overP50), loadMS(a.facade.p(50)), loadMS(a.direct.p(50)), verdict(overP50 <= loadTargetOverheadP50))
	fmt.Fprintf(&b, "| (a) facade overhead at p99 ≤ 5 ms | %s (facade %s − direct %s) | %s |\n",
		loadSignedMS(overP99), loadMS(a.facade.p(99)), loadMS(a.direct.p(99)), verdict(overP99 <= loadTargetOverheadP99))
	fmt.Fprintf(&b, "| (d) ≥ 5,000 requests/s from the cache | %.0f requests/s | %s |\n", d.facade.rps(), verdict(d.facade.rps() >= loadTargetCachedRPS))
	fmt.Fprintf(&b, "| (d) no upstream call after the first (the test fails above 1 in all) | %d identity call(s) for %d requests | %s |\n",
		d.facade.identityCalls, d.facade.requests+clients, verdict(d.facade.identityCalls <= loadMaxCachedCalls))
	fmt.Fprintf(&b, "| facade RSS < 100 MiB, (a)–(e) | peak %.1f MiB (largest VmHWM of the five facades) | %s |\n",
		float64(peakRSS)/1024, verdict(peakRSS < loadTargetRSSMiB*1024))
	if f, ok := byKey["f"]; ok {
		fmt.Fprintf(&b, "| (f) three replicas sharing Redis: one upstream call in all | %d identity call(s) for %d requests | %s |\n",
			f.facade.identityCalls, f.facade.requests+clients, verdict(f.facade.identityCalls <= loadMaxCachedCalls))
		fmt.Fprintf(&b, "| (f), (g) replica RSS (not a target: in (g) each replica's cache fills with the run's fresh links, up to the soft memory limit) | peak %.1f MiB | — |\n",
			float64(replicasRSS)/1024)
	}
	fmt.Fprintf(&b, "| cost linear with accounts per link: facade CPU per account, (e) ≤ (a) | (a) %s / 3 accounts = %s per account; (e) %s / 500 = %s per account | %s |\n",
		loadMS(a.facade.perReq(a.facade.cpuFacade)), loadUS(perAccount(a)), loadMS(e.facade.perReq(e.facade.cpuFacade)), loadUS(perAccount(e)),
		verdict(perAccount(e) <= perAccount(a)))
	fmt.Fprintf(&b, "| no error answer (the test fails otherwise) | %d | %s |\n", errorsTotal, verdict(errorsTotal == 0))
	fmt.Fprintf(&b, "\nLatency is measured by the load generator from sending the request to reading the whole answer. "+
		"Upstream calls per request count the sandbox's identity calls over the run, including one untimed warm-up request per client (%d), so for (a) 1.000 means exactly one call per request. "+
		"CPU is user + system time from `/proc/<pid>/stat` over the timed run, divided by its requests (the generator's includes its checks: every answer's status and error field, every %dth decoded in full).\n",
		clients, loadCheckEvery)
	table := b.String()
	t.Logf("load figures:\n\n%s", table)
	if os.Getenv("LOAD_WRITE") == "1" {
		if err := writeMarked(loadDoc, loadBeginMark, loadEndMark, table); err != nil {
			t.Errorf("write %s: %v", loadDoc, err)
		} else {
			t.Logf("wrote the figures into %s", loadDoc)
		}
	}

	// The contract.
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
	started = time.Now()
	close(start)
	done.Wait()
	f.elapsed = time.Since(started)
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

// loadGraphQL sends one GraphQL request reading ids and checks the answer:
// status 200, data and no errors; in full (every alias's link id and
// account count) when full is set.
func loadGraphQL(c *http.Client, facadeURL string, ids []string, accounts int, full bool) error {
	res, err := c.Post(facadeURL+"/graphql", "application/json", bytes.NewReader(loadQuery(ids)))
	if err != nil {
		return fmt.Errorf("transport: %s", transportKind(err))
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return fmt.Errorf("transport: body %s", transportKind(err))
	}
	if res.StatusCode != http.StatusOK || bytes.Contains(body, []byte(`"errors":`)) || !bytes.HasPrefix(body, []byte(`{"data":{`)) {
		var a struct {
			Errors []struct {
				Extensions struct{ Code string } `json:"extensions"`
			} `json:"errors"`
		}
		json.Unmarshal(body, &a)
		codes := []string{}
		for _, e := range a.Errors {
			codes = append(codes, cmp.Or(e.Extensions.Code, "(no code)"))
		}
		return fmt.Errorf("HTTP %d, errors %v", res.StatusCode, codes)
	}
	if !full {
		return nil
	}
	var a struct {
		Data map[string]*struct {
			ID       string            `json:"id"`
			Accounts []json.RawMessage `json:"accounts"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return errors.New("answer not JSON")
	}
	if len(a.Data) != len(ids) {
		return fmt.Errorf("%d links in the answer, want %d", len(a.Data), len(ids))
	}
	for i, id := range ids {
		key := "link"
		if len(ids) > 1 {
			key = "l" + strconv.Itoa(i)
		}
		l := a.Data[key]
		switch {
		case l == nil:
			return fmt.Errorf("%s is null", key)
		case l.ID != id:
			return fmt.Errorf("%s: wrong link id", key)
		case len(l.Accounts) != accounts:
			return fmt.Errorf("%s: %d accounts, want %d", key, len(l.Accounts), accounts)
		}
	}
	return nil
}

// loadDirect is the REST equivalent: GET each id's identity from the
// sandbox with client headers, concurrently when there are several.
func loadDirect(c *http.Client, sandboxURL string, ids []string) error {
	get := func(id string) error {
		req, _ := http.NewRequest(http.MethodGet, sandboxURL+"/links/"+id+"/identity", nil)
		req.Header.Set("X-Client-Id", loadSandboxID)
		req.Header.Set("X-Client-Secret", loadSandboxKey)
		res, err := c.Do(req)
		if err != nil {
			return fmt.Errorf("direct transport: %s", transportKind(err))
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return fmt.Errorf("direct transport: body %s", transportKind(err))
		}
		if res.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"`+id+`"`)) {
			return fmt.Errorf("direct HTTP %d", res.StatusCode)
		}
		return nil
	}
	if len(ids) == 1 {
		return get(ids[0])
	}
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { errs[i] = get(id) })
	}
	wg.Wait()
	return errors.Join(errs...)
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

func loadCPUModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "model name"); ok {
			return strings.TrimSpace(strings.TrimLeft(v, " \t:"))
		}
	}
	return "unknown CPU"
}

func loadMS(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
}

func loadSignedMS(d time.Duration) string {
	s := loadMS(d)
	if d >= 0 {
		s = "+" + s
	}
	return s
}

func loadUS(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 1, 64) + " µs"
}
