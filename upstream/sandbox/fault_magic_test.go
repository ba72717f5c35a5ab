package sandbox_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

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
