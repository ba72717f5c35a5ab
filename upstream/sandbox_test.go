package upstream_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestSandboxEndToEnd(t *testing.T) {
	sb, srv := MustSandbox(t, sandbox.Options{})
	c := MustNewClient(t, srv.URL, upstream.Config{})

	fixtures := map[string]int{ // link id → number of accounts (0: at least one)
		sandbox.LinkSeed:          1,
		sandbox.LinkHousehold:     0,
		sandbox.LinkSparse:        0,
		sandbox.LinkInternational: 0,
		sandbox.LinkNovel:         0,
		sandbox.LinkLarge:         500,
	}
	failures := map[string]apierr.Error{ // link id → Status, Code, LinkErrorCode, RetryAfter
		sandbox.LinkUnauthorized: {Status: 401, Code: "link_error.unauthorized_access"},
		sandbox.LinkForbidden:    {Status: 403, Code: "link_error.forbidden_action"},
		sandbox.LinkDeleted:      {Status: 410, Code: "link_error.deleted"},
		sandbox.LinkBadState:     {Status: 422, Code: "link_error.bad_state", LinkErrorCode: "auth_expired"},
		sandbox.LinkRateLimited:  {Status: 429, Code: apierr.CodeRateLimitExceeded, RetryAfter: 30 * time.Second},
		sandbox.LinkServerError:  {Status: 500, Code: apierr.CodeUpstreamUnavailable},
		sandbox.LinkUnavailable:  {Status: 503, Code: apierr.CodeUpstreamUnavailable},
		"mk_sandbox_unknown":     {Status: 404, Code: "link_error.not_found"},
	}
	// Every link the sandbox knows is covered, with the status it documents.
	for _, l := range sandbox.Links() {
		if l.Fault {
			continue // TestSandboxFaultsEndToEnd
		}
		_, isFixture := fixtures[l.ID]
		f, isFailure := failures[l.ID]
		switch {
		case isFixture && l.Status != http.StatusOK, isFailure && l.Status != f.Status, !isFixture && !isFailure:
			t.Errorf("sandbox link %q (HTTP %d) is not covered by this test's tables", l.ID, l.Status)
		}
	}

	for id, wantAccounts := range fixtures {
		t.Run(id, func(t *testing.T) {
			got, err := c.GetIdentity(t.Context(), id)
			if err != nil {
				t.Fatalf("GetIdentity(ctx, %q): %v, want nil", id, err)
			}
			if got.Link.LinkID != id {
				t.Errorf("GetIdentity(ctx, %q).Link.LinkID = %q, want %q", id, got.Link.LinkID, id)
			}
			switch {
			case wantAccounts > 0 && len(got.Accounts) != wantAccounts:
				t.Errorf("GetIdentity(ctx, %q): %d accounts, want %d", id, len(got.Accounts), wantAccounts)
			case len(got.Accounts) == 0:
				t.Errorf("GetIdentity(ctx, %q): no accounts, want some", id)
			}
			seen := make(map[string]bool)
			for _, a := range got.Accounts {
				if seen[a.AccountID] {
					t.Errorf("GetIdentity(ctx, %q): account %q twice", id, a.AccountID)
				}
				seen[a.AccountID] = true
			}
		})
	}
	for id, want := range failures {
		t.Run(id, func(t *testing.T) {
			before := sb.IdentityCallsFor(id)
			got, err := c.GetIdentity(t.Context(), id)
			if err == nil {
				t.Fatalf("GetIdentity(ctx, %q) = %+v, nil; want error %s", id, got, want.Code)
			}
			e := MustAsError(t, err)
			gotFields := apierr.Error{Status: e.Status, Code: e.Code, LinkErrorCode: e.LinkErrorCode, RetryAfter: e.RetryAfter}
			if diff := cmp.Diff(want, gotFields); diff != "" {
				t.Errorf("GetIdentity(ctx, %q) error mismatch (-want +got):\n%s", id, diff)
			}
			if e.Message == "" {
				t.Errorf("GetIdentity(ctx, %q): empty Message", id)
			}
			wantCalls := 1 // refusals are not retried
			if want.Status == http.StatusServiceUnavailable {
				wantCalls = 1 + upstream.DefaultMaxRetries
			}
			if calls := sb.IdentityCallsFor(id) - before; calls != wantCalls {
				t.Errorf("GetIdentity(ctx, %q): %d identity calls, want %d", id, calls, wantCalls)
			}
		})
	}
	if got := sb.TokenCalls(); got != 1 {
		t.Errorf("TokenCalls() = %d, want 1 for the whole run", got)
	}
}

