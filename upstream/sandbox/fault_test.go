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
	"strings"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

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
