//go:build load

package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/upstream"
)

// loadReport renders the run's figures as the Markdown docs/performance.md
// carries: the settings, the facade's figures per scenario, the same shapes
// sent directly, and the targets with their verdicts.
func loadReport(results []loadRun, clients int, duration time.Duration, maxRequests int, loadBefore, loadAfter string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Run of %s on %d vCPU (%s), %s, %s/%s. Settings: %d closed-loop clients (each sends its next request when the last is answered) over one shared `http.Client`, "+
		"%s per run (at most %d requests), sandbox (`mkgraph sandbox -latency %s`) and facade as separate processes of one binary on loopback, "+
		"a fresh facade per scenario with `MKGRAPH_AUTH=none`, `MKGRAPH_LOG_LEVEL=warn`, identity budgets raised to %s per link and per app, "+
		"`MKGRAPH_CACHE_TTL=0s` except for (d) (default TTL), every other setting at its default (e.g. `MKGRAPH_UPSTREAM_MAX_IN_FLIGHT` %d, `MKGRAPH_UPSTREAM_CONCURRENCY` %d). "+
		"Every query selects all fields (`allFields` of `server_bench_test.go`), with the link ids as variables (one query text per scenario, as a real client sends it). (a)–(c) read a fresh `mk_sandbox_copy_<n>` link per request (3 accounts each), so neither the cache nor the budgets are in the way; "+
		"(d) reads the seed link (1 account), (e) `mk_sandbox_large` (500 accounts), with the cache off. "+
		"(f) and (g) run three facades sharing one Redis (`MKGRAPH_REDIS_URL`, the redis-server of `make test` on loopback), the n-th request going to facade n mod 3, with the cache on: (f) re-reads the seed link, (g) reads a fresh link per request, so every read misses both cache levels and goes through Redis (GET, lock, upstream call, SET, unlock); their CPU is the three facades' together and their RSS the largest.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), loadCPUModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		clients, duration, maxRequests, loadSandboxLatency, loadBudget, upstream.DefaultMaxInFlight, loader.DefaultConcurrency)
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

	byKey := loadByKey(results)
	peakRSS, replicasRSS, errorsTotal := 0, 0, 0
	for _, r := range results {
		if r.shape.replicas > 1 {
			replicasRSS = max(replicasRSS, r.facade.peakRSSKiB)
		} else {
			peakRSS = max(peakRSS, r.facade.peakRSSKiB)
		}
		errorsTotal += r.facade.errs + r.direct.errs
	}
	a, d, e := byKey["a"], byKey["d"], byKey["e"]
	overP50, overP99 := a.facade.p(50)-a.direct.p(50), a.facade.p(99)-a.direct.p(99)
	perAccount := func(r loadRun) time.Duration {
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
	return b.String()
}

// loadByKey indexes the scenarios' runs by scenario key.
func loadByKey(results []loadRun) map[string]loadRun {
	byKey := map[string]loadRun{}
	for _, r := range results {
		byKey[r.shape.key] = r
	}
	return byKey
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
