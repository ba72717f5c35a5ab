//go:build load

package main

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The goals of issue 12, as ratios to the REST floor measured in the same run.
const (
	peerGoalCPUA       = 0.25  // CPU-bound (a) req/s ÷ floor
	peerGoalCPUB       = 0.025 // CPU-bound (b)
	peerGoalCPUC       = 0.16  // CPU-bound (c)
	peerGoalSlowA      = 0.95  // 20 ms (a)
	peerGoalSlowP50    = time.Millisecond
	peerGoalSlowP99    = 5 * time.Millisecond
	peerGoalSlowB      = 0.34 // 20 ms (b) ÷ floor
	peerGoalSlowC      = 0.75 // 20 ms (c) ÷ 20 ms (a)
	peerGoalAllocs     = 400  // the seed request in process
	peerGoalBytes      = 40 * 1000
	peerGoalRSSMiB     = 60
	peerGoalCached     = 0.6 // cache on, CPU-bound, ÷ floor
	peerGoalVsTailcall = 1.25
)

// peerBenchmarks are the in-process benchmarks the report quotes, with the
// accounts of the link each reads.
var peerBenchmarks = []struct {
	name     string
	accounts int
}{{"BenchmarkQuerySeedAllFields", 1}, {"BenchmarkQueryBenchAllFields", 3}, {"BenchmarkQueryLarge", 500}}

// benchFigure is one benchmark's per-operation cost.
type benchFigure struct{ ns, bytes, allocs float64 }

// peerInProcess runs the in-process benchmarks once (go test -bench in a
// child process, without the load tag) and returns their figures by name.
func peerInProcess(t *testing.T) map[string]benchFigure {
	t.Helper()
	names := make([]string, len(peerBenchmarks))
	for i, b := range peerBenchmarks {
		names[i] = b.name
	}
	cmd := exec.Command(cmp.Or(os.Getenv("GO"), "go"), "test", "-run", "^$", "-bench", "^("+strings.Join(names, "|")+")$", "-benchmem", "-count", "1", ".")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in-process benchmarks: %v\n%s", err, out)
	}
	figures := map[string]benchFigure{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		var b benchFigure
		for i := 2; i+1 < len(f); i += 2 {
			v, _ := strconv.ParseFloat(f[i], 64)
			switch f[i+1] {
			case "ns/op":
				b.ns = v
			case "B/op":
				b.bytes = v
			case "allocs/op":
				b.allocs = v
			}
		}
		figures[strings.TrimSuffix(f[0], fmt.Sprintf("-%d", runtime.GOMAXPROCS(0)))] = b
	}
	for _, b := range peerBenchmarks {
		if _, ok := figures[b.name]; !ok {
			t.Fatalf("in-process benchmarks: no figure for %s in\n%s", b.name, out)
		}
	}
	return figures
}