// TestSandboxFixtureValues spot-checks values that decoding could damage.
func TestSandboxFixtureValues(t *testing.T) {
	_, srv := MustSandbox(t, sandbox.Options{})
	c := MustNewClient(t, srv.URL, upstream.Config{})

	intl, err := c.GetIdentity(t.Context(), sandbox.LinkInternational)
	if err != nil {
		t.Fatalf("GetIdentity(ctx, %q): %v, want nil", sandbox.LinkInternational, err)
	}
	amounts := make(map[string]bool)
	for _, a := range intl.Accounts {
		if b := a.Balances; b != nil {
			for _, d := range []upstream.Decimal{b.Available, b.Current, b.Limit} {
				amounts[d.String()] = true
			}
		}
	}
	for _, want := range []string{"12345678901234567.89", "0.10"} {
		if !amounts[want] {
			t.Errorf("GetIdentity(ctx, %q): no amount %s among %v", sandbox.LinkInternational, want, amounts)
		}
	}

	sparse, err := c.GetIdentity(t.Context(), sandbox.LinkSparse)
	if err != nil {
		t.Fatalf("GetIdentity(ctx, %q): %v, want nil", sandbox.LinkSparse, err)
	}
	for name, p := range sparse.Link.Products {
		for _, ts := range []upstream.Timestamp{p.RefreshedAt, p.LastAttemptedAt} {
			if ts.Invalid || (ts.Valid() && ts.Time.Location() != time.UTC) {
				t.Errorf("GetIdentity(ctx, %q): products.%s timestamp %+v, want a UTC time or absent", sandbox.LinkSparse, name, ts)
			}
		}
	}
}

// TestSandboxExpiredToken: the sandbox's clock is ahead, so it refuses the
// client's cached token as expired; the client renews it and retries once.
func TestSandboxExpiredToken(t *testing.T) {
	sandboxClock := newFakeClock()
	sb, srv := MustSandbox(t, sandbox.Options{Now: sandboxClock.Now})
	c := MustNewClient(t, srv.URL, upstream.Config{})
	if _, err := c.GetIdentity(t.Context(), sandbox.LinkSeed); err != nil {
		t.Fatalf("GetIdentity(ctx, %q): %v, want nil", sandbox.LinkSeed, err)
	}
	sandboxClock.Advance(2 * time.Hour)
	sb.Reset()
	if _, err := c.GetIdentity(t.Context(), sandbox.LinkSeed); err != nil {
		t.Fatalf("GetIdentity(ctx, %q) with an expired token: %v, want nil after one renewal", sandbox.LinkSeed, err)
	}
	if gotIdentity, gotToken := sb.IdentityCalls(), sb.TokenCalls(); gotIdentity != 2 || gotToken != 1 {
		t.Errorf("after expiry: %d identity and %d token calls, want 2 and 1", gotIdentity, gotToken)
	}
}

// TestSandboxFaultsEndToEnd: every way the sandbox can misbehave becomes the
// right facade error, bounded by the per-attempt timeout, never a hang.
func TestSandboxFaultsEndToEnd(t *testing.T) {
	_, srv := MustSandbox(t, sandbox.Options{})
	want := map[string]apierr.Error{ // Status, Code, RetryAfter
		sandbox.LinkFault502:         {Status: 502, Code: apierr.CodeUpstreamUnavailable},
		sandbox.LinkFault504:         {Status: 504, Code: apierr.CodeUpstreamUnavailable},
		sandbox.LinkFaultHTML:        {Status: 200, Code: apierr.CodeUpstreamBadResponse},
		sandbox.LinkFaultTruncated:   {Status: 200, Code: apierr.CodeUpstreamBadResponse},
		sandbox.LinkFaultOversized:   {Status: 200, Code: apierr.CodeUpstreamBadResponse},
		sandbox.LinkFaultDrip:        {Code: apierr.CodeUpstreamTimeout},
		sandbox.LinkFaultReset:       {Code: apierr.CodeUpstreamUnavailable},
		sandbox.LinkFaultHang:        {Code: apierr.CodeUpstreamTimeout},
		sandbox.LinkFaultSlow:        {Code: apierr.CodeUpstreamTimeout},
		sandbox.LinkRateLimitedDate:  {Status: 429, Code: apierr.CodeRateLimitExceeded, RetryAfter: 20 * time.Second},
		sandbox.LinkRateLimitedShort: {Status: 429, Code: apierr.CodeRateLimitExceeded, RetryAfter: time.Second},
	}
	for _, l := range sandbox.Links() {
		if _, ok := want[l.ID]; l.Fault && !ok {
			t.Errorf("sandbox fault %q is not covered by this test's table", l.ID)
		}
	}
	for id, w := range want {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			// A client per fault: failures of one must not open the
			// breaker for the others. The timeout is long enough to read
			// 8 MiB under the race detector, shorter than the slow 5 s.
			c := MustNewClient(t, srv.URL, upstream.Config{Timeout: 3 * time.Second, RetryBaseDelay: time.Millisecond})
			start := time.Now()
			_, err := c.GetIdentity(t.Context(), id)
			e := MustAsError(t, err)
			if e.Code != w.Code || e.Status != w.Status {
				t.Errorf("GetIdentity(ctx, %q) = %v (HTTP %d), want %s (HTTP %d)", id, e.Code, e.Status, w.Code, w.Status)
			}
			// The date is computed from the sandbox's clock: allow a second.
			if d := e.RetryAfter - w.RetryAfter; d < -time.Second || d > time.Second {
				t.Errorf("GetIdentity(ctx, %q) RetryAfter = %v, want %v", id, e.RetryAfter, w.RetryAfter)
			}
			if took := time.Since(start); took > 4*time.Second {
				t.Errorf("GetIdentity(ctx, %q) took %v: the per-attempt timeout did not bound it", id, took)
			}
		})
	}
}
