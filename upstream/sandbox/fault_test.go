package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// newClient returns an HTTP client with a transport of its own, whose idle
// connections are closed when the test ends. Without keep-alives every call
// has a new connection, so that net/http never retries a call on another
// one after a reset.
func newClient(t *testing.T, timeout time.Duration, keepAlives bool) *http.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = !keepAlives
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

// fetch calls GET /links/{linkID}/identity with c and returns the response
// with its body read, or the error.
func fetch(ctx context.Context, c *http.Client, base, linkID string, header http.Header) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, identityURL(base, linkID, ""), nil)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res, body, err
}

// mustFetch is fetch that fails the test on an error.
func mustFetch(t *testing.T, c *http.Client, base, linkID string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	res, body, err := fetch(t.Context(), c, base, linkID, header)
	if err != nil {
		t.Fatalf("GET identity %q: %v", linkID, err)
	}
	return res, body
}

// realAnswer returns linkID's answer without its fault: a fault set with
// SetFault beats a magic id's, and one of a nanosecond's latency behaves.
func realAnswer(t *testing.T, s *sandbox.Server, c *http.Client, base, linkID string) []byte {
	t.Helper()
	s.SetFault(linkID, sandbox.Fault{Latency: time.Nanosecond}, 1)
	res, body := mustFetch(t, c, base, linkID, clientHeaders())
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET identity %q without its fault: status %d, body %.200s", linkID, res.StatusCode, body)
	}
	return body
}

// checkHTML checks an HTML answer.
func checkHTML(t *testing.T, res *http.Response, body []byte, wantStatus int, wantText string) {
	t.Helper()
	if res.StatusCode != wantStatus || res.Header.Get("Content-Type") != "text/html" ||
		!bytes.Contains(body, []byte("<html")) || !bytes.Contains(body, []byte(wantText)) {
		t.Errorf("status %d, Content-Type %q, body %q; want %d text/html with %q", res.StatusCode, res.Header.Get("Content-Type"), body, wantStatus, wantText)
	}
}

