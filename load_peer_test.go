//go:build load

// The peer comparison of issue 12: the documents of ../shared/bench (copied
// to testdata/bench) over mk_bench links, the sandbox answering the
// workload's 3-account identity for every link id, at 0 ms (CPU-bound) and
// at 20 ms, with the facade's identity cache and budgets off, beside the
// REST floor (the sandbox called directly with the REST request behind (a))
// in the same run; then the same link re-read with the cache on, CPU-bound.
// With LOAD_TAILCALL=1, Tailcall (../shared/bench/tailcall, copied to a
// temporary folder and installed there with npm ci) answers (a)–(c) over the
// same sandbox in the same run. Each mkgraph scenario also runs on gqlgen's
// executor (MKGRAPH_EXECUTOR=gqlgen), so that the compiled plan's gain is
// measured in the same run; LOAD_GQLGEN=0 skips those runs. `make load`
// runs it after TestLoad; alone:
//
//	LOAD_DURATION=3s LOAD_TAILCALL=1 go test -tags load -run TestLoadPeer -count=1 -v .
package main

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

const (
	peerBeginMark = "<!-- load-peer:begin -->"
	peerEndMark   = "<!-- load-peer:end -->"
	peerSharedDir = "../shared/bench" // the workload, when this checkout sits beside it
	peerAccounts  = 3                 // accounts of every mk_bench link
)

// peerLatencies are the sandbox's answer delays: CPU-bound, then 20 ms.
var peerLatencies = []time.Duration{0, 20 * time.Millisecond}

// peerScenario is one document of the comparison.
type peerScenario struct {
	key, title string
	doc        string // mkgraph's document, testdata/bench/
	tailcall   string // Tailcall's, under its queries/
}

var peerScenarios = []peerScenario{
	{"a", "one link, all fields", peerDocA, "queries/a_single.graphql"},
	{"b", "10 distinct links", peerDocB, "queries/b_distinct10.graphql"},
	{"c", "10 aliases of one link", peerDocC, "queries/c_same10.graphql"},
}

// peerRun is one latency's runs: the floor, each gateway's scenarios and,
// CPU-bound only, the cached re-read.
type peerRun struct {
	latency  time.Duration
	floor    loadFigures
	mkgraph  map[string]loadFigures
	tailcall map[string]loadFigures // empty without LOAD_TAILCALL=1
	gqlgen   map[string]loadFigures // mkgraph with MKGRAPH_EXECUTOR=gqlgen; empty with LOAD_GQLGEN=0
	cached   *loadFigures
}

