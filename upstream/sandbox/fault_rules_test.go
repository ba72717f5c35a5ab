package sandbox_test

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestFaultTimes(t *testing.T) {
	s, base := start(t, sandbox.Options{})
	c := newClient(t, 0, true)
	s.SetFault(sandbox.LinkSeed, sandbox.Fault{Status: 500}, 2)
	steps := []struct {
		method string
		header http.Header
		want   int
	}{
		{http.MethodGet, nil, 401}, // refused calls do not use up the fault
		{http.MethodPost, clientHeaders(), 405},
		{http.MethodGet, clientHeaders(), 500},
		{http.MethodGet, clientHeaders(), 500},
		{http.MethodGet, clientHeaders(), 200},
		{http.MethodGet, clientHeaders(), 200},
	}
	for i, st := range steps {
		req, err := http.NewRequestWithContext(t.Context(), st.method, identityURL(base, sandbox.LinkSeed, ""), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = st.header
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != st.want {
			t.Errorf("call %d (%s): status %d, want %d", i+1, st.method, res.StatusCode, st.want)
		}
	}
	if s.FaultsServed() != 2 || s.IdentityCalls() != len(steps) {
		t.Errorf("FaultsServed() = %d, IdentityCalls() = %d; want 2 and %d", s.FaultsServed(), s.IdentityCalls(), len(steps))
	}

	// Without times, until cleared.
	s.SetFault(sandbox.LinkSeed, sandbox.Fault{Status: 503}, 0)
	for range 3 {
		if res, _ := mustFetch(t, c, base, sandbox.LinkSeed, clientHeaders()); res.StatusCode != 503 {
			t.Errorf("status %d, want 503 until cleared", res.StatusCode)
		}
	}
	s.SetFault(sandbox.LinkSeed, sandbox.Fault{}, 0)
	if res, _ := mustFetch(t, c, base, sandbox.LinkSeed, clientHeaders()); res.StatusCode != 200 {
		t.Errorf("status %d after SetFault(Fault{}), want 200", res.StatusCode)
	}
}

func TestFaultPrecedence(t *testing.T) {
	s, base := start(t, sandbox.Options{})
	c := newClient(t, 0, true)
	s.SetRandomFaults(1, []sandbox.RandomFault{{Fault: sandbox.Fault{Status: 503}, Rate: 1}})
	s.SetFault(sandbox.LinkHousehold, sandbox.Fault{Status: 502}, 0)
	s.SetFault(sandbox.LinkFault504, sandbox.Fault{Status: 500}, 1)
	s.SetFault(sandbox.LinkSparse, sandbox.Fault{Hang: true}, 0)
	steps := []struct {
		link   string
		header http.Header
		want   int
	}{
		{sandbox.LinkSeed, clientHeaders(), 503},      // random rule
		{sandbox.LinkHousehold, clientHeaders(), 502}, // per-link beats random
		{sandbox.LinkFault502, clientHeaders(), 502},  // built-in beats random
		{sandbox.LinkFault504, clientHeaders(), 500},  // per-link beats built-in...
		{sandbox.LinkFault504, clientHeaders(), 504},  // ...for its one time
		{sandbox.LinkSparse, nil, 401},                // faults come after the credential check
		{sandbox.LinkFaultHang, nil, 401},
		{sandbox.LinkSeed, bearer("nope"), 401},
	}
	for i, st := range steps {
		res, body := mustFetch(t, c, base, st.link, st.header)
		if res.StatusCode != st.want {
			t.Errorf("call %d (%s): status %d, want %d; body %.100s", i+1, st.link, res.StatusCode, st.want, body)
		}
	}
	if got := s.FaultsServed(); got != 5 {
		t.Errorf("FaultsServed() = %d, want 5", got)
	}
}

// outcome names the kind of answer of one identity call.
func outcome(res *http.Response) string {
	return fmt.Sprintf("%d %s", res.StatusCode, res.Header.Get("Content-Type"))
}

// randomRun makes n identity calls for LinkSeed under rules seeded with seed
// and returns their outcomes in order, and FaultsServed.
func randomRun(t *testing.T, seed uint64, rules []sandbox.RandomFault, n int) ([]string, int) {
	t.Helper()
	s, base := start(t, sandbox.Options{})
	c := newClient(t, 0, true)
	s.SetRandomFaults(seed, rules)
	outcomes := make([]string, n)
	for i := range outcomes {
		res, _ := mustFetch(t, c, base, sandbox.LinkSeed, clientHeaders())
		outcomes[i] = outcome(res)
	}
	return outcomes, s.FaultsServed()
}

func TestRandomFaults(t *testing.T) {
	t.Parallel() // seconds of calls, as TestMagicFaultLinks
	const calls = 2000
	rules := []sandbox.RandomFault{
		{Fault: sandbox.Fault{Status: 500}, Rate: 0.10},
		{Fault: sandbox.Fault{HTML: true}, Rate: 0.05},
		{Fault: sandbox.Fault{Status: 503}, Rate: 0.20},
	}
	wantRates := map[string]float64{
		"500 application/json": 0.10,
		"200 text/html":        0.05,
		"503 text/html":        0.20,
		"200 application/json": 0.65,
	}
	first, served := randomRun(t, 42, rules, calls)
	counts := map[string]int{}
	for _, o := range first {
		counts[o]++
	}
	for o, p := range wantRates {
		// Four standard deviations of a binomial count.
		tolerance := 4 * math.Sqrt(calls*p*(1-p))
		if got := float64(counts[o]); math.Abs(got-calls*p) > tolerance {
			t.Errorf("%d of %d calls answered %q, want %.0f ± %.0f", counts[o], calls, o, calls*p, tolerance)
		}
	}
	if len(counts) != len(wantRates) {
		t.Errorf("outcomes %v, want only %v", counts, wantRates)
	}
	if want := calls - counts["200 application/json"]; served != want {
		t.Errorf("FaultsServed() = %d, want %d", served, want)
	}

	again, _ := randomRun(t, 42, rules, calls)
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("same seed, different outcomes (-first +second):\n%s", diff)
	}
	other, _ := randomRun(t, 43, rules, 200)
	if cmp.Equal(first[:200], other) {
		t.Error("seeds 42 and 43 gave the same 200 outcomes")
	}
}

