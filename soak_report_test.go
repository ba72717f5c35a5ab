//go:build soak

package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var goroutineTotal = regexp.MustCompile(`^goroutine profile: total (\d+)\n`)

// goroutineCount is the facade's goroutine profile, summarized.
type goroutineCount struct {
	total int
	// idleConns are the goroutines of the facade's pooled keep-alive
	// connections to the upstream (net/http's persistConn read and write
	// loops, two per connection): bounded by the pool, not a leak, though
	// they count in total.
	idleConns int
	groups    string // the five largest groups, for a report
}

// goroutines reads the facade's goroutine profile from pprof (debug=1: a
// "goroutine profile: total N" line, then groups of identical stacks, each
// "count @ pcs" and "#" frame lines, separated by blank lines).
func goroutines(t *testing.T, adminURL string) goroutineCount {
	t.Helper()
	body := getBody(t, adminURL+"/debug/pprof/goroutine?debug=1")
	m := goroutineTotal.FindSubmatch(body)
	if m == nil {
		t.Fatalf("goroutine profile: no total in %.80q", body)
	}
	var c goroutineCount
	c.total, _ = strconv.Atoi(string(m[1]))
	var groups []string
	for _, g := range strings.Split(string(body[len(m[0]):]), "\n\n") {
		lines := strings.Split(strings.TrimSpace(g), "\n")
		count, _, ok := strings.Cut(lines[0], " @")
		n, err := strconv.Atoi(count)
		if !ok || err != nil {
			continue
		}
		var frames []string
		for _, l := range lines[1:] {
			if f := strings.Fields(l); len(f) >= 3 && f[0] == "#" {
				frames = append(frames, f[2])
			}
		}
		if slices.ContainsFunc(frames, func(f string) bool { return strings.HasPrefix(f, "net/http.(*persistConn).") }) {
			c.idleConns += n
		}
		if len(groups) < 5 {
			groups = append(groups, fmt.Sprintf("  %d × %s", n, strings.Join(frames[:min(len(frames), 3)], " ← ")))
		}
	}
	c.groups = strings.Join(groups, "\n")
	return c
}

// figures are the soak's results.
type figures struct {
	rps                                     int
	duration                                time.Duration
	load                                    loadResult
	goBefore, goAfter                       goroutineCount
	rssBefore, rssAfter                     int
	loadBefore, loadAfter                   string
	identityCalls, tokenCalls, faultsServed int
	causes                                  []string
}

func (f figures) correctShare() float64 {
	return float64(f.load.correct) / float64(max(f.load.sent, 1))
}