func TestLoadPeer(t *testing.T) {
	clients := envInt(t, "LOAD_CLIENTS", loadDefaultClients)
	duration := envDuration(t, "LOAD_DURATION", loadDefaultDuration)
	maxRequests := envInt(t, "LOAD_MAX_REQUESTS", loadDefaultMaxRequests)
	dir := t.TempDir()
	peerCheckCopies(t)

	// The in-process figures first, on a machine as quiet as it gets.
	quiet := waitQuiet(t)
	inProcess := peerInProcess(t)
	bin := buildBinary(t, dir)
	var tc *tailcallPeer
	if os.Getenv("LOAD_TAILCALL") == "1" {
		tc = prepareTailcall(t, cmp.Or(os.Getenv("LOAD_TAILCALL_DIR"), filepath.Join(peerSharedDir, "tailcall")))
	}
	client := loopbackClient(t, loadClientTimeout, 2*clients)
	var seq atomic.Int64
	loadBefore := loadAverage()
	var runs []peerRun
	for _, latency := range peerLatencies {
		r := peerRun{latency: latency, mkgraph: map[string]loadFigures{}, tailcall: map[string]loadFigures{}, gqlgen: map[string]loadFigures{}}
		sandboxAddr := freeAddr(t)
		sandboxURL := "http://" + sandboxAddr
		sbx := startProcess(t, dir, fmt.Sprintf("peer-sandbox-%s", latency), bin,
			[]string{"sandbox", "-addr", sandboxAddr, "-latency", latency.String()}, []string{"MKGRAPH_LOG_LEVEL=warn"})
		waitFor(t, sbx, sandboxURL+"/_sandbox/stats")
		measure := func(procs []*process, do func(n int64) error) loadFigures {
			waitQuietFor(t, min(quietPerRun, quietWait(t)))
			return loadMeasure(t, client, clients, duration, maxRequests, &seq, sandboxURL, sbx, procs, do)
		}

		// 1. The REST floor: (a)'s upstream call, directly.
		r.floor = measure(nil, func(int64) error { return loadDirect(client, sandboxURL, []string{sandbox.LinkBench}) })
		t.Logf("[%s] REST floor: %s", latency, peerLine(r.floor, clients))

		// 2. mkgraph, a fresh facade per scenario (its peak RSS is the scenario's).
		for _, s := range peerScenarios {
			body, aliases := peerBody(t, s.doc)
			facade, url := peerFacade(t, dir, bin, client, sandboxURL, fmt.Sprintf("%s-%s", s.key, latency), false)
			r.mkgraph[s.key] = measure([]*process{facade}, func(n int64) error { return peerPost(client, url, body, aliases, n%loadCheckEvery == 0) })
			facade.stop()
			t.Logf("[%s] mkgraph (%s) %s: %s", latency, s.key, s.title, peerLine(r.mkgraph[s.key], clients))
		}

		// 2b. The same on gqlgen's executor: the fast path's gain, in this run.
		if os.Getenv("LOAD_GQLGEN") != "0" {
			for _, s := range peerScenarios {
				body, aliases := peerBody(t, s.doc)
				facade, url := peerFacade(t, dir, bin, client, sandboxURL, fmt.Sprintf("%s-%s-gqlgen", s.key, latency), false, "MKGRAPH_EXECUTOR=gqlgen")
				r.gqlgen[s.key] = measure([]*process{facade}, func(n int64) error { return peerPost(client, url, body, aliases, n%loadCheckEvery == 0) })
				facade.stop()
				t.Logf("[%s] mkgraph on gqlgen's executor (%s) %s: %s", latency, s.key, s.title, peerLine(r.gqlgen[s.key], clients))
			}
		}

		// 3. Tailcall, one process per latency.
		if tc != nil {
			proc, url := tc.start(t, dir, sandboxURL, latency)
			for _, s := range peerScenarios {
				body, aliases := peerBody(t, filepath.Join(tc.dir, s.tailcall))
				r.tailcall[s.key] = measure([]*process{proc}, func(n int64) error { return peerPost(client, url, body, aliases, n%loadCheckEvery == 0) })
				t.Logf("[%s] Tailcall (%s) %s: %s", latency, s.key, s.title, peerLine(r.tailcall[s.key], clients))
			}
			proc.stop()
		}

		// 4. CPU-bound only: (a) with the identity cache on.
		if latency == 0 {
			body, aliases := peerBody(t, peerDocA)
			facade, url := peerFacade(t, dir, bin, client, sandboxURL, "cached", true)
			f := measure([]*process{facade}, func(n int64) error { return peerPost(client, url, body, aliases, n%loadCheckEvery == 0) })
			facade.stop()
			r.cached = &f
			t.Logf("[%s] mkgraph (a) cache on: %s", latency, peerLine(f, clients))
		}
		sbx.stop()
		runs = append(runs, r)
	}
	loadAfter := loadAverage()
	client.CloseIdleConnections()

	report := peerReport(runs, inProcess, tc, clients, duration, maxRequests, quiet, loadBefore, loadAfter)
	t.Logf("peer comparison:\n\n%s", report)
	if os.Getenv("LOAD_WRITE") == "1" {
		if err := writeMarked(loadDoc, peerBeginMark, peerEndMark, report); err != nil {
			t.Errorf("write %s: %v", loadDoc, err)
		} else {
			t.Logf("wrote the peer comparison into %s", loadDoc)
		}
	}

	// The contract: every request answered in full; the cache saves every call after the first.
	for _, r := range runs {
		all := map[string]loadFigures{"floor": r.floor}
		for k, f := range r.mkgraph {
			all["mkgraph "+k] = f
		}
		for k, f := range r.tailcall {
			all["Tailcall "+k] = f
		}
		for k, f := range r.gqlgen {
			all["mkgraph gqlgen "+k] = f
		}
		if r.cached != nil {
			all["mkgraph cached"] = *r.cached
		}
		for name, f := range all {
			if f.requests == 0 {
				t.Errorf("[%s] %s: no request was answered", r.latency, name)
			}
			if f.errs > 0 {
				t.Errorf("[%s] %s: %d error answers: %v", r.latency, name, f.errs, f.errKinds)
			}
		}
		if r.cached != nil && r.cached.identityCalls > loadMaxCachedCalls {
			t.Errorf("cached (a) cost %d upstream identity calls, want at most %d", r.cached.identityCalls, loadMaxCachedCalls)
		}
	}
}