func TestRandomFaultsClear(t *testing.T) {
	s, base := start(t, sandbox.Options{})
	c := newClient(t, 0, true)
	s.SetRandomFaults(7, []sandbox.RandomFault{{Fault: sandbox.Fault{Status: 500}, Rate: 1}})
	if res, _ := mustFetch(t, c, base, sandbox.LinkSeed, clientHeaders()); res.StatusCode != 500 {
		t.Errorf("status %d under a rule of rate 1, want 500", res.StatusCode)
	}
	s.SetRandomFaults(7, nil)
	for range 20 {
		if res, _ := mustFetch(t, c, base, sandbox.LinkSeed, clientHeaders()); res.StatusCode != 200 {
			t.Fatalf("status %d after SetRandomFaults(nil), want 200", res.StatusCode)
		}
	}
	// A zero Fault behaves, and is not counted as served.
	s.SetRandomFaults(7, []sandbox.RandomFault{{Rate: 1}})
	if res, _ := mustFetch(t, c, base, sandbox.LinkSeed, clientHeaders()); res.StatusCode != 200 || s.FaultsServed() != 1 {
		t.Errorf("status %d, FaultsServed() = %d under a zero fault; want 200 and 1", res.StatusCode, s.FaultsServed())
	}
}

func TestExpireTokensAfter(t *testing.T) {
	s, base := start(t, sandbox.Options{})
	c := newClient(t, 0, true)
	s.ExpireTokensAfter(2)
	old := mustToken(t, base)
	steps := []struct {
		name   string
		header http.Header
		want   int
		code   string
	}{
		{"first call", bearer(old), 200, ""},
		{"second call", bearer(old), 200, ""},
		{"third call", bearer(old), 401, "api_error.auth.expired_access_token"},
		{"fourth call", bearer(old), 401, "api_error.auth.expired_access_token"},
		{"client headers", clientHeaders(), 200, ""},
		{"client headers again", clientHeaders(), 200, ""},
		{"client headers a third time", clientHeaders(), 200, ""},
	}
	for _, st := range steps {
		res, body := mustFetch(t, c, base, sandbox.LinkSeed, st.header)
		if st.want != 200 {
			checkError(t, res, body, st.want, st.code)
		} else if res.StatusCode != st.want {
			t.Errorf("%s: status %d, want %d", st.name, res.StatusCode, st.want)
		}
	}
	fresh := mustToken(t, base)
	for i := range 2 {
		if res, body := mustFetch(t, c, base, sandbox.LinkSeed, bearer(fresh)); res.StatusCode != 200 {
			t.Errorf("fresh token, call %d: status %d, body %s", i+1, res.StatusCode, body)
		}
	}
	res, body := mustFetch(t, c, base, sandbox.LinkSeed, bearer(fresh))
	checkError(t, res, body, 401, "api_error.auth.expired_access_token")

	s.ExpireTokensAfter(0)
	if res, _ := mustFetch(t, c, base, sandbox.LinkSeed, bearer(old)); res.StatusCode != 200 {
		t.Errorf("status %d after ExpireTokensAfter(0), want 200", res.StatusCode)
	}
	if got := s.FaultsServed(); got != 0 {
		t.Errorf("FaultsServed() = %d, want 0: expiry is not a fault", got)
	}
}