func (f figures) callsPerRequest() float64 {
	return float64(f.identityCalls) / float64(max(f.load.sent, 1))
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

func latencyRow(name string, ds []time.Duration) string {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	if len(ds) == 0 {
		return fmt.Sprintf("| latency, %s | — (none) | |\n", name)
	}
	return fmt.Sprintf("| latency, %s (%d) | p50 %s · p90 %s · p99 %s · max %s | |\n", name, len(ds),
		ms(percentile(ds, 50)), ms(percentile(ds, 90)), ms(percentile(ds, 99)), ms(ds[len(ds)-1]))
}

// markdown renders the figures as the table docs/resilience.md carries.
func (f figures) markdown() string {
	r := f.load
	var b strings.Builder
	pct := func(n int) string { return fmt.Sprintf("%.2f%%", 100*float64(n)/float64(max(r.sent, 1))) }
	fmt.Fprintf(&b, "Run of %s: %d requests/s for %s, faults `%s` (seed %s), upstream timeout %s, request timeout %s, %d distinct links.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), f.rps, f.duration, soakFaults, soakSeed, soakUpstreamTimeout, soakRequestTimeout, soakDistinctLinks)
	b.WriteString("| figure | measured | target |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| GraphQL requests sent | %d (%.1f/s over %.1f s; %d dropped at the %d in-flight cap; at most %d in flight) | %d/s |\n",
		r.sent, float64(r.sent)/r.sendSpan.Seconds(), r.sendSpan.Seconds(), r.dropped, soakMaxInFlight, r.maxInFlight, f.rps)
	fmt.Fprintf(&b, "| answered correctly (data, or `facade.upstream_unavailable` / `facade.upstream_timeout`) | **%s** (%d) | ≥ 99%% (%s) |\n",
		pct(r.correct), r.correct, verdict(f.correctShare() >= soakMinCorrect))
	fmt.Fprintf(&b, "| answered with the link's data | %s (%d) | |\n", pct(r.kinds[kindData]), r.kinds[kindData])
	kinds := make([]string, 0, len(r.kinds))
	for k := range r.kinds {
		if k != kindData {
			kinds = append(kinds, k)
		}
	}
	slices.SortFunc(kinds, func(a, b string) int { return cmp.Or(cmp.Compare(r.kinds[b], r.kinds[a]), cmp.Compare(a, b)) })
	for _, k := range kinds {
		verdict := "incorrect"
		if correctCodes[strings.TrimPrefix(k, "error ")] {
			verdict = "correct"
		}
		fmt.Fprintf(&b, "| answered `%s` (%s) | %s (%d) | |\n", k, verdict, pct(r.kinds[k]), r.kinds[k])
	}
	b.WriteString(latencyRow("all answers", r.latencies))
	b.WriteString(latencyRow("data answers", r.dataLatencies))
	b.WriteString(latencyRow("error answers", r.errLatencies))
	cpr := f.callsPerRequest()
	fmt.Fprintf(&b, "| upstream identity calls per GraphQL request | **%.3f** (%d calls) | ≤ %.1f (%s; the test fails above %.1f) |\n",
		cpr, f.identityCalls, soakTargetCalls, verdict(cpr <= soakTargetCalls), soakMaxCalls)
	fmt.Fprintf(&b, "| upstream faults served (503 or hang) | %d (%.1f%% of identity calls) | |\n",
		f.faultsServed, 100*float64(f.faultsServed)/float64(max(f.identityCalls, 1)))
	fmt.Fprintf(&b, "| upstream token calls during the load | %d | |\n", f.tokenCalls)
	fmt.Fprintf(&b, "| facade goroutines before → after (%s after the last answer) | %d → %d | ≤ before + %d (%s) |\n",
		soakSettle, f.goBefore.total, f.goAfter.total, soakMaxGoroutineRise, verdict(f.goAfter.total <= f.goBefore.total+soakMaxGoroutineRise))
	fmt.Fprintf(&b, "| of which pooled upstream keep-alive connections (2 goroutines each) | %d → %d | |\n", f.goBefore.idleConns, f.goAfter.idleConns)
	fmt.Fprintf(&b, "| facade RSS before → after | %.1f MiB → %.1f MiB | |\n", float64(f.rssBefore)/1024, float64(f.rssAfter)/1024)
	fmt.Fprintf(&b, "| machine load average (1, 5, 15 min) before → after | %s → %s | (2 vCPU) |\n", f.loadBefore, f.loadAfter)
	if len(f.causes) > 0 {
		b.WriteString("\nCauses the facade logged for its `facade.upstream_*` answers (warn level, `request failed`):\n\n")
		b.WriteString("| count | code | cause | logged, seconds into the load |\n|---|---|---|---|\n")
		for _, c := range f.causes {
			b.WriteString(c + "\n")
		}
	}
	return b.String()
}

var digits = regexp.MustCompile(`[0-9]+(\.[0-9]+)?(ms|µs|s)?`)

// facadeCauses tallies the facade log's "request failed" lines by code and
// cause (numbers and addresses folded), as Markdown rows, largest first,
// with the span of seconds into the load (from start) they were logged in.
func facadeCauses(logPath string, start time.Time) []string {
	file, err := os.Open(logPath)
	if err != nil {
		return nil
	}
	defer file.Close()
	counts := map[[2]string]int{}
	first, last := map[[2]string]float64{}, map[[2]string]float64{}
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Message string    `json:"message"`
			Code    string    `json:"code"`
			Error   string    `json:"error"`
			Time    time.Time `json:"time"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Message != "request failed" {
			continue
		}
		cause := digits.ReplaceAllString(l.Error, "N")
		if len(cause) > 120 {
			cause = cause[:120] + "…"
		}
		k := [2]string{l.Code, cause}
		// The log's times are whole seconds: the span is to ±1 s.
		at := l.Time.Sub(start.Truncate(time.Second)).Seconds()
		if counts[k] == 0 || at < first[k] {
			first[k] = at
		}
		last[k] = max(last[k], at)
		counts[k]++
	}
	keys := make([][2]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int {
		return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	var rows []string
	for _, k := range keys[:min(len(keys), 8)] {
		rows = append(rows, fmt.Sprintf("| %d | `%s` | %s | %.0f–%.0f |", counts[k], k[0], strings.ReplaceAll(k[1], "|", `\|`), first[k], last[k]))
	}
	return rows
}

// logTally counts a JSON log's lines by level and message.
func logTally(logPath string) map[string]int {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return nil
	}
	out := map[string]int{}
	for l := range bytes.Lines(b) {
		var e struct{ Level, Message string }
		if json.Unmarshal(l, &e) != nil {
			out["(not JSON)"]++
			continue
		}
		out[e.Level+" "+e.Message]++
	}
	return out
}