// peerFacade starts a facade over sandboxURL with the comparison's
// settings, identity budgets off and the cache off unless cache, and makes
// its first upstream call (its token) on a link no scenario reads.
func peerFacade(t *testing.T, dir, bin string, c *http.Client, sandboxURL, name string, cache bool, extraEnv ...string) (*process, string) {
	t.Helper()
	addr := freeAddr(t)
	env := []string{
		"MKGRAPH_ADDR=" + addr,
		"MONEYKIT_BASE_URL=" + sandboxURL,
		"MONEYKIT_CLIENT_ID=" + sandboxClientID,
		"MONEYKIT_CLIENT_SECRET=" + sandboxClientSecret,
		"MKGRAPH_LOG_LEVEL=warn",
		"MKGRAPH_AUTH=none",
		"MKGRAPH_USER_RATE_LIMIT=0",
		"MKGRAPH_BACKEND_RATE_LIMIT=0",
		"MKGRAPH_IDENTITY_BUDGET_PER_LINK=0",
		"MKGRAPH_IDENTITY_BUDGET_PER_APP=0",
	}
	if !cache {
		env = append(env, "MKGRAPH_CACHE_TTL=0s")
	}
	env = append(env, extraEnv...)
	p := startProcess(t, dir, "peer-facade-"+name, bin, nil, env)
	url := "http://" + addr + "/graphql"
	waitFor(t, p, "http://"+addr+"/readyz")
	warm := sandbox.LinkBenchPrefix + "_warmup"
	body := []byte(`{"query":"{ link(id: \"` + warm + `\") { id accounts { id } } }"}`)
	if err := peerPost(c, url, body, map[string]string{"link": warm}, true); err != nil {
		t.Fatalf("facade %s: warm-up request: %v", name, err)
	}
	return p, url
}

// peerPost sends one peer document and checks the answer: status 200,
// data and no errors, in full (every alias's link id and account count)
// when full is set. It
// sends the sandbox's client headers, which Tailcall forwards to the
// upstream (mkgraph, with MKGRAPH_AUTH=none, ignores them).
func peerPost(c *http.Client, url string, body []byte, aliases map[string]string, full bool) error {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Client-Id", sandboxClientID)
	req.Header.Set("X-Client-Secret", sandboxClientSecret)
	res, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("transport: %s", transportKind(err))
	}
	got, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return fmt.Errorf("transport: body %s", transportKind(err))
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", res.StatusCode)
	}
	if full {
		return peerCheck(got, aliases, peerAccounts)
	}
	if bytes.Contains(got, []byte(`"errors":`)) || !bytes.HasPrefix(got, []byte(`{"data":{`)) {
		return peerCheck(got, aliases, peerAccounts) // names the errors
	}
	return nil
}

// peerCheckCopies fails when the documents in testdata/bench differ from
// those of ../shared/bench, when that folder is there.
func peerCheckCopies(t *testing.T) {
	t.Helper()
	for _, s := range peerScenarios {
		shared, err := os.ReadFile(filepath.Join(peerSharedDir, filepath.Base(s.doc)))
		if os.IsNotExist(err) {
			t.Logf("%s not found: the copies in testdata/bench are not checked", peerSharedDir)
			return
		}
		own, err2 := os.ReadFile(s.doc)
		if err != nil || err2 != nil || !bytes.Equal(shared, own) {
			t.Fatalf("%s differs from its copy in %s (%v, %v): copy it again", s.doc, peerSharedDir, err, err2)
		}
	}
}

// peerLine is one run's figures for the log.
func peerLine(f loadFigures, clients int) string {
	return fmt.Sprintf("%.0f req/s, p50 %s, p99 %s, %d errors, %.3f upstream calls/request, peak RSS %.1f MiB, other processes %.0f%% of the CPU",
		f.rps(), loadMS(f.p(50)), loadMS(f.p(99)), f.errs, f.callsPerReq(clients), float64(f.peakRSSKiB)/1024, 100*f.others())
}