// checkJSON200 checks the status and content type of a 200 JSON answer.
func checkJSON200(t *testing.T, res *http.Response) {
	t.Helper()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("status %d, Content-Type %q, want 200 application/json", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

// checkOversized checks that body is at least size bytes of valid JSON: real
// with a padding string first in its link object. It looks for the padding
// rather than decode it: decoding 16 MiB takes seconds under the race detector.
func checkOversized(t *testing.T, body, real []byte, size int) {
	t.Helper()
	if len(body) < size {
		t.Errorf("body is %d bytes, want at least %d", len(body), size)
	}
	const field = `"link":{"sandbox_padding":"`
	i := bytes.Index(body, []byte(field))
	if i < 0 {
		t.Fatalf("body %.200q… has no link.sandbox_padding first in link", body)
	}
	start := i + len(field)
	n := bytes.IndexByte(body[start:], '"')
	if n < 0 || bytes.Count(body[start:start+n], []byte("x")) != n {
		t.Fatalf("link.sandbox_padding is not a string of x")
	}
	if n < size-len(real)-100 {
		t.Errorf("link.sandbox_padding is %d bytes, want about %d", n, size-len(real))
	}
	end := start + n + 1 // past the closing quote
	if body[end] == ',' {
		end++
	}
	rest := append(append(bytes.Clone(body[:i]), `"link":{`...), body[end:]...)
	var got, want identityResponse
	mustDecode(t, rest, &got, true)
	mustDecode(t, real, &want, true)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("oversized answer without its padding mismatch (-want +got):\n%s", diff)
	}
}

// checkNoAnswer checks that a call failed with a reset or a closed connection.
func checkNoAnswer(t *testing.T, res *http.Response, err error) {
	t.Helper()
	if res != nil || !(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		t.Errorf("response %v, error %v; want no response and a reset or EOF", res, err)
	}
}

// checkTimeout checks that a call failed with its client's timeout.
func checkTimeout(t *testing.T, res *http.Response, err error) {
	t.Helper()
	var ue *url.Error
	if res != nil || !errors.As(err, &ue) || !ue.Timeout() {
		t.Errorf("response %v, error %v; want no response and a client timeout", res, err)
	}
}

func TestFaultAnswers(t *testing.T) {
	const retryDate = "Wed, 21 Oct 2015 07:28:00 GMT"
	tests := []struct {
		name  string
		link  string // default LinkSeed
		fault sandbox.Fault
		// check checks the faulty answer; real is the answer without the fault.
		check func(t *testing.T, res *http.Response, body, real []byte, took time.Duration)
	}{
		{"status 500", "", sandbox.Fault{Status: 500}, func(t *testing.T, res *http.Response, body, _ []byte, _ time.Duration) {
			checkError(t, res, body, 500, "api_error.internal")
		}},
		{"status 502", "", sandbox.Fault{Status: 502}, func(t *testing.T, res *http.Response, body, _ []byte, _ time.Duration) {
			checkHTML(t, res, body, 502, "Bad Gateway")
		}},
		{"status 503", "", sandbox.Fault{Status: 503}, func(t *testing.T, res *http.Response, body, _ []byte, _ time.Duration) {
			checkHTML(t, res, body, 503, "Service Unavailable")
		}},
		{"status 504", "", sandbox.Fault{Status: 504}, func(t *testing.T, res *http.Response, body, _ []byte, _ time.Duration) {
			checkHTML(t, res, body, 504, "Gateway Timeout")
		}},
		{"status 429", "", sandbox.Fault{Status: 429}, func(t *testing.T, res *http.Response, body, _ []byte, _ time.Duration) {
			checkError(t, res, body, 429, "api_error.rate_limit_exceeded")
			if got := res.Header.Get("Retry-After"); got != "30" {
				t.Errorf("Retry-After = %q, want 30", got)
			}
		}},
		{"status 429 retry after seconds", "", sandbox.Fault{Status: 429, RetryAfter: "2"}, func(t *testing.T, res *http.Response, body, _ []byte, _ time.Duration) {
			checkError(t, res, body, 429, "api_error.rate_limit_exceeded")
			if got := res.Header.Get("Retry-After"); got != "2" {
				t.Errorf("Retry-After = %q, want 2", got)
			}
		}},
		{"status 429 retry after date", "", sandbox.Fault{Status: 429, RetryAfter: retryDate}, func(t *testing.T, res *http.Response, body, _ []byte, _ time.Duration) {
			checkError(t, res, body, 429, "api_error.rate_limit_exceeded")
			if got := res.Header.Get("Retry-After"); got != retryDate {
				t.Errorf("Retry-After = %q, want %q", got, retryDate)
			}
		}},
		{"other status", "", sandbox.Fault{Status: 418}, func(t *testing.T, res *http.Response, body, _ []byte, _ time.Duration) {
			checkError(t, res, body, 418, "api_error.internal")
		}},
		{"html", "", sandbox.Fault{HTML: true}, func(t *testing.T, res *http.Response, body, _ []byte, _ time.Duration) {
			checkHTML(t, res, body, 200, "<form")
		}},
		{"truncate", "", sandbox.Fault{Truncate: true}, func(t *testing.T, res *http.Response, body, real []byte, _ time.Duration) {
			checkJSON200(t, res)
			if want := real[:len(real)/2]; !bytes.Equal(body, want) || json.Valid(body) {
				t.Errorf("body %q, want the first half of the answer, %q", body, want)
			}
		}},
		{"truncate an error", sandbox.LinkDeleted, sandbox.Fault{Truncate: true}, func(t *testing.T, res *http.Response, body, real []byte, _ time.Duration) {
			if want := real[:len(real)/2]; res.StatusCode != http.StatusGone || !bytes.Equal(body, want) {
				t.Errorf("status %d, body %q; want 410 and %q", res.StatusCode, body, want)
			}
		}},
		{"oversize", "", sandbox.Fault{Oversize: 64 << 10}, func(t *testing.T, res *http.Response, body, real []byte, _ time.Duration) {
			checkJSON200(t, res)
			checkOversized(t, body, real, 64<<10)
		}},
		{"oversize an error", sandbox.LinkDeleted, sandbox.Fault{Oversize: 1000}, func(t *testing.T, res *http.Response, body, _ []byte, _ time.Duration) {
			var e apiError
			mustDecode(t, body, &e, false)
			if res.StatusCode != http.StatusGone || e.ErrorCode != "link_error.deleted" || len(body) < 1000 || !strings.Contains(string(body), `"sandbox_padding":"xxx`) {
				t.Errorf("status %d, body %q; want 410 link_error.deleted padded to 1000 bytes", res.StatusCode, body)
			}
		}},
		{"oversize below the answer's size", "", sandbox.Fault{Oversize: 10}, func(t *testing.T, res *http.Response, body, real []byte, _ time.Duration) {
			checkJSON200(t, res)
			checkOversized(t, body, real, len(real))
		}},
		{"oversize then truncate", "", sandbox.Fault{Oversize: 10_000, Truncate: true}, func(t *testing.T, res *http.Response, body, _ []byte, _ time.Duration) {
			checkJSON200(t, res)
			if len(body) != 5000 || json.Valid(body) {
				t.Errorf("body of %d bytes, valid %t; want 5000 invalid", len(body), json.Valid(body))
			}
		}},
		{"latency", "", sandbox.Fault{Latency: 50 * time.Millisecond}, func(t *testing.T, res *http.Response, body, real []byte, took time.Duration) {
			if res.StatusCode != http.StatusOK || !bytes.Equal(body, real) || took < 50*time.Millisecond {
				t.Errorf("status %d after %v, want 200 with the real answer after 50ms", res.StatusCode, took)
			}
		}},
		{"latency then status", "", sandbox.Fault{Latency: 30 * time.Millisecond, Status: 503}, func(t *testing.T, res *http.Response, body, _ []byte, took time.Duration) {
			checkHTML(t, res, body, 503, "Service Unavailable")
			if took < 30*time.Millisecond {
				t.Errorf("answered after %v, want 30ms", took)
			}
		}},
		{"drip a status", "", sandbox.Fault{Status: 500, Drip: time.Millisecond}, func(t *testing.T, res *http.Response, body, _ []byte, _ time.Duration) {
			checkError(t, res, body, 500, "api_error.internal")
			if res.ContentLength != int64(len(body)) {
				t.Errorf("Content-Length %d, body %d bytes", res.ContentLength, len(body))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			link := tt.link
			if link == "" {
				link = sandbox.LinkSeed
			}
			s, base := start(t, sandbox.Options{})
			c := newClient(t, 0, true)
			_, real := mustFetch(t, c, base, link, clientHeaders())

			s.SetFault(link, tt.fault, 0)
			begin := time.Now()
			res, body := mustFetch(t, c, base, link, clientHeaders())
			tt.check(t, res, body, real, time.Since(begin))
			if s.FaultsServed() != 1 || s.IdentityCallsFor(link) != 2 {
				t.Errorf("FaultsServed() = %d, IdentityCallsFor(%q) = %d; want 1 and 2", s.FaultsServed(), link, s.IdentityCallsFor(link))
			}
		})
	}
}

func TestFaultNoAnswer(t *testing.T) {
	tests := []struct {
		name    string
		fault   sandbox.Fault
		timeout time.Duration
		check   func(t *testing.T, res *http.Response, err error, took time.Duration)
	}{
		{"reset", sandbox.Fault{Reset: true}, 0, func(t *testing.T, res *http.Response, err error, _ time.Duration) {
			checkNoAnswer(t, res, err)
		}},
		{"latency then reset", sandbox.Fault{Latency: 20 * time.Millisecond, Reset: true}, 0, func(t *testing.T, res *http.Response, err error, took time.Duration) {
			checkNoAnswer(t, res, err)
			if took < 20*time.Millisecond {
				t.Errorf("reset after %v, want 20ms", took)
			}
		}},
		{"hang", sandbox.Fault{Hang: true}, 100 * time.Millisecond, func(t *testing.T, res *http.Response, err error, took time.Duration) {
			checkTimeout(t, res, err)
			if took < 100*time.Millisecond {
				t.Errorf("gave up after %v, want 100ms", took)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, base := start(t, sandbox.Options{})
			c := newClient(t, tt.timeout, false)
			s.SetFault(sandbox.LinkSeed, tt.fault, 0)
			begin := time.Now()
			res, _, err := fetch(t.Context(), c, base, sandbox.LinkSeed, clientHeaders())
			tt.check(t, res, err, time.Since(begin))
			// A loaded machine may take the hang's 100 ms before the call is in.
			if s.FaultsServed() > 1 || s.IdentityCallsFor(sandbox.LinkSeed) > 1 || tt.timeout == 0 && s.FaultsServed() != 1 {
				t.Errorf("FaultsServed() = %d, IdentityCallsFor(seed) = %d; want 1 and 1", s.FaultsServed(), s.IdentityCallsFor(sandbox.LinkSeed))
			}
		})
	}
}

// TestFaultCancelled checks that a fault that holds the call ends when the
// client cancels it: no handler outlives its request.
func TestFaultCancelled(t *testing.T) {
	tests := []struct {
		name  string
		fault sandbox.Fault
		body  bool // the answer starts: cancel once its first bytes are in
	}{
		{"hang", sandbox.Fault{Hang: true}, false},
		{"latency", sandbox.Fault{Latency: time.Hour}, false},
		{"drip", sandbox.Fault{Drip: time.Hour}, true},
		{"latency then drip", sandbox.Fault{Latency: time.Millisecond, Drip: time.Hour}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sandbox.New(sandbox.Options{})
			s.SetFault(sandbox.LinkSeed, tt.fault, 0)
			returned := make(chan struct{}, 1)
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s.ServeHTTP(w, r)
				returned <- struct{}{}
			}))
			t.Cleanup(ts.Close)
			c := newClient(t, 0, false)

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, identityURL(ts.URL, sandbox.LinkSeed, ""), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = clientHeaders()
			errc := make(chan error, 1)
			go func() {
				res, err := c.Do(req)
				if err == nil {
					defer res.Body.Close()
					if !tt.body || res.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d, want no answer", res.StatusCode)
					} else if _, err = io.ReadFull(res.Body, make([]byte, 16)); err == nil {
						cancel() // the first chunk is in; the next is an hour away
						_, err = io.ReadAll(res.Body)
					}
				}
				errc <- err
			}()
			if !tt.body {
				for deadline := time.Now().Add(5 * time.Second); s.IdentityCalls() == 0 && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
				time.Sleep(20 * time.Millisecond) // held, not merely slow to start
				cancel()
			}
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Errorf("call: %v, want context.Canceled", err)
			}
			select {
			case <-returned:
			case <-time.After(5 * time.Second):
				t.Fatal("handler still running 5s after the call was cancelled")
			}
			if s.FaultsServed() != 1 {
				t.Errorf("FaultsServed() = %d, want 1", s.FaultsServed())
			}
		})
	}
}

