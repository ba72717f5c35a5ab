package sandbox_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/testing/clocktest"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestRefreshRoute(t *testing.T) {
	tests := []struct {
		name, method, linkID, body string
		header                     http.Header // nil: client headers
		wantStatus                 int
		wantCode                   string // "" for a 202
	}{
		{"accepted", http.MethodPost, sandbox.LinkSeed, identityRefresh, nil, 202, ""},
		{"several products", http.MethodPost, sandbox.LinkHousehold, `{"products":["identity","accounts","identity"]}`, nil, 202, ""},
		{"copy link", http.MethodPost, sandbox.LinkCopyPrefix + "r1", identityRefresh, nil, 202, ""},
		{"fault link", http.MethodPost, sandbox.LinkFaultHang, identityRefresh, nil, 202, ""},
		{"unknown link", http.MethodPost, "mk_sandbox_unknown", identityRefresh, nil, 404, "link_error.not_found"},
		{"escaped slash stays one segment", http.MethodPost, sandbox.LinkSeed + "/x", identityRefresh, nil, 404, "link_error.not_found"},
		{"deleted link", http.MethodPost, sandbox.LinkDeleted, identityRefresh, nil, 410, "link_error.deleted"},
		{"bad state link", http.MethodPost, sandbox.LinkBadState, identityRefresh, nil, 422, "link_error.bad_state"},
		{"no credentials", http.MethodPost, sandbox.LinkSeed, identityRefresh, http.Header{}, 401, "api_error.auth.unauthorized"},
		{"wrong secret", http.MethodPost, sandbox.LinkSeed, identityRefresh, http.Header{"X-Client-Id": {sandbox.DefaultClientID}, "X-Client-Secret": {"no"}}, 401, "api_error.auth.unauthorized"},
		{"unknown token", http.MethodPost, sandbox.LinkSeed, identityRefresh, bearer("nope"), 401, "api_error.auth.unauthorized"},
		{"GET", http.MethodGet, sandbox.LinkSeed, "", nil, 405, "api_error.method_not_allowed"},
		{"empty body", http.MethodPost, sandbox.LinkSeed, "", nil, 400, "api_error.bad_request"},
		{"null", http.MethodPost, sandbox.LinkSeed, "null", nil, 400, "api_error.bad_request"},
		{"array", http.MethodPost, sandbox.LinkSeed, `["identity"]`, nil, 400, "api_error.bad_request"},
		{"no products", http.MethodPost, sandbox.LinkSeed, `{}`, nil, 400, "api_error.bad_request"},
		{"empty products", http.MethodPost, sandbox.LinkSeed, `{"products":[]}`, nil, 400, "api_error.bad_request"},
		{"products a string", http.MethodPost, sandbox.LinkSeed, `{"products":"identity"}`, nil, 400, "api_error.bad_request"},
		{"unknown product", http.MethodPost, sandbox.LinkSeed, `{"products":["identity","liabilities"]}`, nil, 400, "api_error.bad_request"},
		{"trailing data", http.MethodPost, sandbox.LinkSeed, identityRefresh + ` {}`, nil, 400, "api_error.bad_request"},
		{"truncated", http.MethodPost, sandbox.LinkSeed, `{"products":["identity"`, nil, 400, "api_error.bad_request"},
		{"too large", http.MethodPost, sandbox.LinkSeed, `{"products":["identity"],"pad":"` + strings.Repeat("x", 70<<10) + `"}`, nil, 400, "api_error.bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := clocktest.New(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
			s, base := startClosing(t, sandbox.Options{Now: clock.Now, RefreshDelay: time.Hour})
			header := tt.header
			if header == nil {
				header = clientHeaders()
			}
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			res, b := do(t, tt.method, productsURL(base, tt.linkID), header, body)
			if s.RefreshCalls() != 1 || s.RefreshCallsFor(tt.linkID) != 1 {
				t.Errorf("RefreshCalls() = %d, RefreshCallsFor = %d; want 1 and 1", s.RefreshCalls(), s.RefreshCallsFor(tt.linkID))
			}
			if tt.wantCode != "" {
				checkError(t, res, b, tt.wantStatus, tt.wantCode)
				if tt.wantStatus == 405 && res.Header.Get("Allow") != http.MethodPost {
					t.Errorf("Allow = %q, want POST", res.Header.Get("Allow"))
				}
				return
			}
			if res.StatusCode != 202 || res.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d (%s), body %.300s; want 202 application/json", res.StatusCode, res.Header.Get("Content-Type"), b)
			}
			var l link
			mustDecode(t, b, &l, true) // the link object, with the reference's field names only
			if l.LinkID != tt.linkID {
				t.Errorf("link_id = %q, want %q", l.LinkID, tt.linkID)
			}
			p := l.Products["identity"]
			if p.LastAttemptedAt == nil || *p.LastAttemptedAt != "2024-05-01T12:00:00Z" {
				t.Errorf("products.identity.last_attempted_at = %v, want the time of the request", p.LastAttemptedAt)
			}
		})
	}
}