// peerReport renders the comparison as docs/performance.md carries it.
func peerReport(runs []peerRun, inProcess map[string]benchFigure, tc *tailcallPeer, clients int, duration time.Duration, maxRequests int, quiet float64, loadBefore, loadAfter string) string {
	var b strings.Builder
	peer := "Tailcall not run (`LOAD_TAILCALL=1` runs it)"
	if tc != nil {
		peer = fmt.Sprintf("Tailcall `%s`, `TAILCALL_DEDUPE=%s`", tc.version, tc.dedupe)
	}
	fmt.Fprintf(&b, "Run of %s on %d vCPU (%s), %s, %s/%s: **the load generator, the upstream (sandbox) and the gateway share these %d cores** "+
		"(other processes used %.0f%% of the machine's CPU in the second before the first run, the last column below shows their share during each run; load average, 1/5/15 min, before → after: %s → %s). %d closed-loop clients, %s per run (at most %d requests); "+
		"the sandbox (`mkgraph sandbox -latency 0s`, then `20ms`) answers `../shared/bench/identity-3-accounts.json` for every `mk_bench<n>` link (own account ids); "+
		"a fresh facade per mkgraph run with `MKGRAPH_CACHE_TTL=0s`, `MKGRAPH_IDENTITY_BUDGET_PER_LINK=0`, `MKGRAPH_IDENTITY_BUDGET_PER_APP=0`, `MKGRAPH_AUTH=none`, `MKGRAPH_LOG_LEVEL=warn`, "+
		"the documents of `testdata/bench/` (copies of `../shared/bench/`) as they are; the REST floor is `GET /links/mk_bench00/identity` straight to the sandbox (client headers) in the same run; "+
		"%s, one process per latency over the same sandbox, its documents `queries/*.graphql`, sent with the sandbox's `X-Client-Id`/`X-Client-Secret`, which it forwards. "+
		"\"cache on\" is (a) through a facade with the default identity cache, CPU-bound.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), loadCPUModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), 100*quiet, loadBefore, loadAfter, clients, duration, maxRequests, peer)

	cpu, slow := runs[0], runs[len(runs)-1]
	floorA := func(r peerRun) float64 { return max(r.floor.rps(), 1e-9) }
	rps := func(m map[string]loadFigures, k string) (float64, bool) {
		f, ok := m[k]
		return f.rps(), ok
	}
	vsTailcall := []string{}
	allAbove := tc != nil
	b.WriteString("| scenario | REST floor | Tailcall | mkgraph | mkgraph ÷ Tailcall | mkgraph ÷ floor | Tailcall ÷ floor |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range runs {
		cond := "CPU-bound (upstream 0 ms)"
		if r.latency > 0 {
			cond = "upstream " + peerLatency(r.latency)
		}
		for _, s := range peerScenarios {
			mk, _ := rps(r.mkgraph, s.key)
			floor, tcCell, ratioTC, tcFloor := "—", "—", "—", "—"
			if s.key == "a" {
				floor = fmt.Sprintf("%.0f", r.floor.rps())
				if r.latency > 0 {
					floor += " / " + loadMS(r.floor.p(50)) + " / " + loadMS(r.floor.p(99))
				}
			}
			mkCell := fmt.Sprintf("%.0f", mk)
			if s.key == "a" && r.latency > 0 {
				mkCell += " / " + loadMS(r.mkgraph["a"].p(50)) + " / " + loadMS(r.mkgraph["a"].p(99))
			}
			if t, ok := rps(r.tailcall, s.key); ok {
				tcCell = fmt.Sprintf("%.0f (%.2f calls)", t, r.tailcall[s.key].callsPerReq(clients))
				if s.key == "a" && r.latency > 0 {
					tcCell = fmt.Sprintf("%.0f / %s / %s", t, loadMS(r.tailcall["a"].p(50)), loadMS(r.tailcall["a"].p(99)))
				}
				ratio := mk / max(t, 1e-9)
				ratioTC = fmt.Sprintf("%.2f", ratio)
				tcFloor = fmt.Sprintf("%.3f", t/floorA(r))
				vsTailcall = append(vsTailcall, fmt.Sprintf("%s (%s) %.2f", peerLatency(r.latency), s.key, ratio))
				allAbove = allAbove && ratio >= peerGoalVsTailcall
			}
			what := "req/s"
			if s.key == "a" && r.latency > 0 {
				what = "req/s / p50 / p99"
			}
			fmt.Fprintf(&b, "| %s: (%s) %s, %s | %s | %s | %s (%.2f calls) | %s | %.3f | %s |\n",
				cond, s.key, s.title, what, floor, tcCell, mkCell, r.mkgraph[s.key].callsPerReq(clients), ratioTC, mk/floorA(r), tcFloor)
		}
	}
	if cpu.cached != nil {
		fmt.Fprintf(&b, "| CPU-bound: (a) with the identity cache on, req/s | %.0f | — | %.0f (%d calls in all) | — | %.3f | — |\n",
			cpu.floor.rps(), cpu.cached.rps(), cpu.cached.identityCalls, cpu.cached.rps()/floorA(cpu))
	}

	b.WriteString("\nEvery run (CPU per request is user + system time from `/proc/<pid>/stat` over the timed run; upstream calls count the sandbox's identity calls, one untimed warm-up request per client included; Tailcall's RSS is its process's peak over (a)–(c)):\n\n")
	b.WriteString("| upstream | run | req/s | p50 | p90 | p99 | errors | upstream calls / request | peak RSS | CPU / request: gateway · sandbox · generator | other processes' CPU |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
	row := func(r peerRun, name string, f loadFigures) {
		rss := "—"
		if f.peakRSSKiB > 0 {
			rss = fmt.Sprintf("%.1f MiB", float64(f.peakRSSKiB)/1024)
		}
		gw := "—"
		if f.cpuFacade > 0 || f.peakRSSKiB > 0 {
			gw = loadMS(f.perReq(f.cpuFacade))
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %s | %s | %d | %.3f | %s | %s · %s · %s | %.0f%% |\n", peerLatency(r.latency), name, f.rps(),
			loadMS(f.p(50)), loadMS(f.p(90)), loadMS(f.p(99)), f.errs, f.callsPerReq(clients), rss,
			gw, loadMS(f.perReq(f.cpuSandbox)), loadMS(f.perReq(f.cpuGenerator)), 100*f.others())
	}
	for _, r := range runs {
		row(r, "REST floor", r.floor)
		for _, s := range peerScenarios {
			row(r, "mkgraph ("+s.key+")", r.mkgraph[s.key])
		}
		for _, s := range peerScenarios {
			if f, ok := r.tailcall[s.key]; ok {
				row(r, "Tailcall ("+s.key+")", f)
			}
		}
		for _, s := range peerScenarios {
			if f, ok := r.gqlgen[s.key]; ok {
				row(r, "mkgraph ("+s.key+"), `MKGRAPH_EXECUTOR=gqlgen`", f)
			}
		}
		if r.cached != nil {
			row(r, "mkgraph (a), cache on", *r.cached)
		}
	}

	if len(cpu.gqlgen) > 0 {
		b.WriteString("\nThe compiled plan against gqlgen's executor (`MKGRAPH_EXECUTOR=gqlgen`), same facade build, same run:\n\n")
		b.WriteString("| upstream | scenario | plan req/s | gqlgen req/s | plan ÷ gqlgen | CPU / request: plan · gqlgen |\n|---|---|---:|---:|---:|---|\n")
		for _, r := range runs {
			for _, s := range peerScenarios {
				p, g := r.mkgraph[s.key], r.gqlgen[s.key]
				fmt.Fprintf(&b, "| %s | (%s) %s | %.0f | %.0f | %.2f | %s · %s |\n", peerLatency(r.latency), s.key, s.title,
					p.rps(), g.rps(), p.rps()/max(g.rps(), 1e-9), loadMS(p.perReq(p.cpuFacade)), loadMS(g.perReq(g.cpuFacade)))
			}
		}
	}

	b.WriteString("\nIn process (`go test -run '^$' -bench 'BenchmarkQuery(SeedAllFields|BenchAllFields|Large)$' -benchmem -count 1 .`, run by the load test before the load):\n\n")
	b.WriteString("| benchmark | accounts | time / request | bytes / request | allocations / request | bytes / account | allocations / account |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, bm := range peerBenchmarks {
		f := inProcess[bm.name]
		fmt.Fprintf(&b, "| `%s` | %d | %.0f µs | %.0f | %.0f | %.0f | %.1f |\n", bm.name, bm.accounts, f.ns/1e3, f.bytes, f.allocs,
			f.bytes/float64(bm.accounts), f.allocs/float64(bm.accounts))
	}

	seed, three, large := inProcess[peerBenchmarks[0].name], inProcess[peerBenchmarks[1].name], inProcess[peerBenchmarks[2].name]
	ratio := func(r peerRun, k string) float64 { return r.mkgraph[k].rps() / floorA(r) }
	slowA := slow.mkgraph["a"]
	overP50, overP99 := slowA.p(50)-slow.floor.p(50), slowA.p(99)-slow.floor.p(99)
	rssA := max(cpu.mkgraph["a"].peakRSSKiB, slowA.peakRSSKiB)
	tcRef := func(r peerRun, k string) string {
		if f, ok := r.tailcall[k]; ok {
			return fmt.Sprintf("; Tailcall %.3f", f.rps()/floorA(r))
		}
		return ""
	}
	b.WriteString("\n| goal (issue 12) | measured | verdict |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| CPU-bound (a) ≥ %.2f of the floor's req/s | %.3f%s | %s |\n", peerGoalCPUA, ratio(cpu, "a"), tcRef(cpu, "a"), verdict(ratio(cpu, "a") >= peerGoalCPUA))
	fmt.Fprintf(&b, "| CPU-bound (b) ≥ %.3f | %.3f%s | %s |\n", peerGoalCPUB, ratio(cpu, "b"), tcRef(cpu, "b"), verdict(ratio(cpu, "b") >= peerGoalCPUB))
	fmt.Fprintf(&b, "| CPU-bound (c) ≥ %.2f | %.3f%s | %s |\n", peerGoalCPUC, ratio(cpu, "c"), tcRef(cpu, "c"), verdict(ratio(cpu, "c") >= peerGoalCPUC))
	fmt.Fprintf(&b, "| upstream 20 ms: (a) ≥ %.2f of the floor's req/s | %.3f%s | %s |\n", peerGoalSlowA, ratio(slow, "a"), tcRef(slow, "a"), verdict(ratio(slow, "a") >= peerGoalSlowA))
	fmt.Fprintf(&b, "| upstream 20 ms: (a) p50 ≤ floor + 1 ms | %s (%s − %s) | %s |\n", loadSignedMS(overP50), loadMS(slowA.p(50)), loadMS(slow.floor.p(50)), verdict(overP50 <= peerGoalSlowP50))
	fmt.Fprintf(&b, "| upstream 20 ms: (a) p99 ≤ floor + 5 ms | %s (%s − %s) | %s |\n", loadSignedMS(overP99), loadMS(slowA.p(99)), loadMS(slow.floor.p(99)), verdict(overP99 <= peerGoalSlowP99))
	fmt.Fprintf(&b, "| upstream 20 ms: (b) ≥ %.2f of the floor | %.3f%s | %s |\n", peerGoalSlowB, ratio(slow, "b"), tcRef(slow, "b"), verdict(ratio(slow, "b") >= peerGoalSlowB))
	cOverA := slow.mkgraph["c"].rps() / max(slowA.rps(), 1e-9)
	fmt.Fprintf(&b, "| upstream 20 ms: (c) ≥ %.2f of (a)'s req/s | %.3f | %s |\n", peerGoalSlowC, cOverA, verdict(cOverA >= peerGoalSlowC))
	fmt.Fprintf(&b, "| the seed request in process ≤ %d allocations | %.0f | %s |\n", peerGoalAllocs, seed.allocs, verdict(seed.allocs <= peerGoalAllocs))
	fmt.Fprintf(&b, "| the seed request in process ≤ 40 KB | %.1f KB | %s |\n", seed.bytes/1000, verdict(seed.bytes <= peerGoalBytes))
	fmt.Fprintf(&b, "| cost linear in accounts: allocations per account, 500 accounts ≤ 3 accounts | %.1f (500) vs %.1f (3) | %s |\n",
		large.allocs/500, three.allocs/3, verdict(large.allocs/500 <= three.allocs/3))
	fmt.Fprintf(&b, "| peak RSS under (a) < %d MiB | %.1f MiB (larger VmHWM of the two (a) facades) | %s |\n", peerGoalRSSMiB, float64(rssA)/1024, verdict(rssA < peerGoalRSSMiB*1024))
	if cpu.cached != nil {
		c := cpu.cached.rps() / floorA(cpu)
		fmt.Fprintf(&b, "| cache on, the 3-account link re-read by %d clients, CPU-bound: ≥ %.1f of the floor | %.3f (%.0f req/s) | %s |\n", clients, peerGoalCached, c, cpu.cached.rps(), verdict(c >= peerGoalCached))
	}
	if tc != nil {
		fmt.Fprintf(&b, "| mkgraph ≥ %.2f× Tailcall's req/s, every scenario | %s | %s |\n", peerGoalVsTailcall, strings.Join(vsTailcall, ", "), verdict(allAbove))
	}
	return b.String()
}

// peerLatency is the upstream's delay as the report writes it: "0 ms", "20 ms".
func peerLatency(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
}