// readChunks reads body to its end or to n bytes, and returns how many
// reads that took.
func readChunks(t *testing.T, body io.Reader, n int) (data []byte, reads int) {
	t.Helper()
	buf := make([]byte, 4096)
	for len(data) < n {
		k, err := body.Read(buf[:min(len(buf), n-len(data))])
		if k > 0 {
			data = append(data, buf[:k]...)
			reads++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading after %d bytes: %v", len(data), err)
		}
	}
	return data, reads
}

func TestFaultDrip(t *testing.T) {
	const pause = 5 * time.Millisecond
	s, base := start(t, sandbox.Options{})
	c := newClient(t, 0, true)
	_, real := mustFetch(t, c, base, sandbox.LinkSparse, clientHeaders())
	s.SetFault(sandbox.LinkSparse, sandbox.Fault{Drip: pause}, 0)

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, identityURL(base, sandbox.LinkSparse, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = clientHeaders()
	begin := time.Now()
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	checkJSON200(t, res)
	if res.ContentLength != int64(len(real)) {
		t.Errorf("Content-Length = %d, want %d", res.ContentLength, len(real))
	}
	body, reads := readChunks(t, res.Body, math.MaxInt)
	took := time.Since(begin)
	if !bytes.Equal(body, real) {
		t.Errorf("dripped body %q, want %q", body, real)
	}
	// About one read a chunk; far fewer only if this test was held up.
	chunks := (len(real) + 15) / 16
	if reads < 3 || took < time.Duration(chunks-1)*pause {
		t.Errorf("%d bytes in %d reads over %v, want about %d reads over at least %v", len(body), reads, took, chunks, time.Duration(chunks-1)*pause)
	}
}

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

func TestMagicFaultLinks(t *testing.T) {
	t.Parallel() // LinkFaultSlow takes 5 s
	now := time.Date(2024, 3, 9, 16, 30, 0, 0, time.UTC)
	s, base := start(t, sandbox.Options{Now: func() time.Time { return now }})
	tests := []struct {
		id      string
		timeout time.Duration
		check   func(t *testing.T, c *http.Client, id string)
	}{
		{sandbox.LinkFault502, 0, func(t *testing.T, c *http.Client, id string) {
			res, body := mustFetch(t, c, base, id, clientHeaders())
			checkHTML(t, res, body, 502, "Bad Gateway")
		}},
		{sandbox.LinkFault504, 0, func(t *testing.T, c *http.Client, id string) {
			res, body := mustFetch(t, c, base, id, clientHeaders())
			checkHTML(t, res, body, 504, "Gateway Timeout")
		}},
		{sandbox.LinkFaultHTML, 0, func(t *testing.T, c *http.Client, id string) {
			res, body := mustFetch(t, c, base, id, clientHeaders())
			checkHTML(t, res, body, 200, "<form")
		}},
		{sandbox.LinkFaultTruncated, 0, func(t *testing.T, c *http.Client, id string) {
			real := realAnswer(t, s, c, base, id)
			res, body := mustFetch(t, c, base, id, clientHeaders())
			checkJSON200(t, res)
			if !bytes.Equal(body, real[:len(real)/2]) {
				t.Errorf("body %q, want the first half of %q", body, real)
			}
		}},
		{sandbox.LinkFaultOversized, 0, func(t *testing.T, c *http.Client, id string) {
			real := realAnswer(t, s, c, base, id)
			res, body := mustFetch(t, c, base, id, clientHeaders())
			checkJSON200(t, res)
			checkOversized(t, body, real, 16<<20)
		}},
		{sandbox.LinkFaultDrip, 0, func(t *testing.T, c *http.Client, id string) {
			real := realAnswer(t, s, c, base, id)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, identityURL(base, id, ""), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = clientHeaders()
			begin := time.Now()
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			checkJSON200(t, res)
			if res.ContentLength != int64(len(real)) {
				t.Errorf("Content-Length = %d, want %d", res.ContentLength, len(real))
			}
			// Three chunks are enough to see the pace of the whole answer.
			pause := 30 * time.Second / time.Duration((len(real)+15)/16)
			data, _ := readChunks(t, res.Body, 48)
			if took := time.Since(begin); !bytes.Equal(data, real[:48]) || took < 2*pause {
				t.Errorf("first 48 bytes %q after %v; want %q after at least %v", data, took, real[:48], 2*pause)
			}
		}},
		{sandbox.LinkFaultReset, 0, func(t *testing.T, c *http.Client, id string) {
			res, _, err := fetch(t.Context(), c, base, id, clientHeaders())
			checkNoAnswer(t, res, err)
		}},
		{sandbox.LinkFaultHang, 100 * time.Millisecond, func(t *testing.T, c *http.Client, id string) {
			res, _, err := fetch(t.Context(), c, base, id, clientHeaders())
			checkTimeout(t, res, err)
		}},
		{sandbox.LinkFaultSlow, 0, func(t *testing.T, c *http.Client, id string) {
			real := realAnswer(t, s, c, base, id)
			begin := time.Now()
			res, body := mustFetch(t, c, base, id, clientHeaders())
			if took := time.Since(begin); res.StatusCode != 200 || !bytes.Equal(body, real) || took < 5*time.Second {
				t.Errorf("status %d after %v, want 200 with the real answer after 5s", res.StatusCode, took)
			}
		}},
		{sandbox.LinkRateLimitedDate, 0, func(t *testing.T, c *http.Client, id string) {
			res, body := mustFetch(t, c, base, id, clientHeaders())
			checkError(t, res, body, 429, "api_error.rate_limit_exceeded")
			if got, want := res.Header.Get("Retry-After"), now.Add(20*time.Second).Format(http.TimeFormat); got != want {
				t.Errorf("Retry-After = %q, want %q", got, want)
			}
		}},
		{sandbox.LinkRateLimitedShort, 0, func(t *testing.T, c *http.Client, id string) {
			res, body := mustFetch(t, c, base, id, clientHeaders())
			checkError(t, res, body, 429, "api_error.rate_limit_exceeded")
			if got := res.Header.Get("Retry-After"); got != "1" {
				t.Errorf("Retry-After = %q, want 1", got)
			}
		}},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.id] = true
		t.Run(tt.id, func(t *testing.T) {
			// LinkFaultSlow takes 5 s: the others run meanwhile.
			t.Parallel()
			tt.check(t, newClient(t, tt.timeout, false), tt.id)
			want := 1
			if tt.id == sandbox.LinkFaultTruncated || tt.id == sandbox.LinkFaultOversized || tt.id == sandbox.LinkFaultDrip || tt.id == sandbox.LinkFaultSlow {
				want = 2 // realAnswer's call too
			}
			got := s.IdentityCallsFor(tt.id)
			if tt.id == sandbox.LinkFaultHang && got == 0 {
				got = 1 // a loaded machine may take the 100 ms before the call is in
			}
			if got != want {
				t.Errorf("IdentityCallsFor(%q) = %d, want %d", tt.id, got, want)
			}
		})
	}
	for _, l := range sandbox.Links() {
		if l.Fault && !covered[l.ID] {
			t.Errorf("magic fault id %q (status %d) is not covered by this test", l.ID, l.Status)
		}
	}
}

func TestResetWithoutHijack(t *testing.T) {
	s := sandbox.New(sandbox.Options{})
	s.SetFault(sandbox.LinkSeed, sandbox.Fault{Reset: true}, 0)
	req := httptest.NewRequest(http.MethodGet, identityURL("", sandbox.LinkSeed, ""), nil)
	req.Header = clientHeaders()
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("ServeHTTP with a ResponseRecorder panicked with %v, want http.ErrAbortHandler", v)
		}
	}()
	s.ServeHTTP(httptest.NewRecorder(), req)
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

func TestInvalidFaultStatusPanics(t *testing.T) {
	s := sandbox.New(sandbox.Options{})
	for name, set := range map[string]func(){
		"SetFault":        func() { s.SetFault(sandbox.LinkSeed, sandbox.Fault{Status: 99}, 0) },
		"SetRandomFaults": func() { s.SetRandomFaults(1, []sandbox.RandomFault{{Fault: sandbox.Fault{Status: 600}, Rate: 1}}) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("%s with an invalid status did not panic", name)
				}
			}()
			set()
		})
	}
}