// TestRefreshRateLimit: a product of a link may be asked for once per
// RefreshInterval, from the last accepted request; Retry-After says when.
func TestRefreshRateLimit(t *testing.T) {
	clock := clocktest.New(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	_, base := startClosing(t, sandbox.Options{Now: clock.Now, RefreshDelay: time.Hour})

	steps := []struct {
		advance    time.Duration
		linkID     string
		body       string
		wantStatus int
		wantRetry  string
	}{
		{0, sandbox.LinkSeed, identityRefresh, 202, ""},
		{0, sandbox.LinkSeed, identityRefresh, 429, "30"},
		{0, sandbox.LinkSeed, `{"products":["accounts","identity"]}`, 429, "30"}, // one product too soon refuses all
		{0, sandbox.LinkSeed, `{"products":["accounts"]}`, 202, ""},              // each product has its own interval
		{0, sandbox.LinkHousehold, identityRefresh, 202, ""},                     // and each link
		{10 * time.Second, sandbox.LinkSeed, identityRefresh, 429, "20"},
		{19500 * time.Millisecond, sandbox.LinkSeed, identityRefresh, 429, "1"}, // rounded up, never early
		{500 * time.Millisecond, sandbox.LinkSeed, identityRefresh, 202, ""},
		{0, sandbox.LinkSeed, identityRefresh, 429, "30"},
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		res, b := postRefresh(t, base, st.linkID, st.body)
		if st.wantStatus == 429 {
			checkError(t, res, b, 429, "api_error.rate_limit_exceeded")
		} else if res.StatusCode != st.wantStatus {
			t.Errorf("step %d: status %d, body %.200s; want %d", i, res.StatusCode, b, st.wantStatus)
		}
		if got := res.Header.Get("Retry-After"); got != st.wantRetry {
			t.Errorf("step %d (%s %s): Retry-After %q, want %q", i, st.linkID, st.body, got, st.wantRetry)
		}
	}
}

func TestRefreshIntervalOptions(t *testing.T) {
	tests := []struct {
		interval   time.Duration
		wantSecond int
		wantRetry  string
	}{
		{-1, 202, ""},
		{5 * time.Second, 429, "5"},
		{1500 * time.Millisecond, 429, "2"},
		{0, 429, "30"}, // DefaultRefreshInterval
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.interval), func(t *testing.T) {
			clock := clocktest.New(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
			_, base := startClosing(t, sandbox.Options{Now: clock.Now, RefreshDelay: time.Hour, RefreshInterval: tt.interval})
			if res, b := postRefresh(t, base, sandbox.LinkSeed, identityRefresh); res.StatusCode != 202 {
				t.Fatalf("first refresh: %d %s", res.StatusCode, b)
			}
			res, _ := postRefresh(t, base, sandbox.LinkSeed, identityRefresh)
			if res.StatusCode != tt.wantSecond || res.Header.Get("Retry-After") != tt.wantRetry {
				t.Errorf("second refresh: %d, Retry-After %q; want %d, %q", res.StatusCode, res.Header.Get("Retry-After"), tt.wantSecond, tt.wantRetry)
			}
		})
	}
}

// refreshedAt returns products.identity.refreshed_at of an identity answer.
func refreshedAt(t *testing.T, body []byte) time.Time {
	t.Helper()
	var id identityResponse
	mustDecode(t, body, &id, false)
	p := id.Link.Products["identity"]
	if p.RefreshedAt == nil {
		return time.Time{}
	}
	ts, err := time.Parse(time.RFC3339Nano, *p.RefreshedAt)
	if err != nil {
		ts, err = time.Parse("2006-01-02T15:04:05", *p.RefreshedAt)
	}
	if err != nil {
		t.Fatalf("refreshed_at %q: %v", *p.RefreshedAt, err)
	}
	return ts
}