func TestClearFaultsAndReset(t *testing.T) {
	s, base := start(t, sandbox.Options{})
	c := newClient(t, 0, true)
	token := mustToken(t, base)
	s.SetFault(sandbox.LinkSeed, sandbox.Fault{Status: 500}, 0)
	s.SetRandomFaults(1, []sandbox.RandomFault{{Fault: sandbox.Fault{Status: 503}, Rate: 1}})
	s.ExpireTokensAfter(1)

	status := func(link string, header http.Header) int {
		t.Helper()
		res, _ := mustFetch(t, c, base, link, header)
		return res.StatusCode
	}
	if got := []int{status(sandbox.LinkSeed, clientHeaders()), status(sandbox.LinkHousehold, bearer(token)), status(sandbox.LinkHousehold, bearer(token))}; !cmp.Equal(got, []int{500, 503, 401}) {
		t.Errorf("statuses %v with faults set, want [500 503 401]", got)
	}
	if got := s.FaultsServed(); got != 2 {
		t.Errorf("FaultsServed() = %d, want 2", got)
	}

	s.Reset()
	if got := s.FaultsServed(); got != 0 {
		t.Errorf("FaultsServed() = %d after Reset, want 0", got)
	}
	if got := status(sandbox.LinkSeed, clientHeaders()); got != 500 || s.FaultsServed() != 1 {
		t.Errorf("status %d, FaultsServed() = %d after Reset; want the fault kept: 500 and 1", got, s.FaultsServed())
	}

	s.ClearFaults()
	for _, l := range []string{sandbox.LinkSeed, sandbox.LinkHousehold} {
		for range 2 {
			if got := status(l, bearer(token)); got != 200 {
				t.Errorf("%s: status %d after ClearFaults, want 200", l, got)
			}
		}
	}
	if got := status(sandbox.LinkFault502, clientHeaders()); got != 502 {
		t.Errorf("magic fault id: status %d after ClearFaults, want 502", got)
	}
	if got := s.FaultsServed(); got != 2 {
		t.Errorf("FaultsServed() = %d, want 2: ClearFaults keeps the count", got)
	}
}

func TestFaultsConcurrentUse(t *testing.T) {
	// Straight through ServeHTTP, as TestConcurrentUse; faults that answer.
	s := sandbox.New(sandbox.Options{})
	faults := []sandbox.Fault{
		{Status: 500}, {Status: 429, RetryAfter: "1"}, {HTML: true}, {Truncate: true},
		{Oversize: 8 << 10}, {Drip: time.Microsecond}, {Latency: time.Millisecond},
	}
	var ids []string
	for i := range 8 {
		ids = append(ids, sandbox.LinkCopyPrefix+strconv.Itoa(i))
	}
	ids = append(ids, sandbox.LinkFault502, sandbox.LinkFaultHTML, sandbox.LinkFaultTruncated, sandbox.LinkRateLimitedDate)
	const workers, calls = 8, 40
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				id := ids[(w+i)%len(ids)]
				switch i % 8 {
				case 0:
					s.SetFault(id, faults[(w+i)%len(faults)], i%3)
				case 1:
					s.SetRandomFaults(uint64(w), []sandbox.RandomFault{{Fault: faults[i%len(faults)], Rate: 0.5}})
				case 2:
					s.ExpireTokensAfter(i % 4)
				case 3:
					s.FaultsServed()
				case 5:
					if w == 0 {
						s.ClearFaults()
						s.Reset()
					}
				}
				req := httptest.NewRequest(http.MethodGet, identityURL("", id, ""), nil)
				req.Header = clientHeaders()
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, req)
				if rec.Code == 0 || rec.Body.Len() == 0 {
					t.Errorf("%s: status %d with %d bytes", id, rec.Code, rec.Body.Len())
				}
			}
		})
	}
	wg.Wait()
	if s.IdentityCalls() > workers*calls {
		t.Errorf("IdentityCalls() = %d, want at most %d", s.IdentityCalls(), workers*calls)
	}
}