// ownerEmails returns, per account, the emails of its first owner.
func ownerEmails(t *testing.T, body []byte) [][]string {
	t.Helper()
	var id identityResponse
	mustDecode(t, body, &id, false)
	var out [][]string
	for _, a := range id.Accounts {
		var emails []string
		if len(a.Owners) > 0 {
			for _, e := range a.Owners[0].Emails {
				emails = append(emails, e.Address)
			}
		}
		out = append(out, emails)
	}
	return out
}

// TestRefreshChangesIdentity: once a refresh completes, the link's
// identity answer has a later refreshed_at and an added owner email; before,
// it is unchanged.
func TestRefreshChangesIdentity(t *testing.T) {
	links := []string{sandbox.LinkSeed, sandbox.LinkHousehold, sandbox.LinkSparse, sandbox.LinkInternational, sandbox.LinkNovel, sandbox.LinkLarge, sandbox.LinkCopyPrefix + "x"}
	for _, id := range links {
		t.Run(id, func(t *testing.T) {
			// Before some fixtures' refreshed_at: a refresh must still be later.
			clock := clocktest.New(time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC))
			s, base := startClosing(t, sandbox.Options{Now: clock.Now, RefreshDelay: time.Millisecond, RefreshInterval: -1})
			_, before := getIdentity(t, base, id, "", clientHeaders())
			prev := refreshedAt(t, before)
			for n := 1; n <= 2; n++ {
				if res, b := postRefresh(t, base, id, identityRefresh); res.StatusCode != 202 {
					t.Fatalf("refresh %d: %d %s", n, res.StatusCode, b)
				}
				waitFor(t, "the refresh to complete", func() bool { return s.IdentityRefreshes(id) == n })
				res, after := getIdentity(t, base, id, "", clientHeaders())
				checkJSON200(t, res)
				var strict identityResponse
				if id != sandbox.LinkNovel {
					mustDecode(t, after, &strict, true) // still exactly the reference's shape
				}
				got := refreshedAt(t, after)
				if !got.After(prev) {
					t.Errorf("refresh %d: refreshed_at %v, want after %v", n, got, prev)
				}
				prev = got
				want := fmt.Sprintf("refreshed-%d@example.com", n)
				for i, emails := range ownerEmails(t, after) {
					if !slices.Contains(emails, want) {
						t.Errorf("refresh %d: account %d's first owner has emails %v, want %s among them", n, i, emails, want)
					}
				}
				clock.Advance(time.Minute)
			}
		})
	}
}

func TestRefreshKeepsAnswerDetails(t *testing.T) {
	s, base := startClosing(t, sandbox.Options{RefreshDelay: time.Millisecond})
	_, before := getIdentity(t, base, sandbox.LinkInternational, "", clientHeaders())
	if res, b := postRefresh(t, base, sandbox.LinkInternational, identityRefresh); res.StatusCode != 202 {
		t.Fatalf("refresh: %d %s", res.StatusCode, b)
	}
	waitFor(t, "the refresh", func() bool { return s.IdentityRefreshes(sandbox.LinkInternational) == 1 })
	_, after := getIdentity(t, base, sandbox.LinkInternational, "", clientHeaders())
	for _, digits := range []string{"12345678901234567.89", "0.10"} {
		if !bytes.Contains(after, []byte(digits)) || !bytes.Contains(before, []byte(digits)) {
			t.Errorf("amount %s lost by the refresh", digits)
		}
	}
	var id identityResponse
	mustDecode(t, after, &id, true)
	if p := id.Link.Products["identity"]; p.ErrorCode != nil || p.ErrorMessage != nil {
		t.Errorf("identity after a completed refresh has error %v / %v, want none", p.ErrorCode, p.ErrorMessage)
	}
	// account_ids still filters.
	first := id.Accounts[0].AccountID
	_, filtered := getIdentity(t, base, sandbox.LinkInternational, "account_ids="+url.QueryEscape(first), clientHeaders())
	var f identityResponse
	mustDecode(t, filtered, &f, true)
	if len(f.Accounts) != 1 || f.Accounts[0].AccountID != first || !slices.Contains(ownerEmails(t, filtered)[0], "refreshed-1@example.com") {
		t.Errorf("account_ids=%s after a refresh: %.300s", first, filtered)
	}
	// Other links are untouched.
	_, seed := getIdentity(t, base, sandbox.LinkSeed, "", clientHeaders())
	if bytes.Contains(seed, []byte("refreshed-")) {
		t.Errorf("seed link changed by another link's refresh")
	}
}
