package upstream_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// refreshAccepted is a 202 answer of POST /links/{id}/products.
const refreshAccepted = `{"link_id":"mk_test","institution_id":"chase","institution_name":"Chase","institution_avatar":null,` +
	`"state":"connected","error_code":null,"provider":"akoya","link_tags":["smoke_test"],"webhook":null,` +
	`"products":{"identity":{"refreshed_at":"2024-05-01T11:00:00Z","last_attempted_at":"2024-05-01T12:00:00Z",` +
	`"error_code":"rate_limit","error_message":"Too soon.","unavailable":null},"accounts":null},` +
	`"available_products":["identity","accounts"],"a_future_field":{"x":1}}`

func TestRefreshProductsAccepted(t *testing.T) {
	var body []byte
	var contentType string
	var mu sync.Mutex
	f := newFakeUpstream(t, fakeOptions{identity: func(w http.ResponseWriter, r *http.Request, n int) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		body, contentType = b, r.Header.Get("Content-Type")
		mu.Unlock()
		writeJSON(w, http.StatusAccepted, refreshAccepted)
	}})
	var calls []upstream.Call
	c := MustNewClient(t, f.URL, upstream.Config{Observer: func(_ context.Context, call upstream.Call) {
		mu.Lock()
		calls = append(calls, call)
		mu.Unlock()
	}})

	got, err := c.RefreshProducts(t.Context(), "mk_test", []string{upstream.ProductIdentity, "liabilities"})
	if err != nil {
		t.Fatalf("RefreshProducts: %v, want nil", err)
	}
	id := got.Products["identity"]
	if got.LinkID != "mk_test" || id == nil || got.Products["accounts"] != nil || len(got.LinkTags) != 1 {
		t.Fatalf("RefreshProducts = %+v, want link mk_test with an identity product", got)
	}
	wantRefreshed := time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC)
	wantAttempted := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	if !id.RefreshedAt.Time.Equal(wantRefreshed) || !id.LastAttemptedAt.Time.Equal(wantAttempted) ||
		id.ErrorCode == nil || *id.ErrorCode != "rate_limit" || id.ErrorMessage == nil || *id.ErrorMessage != "Too soon." {
		t.Errorf("products.identity = %+v, want refreshed %v, attempted %v, rate_limit / Too soon.", id, wantRefreshed, wantAttempted)
	}

	mu.Lock()
	defer mu.Unlock()
	if string(body) != `{"products":["identity","liabilities"]}` || contentType != "application/json" {
		t.Errorf("request body %s (%s), want {\"products\":[\"identity\",\"liabilities\"]} as application/json", body, contentType)
	}
	reqs := f.Requests()
	last := reqs[len(reqs)-1]
	if last.Method != http.MethodPost || last.EscapedPath != "/links/mk_test/products" ||
		last.Header.Get("Authorization") != "Bearer tok-1" || last.Header.Get("MoneyKit-Version") != upstream.Version {
		t.Errorf("request %s %s with Authorization %q, MoneyKit-Version %q; want POST /links/mk_test/products, Bearer tok-1, %s",
			last.Method, last.EscapedPath, last.Header.Get("Authorization"), last.Header.Get("MoneyKit-Version"), upstream.Version)
	}
	var endpoints []string
	for _, call := range calls {
		endpoints = append(endpoints, call.Endpoint)
	}
	if diff := cmp.Diff([]string{upstream.EndpointToken, upstream.EndpointRefresh}, endpoints); diff != "" {
		t.Errorf("observed endpoints mismatch (-want +got):\n%s", diff)
	}
	if last := calls[len(calls)-1]; last.Status != http.StatusAccepted || last.Code != "" {
		t.Errorf("observed refresh call %+v, want status 202 and no code", last)
	}
}

// TestRefreshProductsErrors: failures keep MoneyKit's codes, and nothing is
// retried, not even what a GET would retry.
func TestRefreshProductsErrors(t *testing.T) {
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter)
		want   apierr.Error // Status, Code, RetryAfter, HasRetryAfter
	}{
		{"429 with Retry-After seconds", func(w http.ResponseWriter) {
			writeJSON(w, 429, apiErrorJSON("api_error.rate_limit_exceeded", "Rate limit exceeded.", docsRateLimits, ""), "Retry-After", "86000")
		}, apierr.Error{Status: 429, Code: apierr.CodeRateLimitExceeded, RetryAfter: 86000 * time.Second, HasRetryAfter: true}},
		{"429 with a short Retry-After", func(w http.ResponseWriter) {
			writeJSON(w, 429, apiErrorJSON("api_error.rate_limit_exceeded", "Rate limit exceeded.", docsRateLimits, ""), "Retry-After", "1")
		}, apierr.Error{Status: 429, Code: apierr.CodeRateLimitExceeded, RetryAfter: time.Second, HasRetryAfter: true}},
		{"404", func(w http.ResponseWriter) {
			writeJSON(w, 404, apiErrorJSON("link_error.not_found", "Link not found.", docsLinkErrors, ""))
		}, apierr.Error{Status: 404, Code: "link_error.not_found"}},
		{"422 bad state", func(w http.ResponseWriter) {
			writeJSON(w, 422, apiErrorJSON("link_error.bad_state", "Reconnect.", docsLinkErrors, "auth_expired"))
		}, apierr.Error{Status: 422, Code: "link_error.bad_state"}},
		{"503", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}, apierr.Error{Status: 503, Code: apierr.CodeUpstreamUnavailable}},
		{"202 that is not a link", func(w http.ResponseWriter) {
			writeJSON(w, http.StatusAccepted, `{"products":{}}`)
		}, apierr.Error{Status: 202, Code: apierr.CodeUpstreamBadResponse}},
		{"202 HTML", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, "<html></html>")
		}, apierr.Error{Status: 202, Code: apierr.CodeUpstreamBadResponse}},
		{"body over the limit", func(w http.ResponseWriter) {
			writeJSON(w, http.StatusAccepted, `{"link_id":"mk_test","pad":"`+strings.Repeat("x", 2048)+`"}`)
		}, apierr.Error{Status: 202, Code: apierr.CodeUpstreamBadResponse}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeUpstream(t, fakeOptions{identity: func(w http.ResponseWriter, _ *http.Request, _ int) { tt.answer(w) }})
			c := MustNewClient(t, f.URL, upstream.Config{MaxBodyBytes: 1024, RetryBaseDelay: time.Millisecond, MaxRetryAfterWait: 2 * time.Second})
			got, err := c.RefreshProducts(t.Context(), "mk_test", []string{"identity"})
			if err == nil {
				t.Fatalf("RefreshProducts = %+v, nil; want %s", got, tt.want.Code)
			}
			e := MustAsError(t, err)
			gotFields := apierr.Error{Status: e.Status, Code: e.Code, RetryAfter: e.RetryAfter, HasRetryAfter: e.HasRetryAfter}
			if diff := cmp.Diff(tt.want, gotFields); diff != "" {
				t.Errorf("RefreshProducts error mismatch (-want +got):\n%s", diff)
			}
			if calls, _ := f.Counts(); calls != 1 {
				t.Errorf("%d refresh calls, want 1: a POST is never retried", calls)
			}
		})
	}
}

// TestRefreshProductsRenewsToken: an expired token is renewed once, and the
// POST is sent again with its whole body.
func TestRefreshProductsRenewsToken(t *testing.T) {
	var bodies []string
	var mu sync.Mutex
	f := newFakeUpstream(t, fakeOptions{identity: func(w http.ResponseWriter, r *http.Request, n int) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		if r.Header.Get("Authorization") == "Bearer tok-1" {
			writeJSON(w, http.StatusUnauthorized, apiErrorJSON("api_error.auth.expired_access_token", "Access token expired", docsAuth, ""))
			return
		}
		writeJSON(w, http.StatusAccepted, refreshAccepted)
	}})
	c := MustNewClient(t, f.URL, upstream.Config{})
	if _, err := c.RefreshProducts(t.Context(), "mk_test", []string{"identity"}); err != nil {
		t.Fatalf("RefreshProducts with an expired token: %v, want nil after one renewal", err)
	}
	if refresh, token := f.Counts(); refresh != 2 || token != 2 {
		t.Errorf("%d refresh and %d token calls, want 2 and 2", refresh, token)
	}
	mu.Lock()
	defer mu.Unlock()
	want := `{"products":["identity"]}`
	if diff := cmp.Diff([]string{want, want}, bodies); diff != "" {
		t.Errorf("request bodies mismatch (-want +got):\n%s", diff)
	}
}

// TestRefreshProductsExpiredTwice: a second expiry is the caller's error,
// not a loop.
func TestRefreshProductsExpiredTwice(t *testing.T) {
	f := newFakeUpstream(t, fakeOptions{identity: func(w http.ResponseWriter, _ *http.Request, _ int) {
		writeJSON(w, http.StatusUnauthorized, apiErrorJSON("api_error.auth.expired_access_token", "Access token expired", docsAuth, ""))
	}})
	c := MustNewClient(t, f.URL, upstream.Config{})
	_, err := c.RefreshProducts(t.Context(), "mk_test", []string{"identity"})
	if e := MustAsError(t, err); e.Code != apierr.CodeExpiredAccessToken {
		t.Errorf("RefreshProducts = %v, want %s", err, apierr.CodeExpiredAccessToken)
	}
	if refresh, _ := f.Counts(); refresh != 2 {
		t.Errorf("%d refresh calls, want 2", refresh)
	}
}

// TestRefreshProductsPath: whatever the id holds, it stays one segment of
// /links/{id}/products.
func TestRefreshProductsPath(t *testing.T) {
	f := newFakeUpstream(t, fakeOptions{identity: func(w http.ResponseWriter, _ *http.Request, _ int) {
		writeJSON(w, http.StatusAccepted, refreshAccepted)
	}})
	c := MustNewClient(t, f.URL, upstream.Config{})
	tests := []struct{ id, wantPath string }{
		{"mk_plain", "/links/mk_plain/products"},
		{"a/b", "/links/a%2Fb/products"},
		{"../../auth/token", "/links/..%2F..%2Fauth%2Ftoken/products"},
		{"a?b#c", "/links/a%3Fb%23c/products"},
		{"100%", "/links/100%25/products"},
		{"x/identity", "/links/x%2Fidentity/products"},
		{"é ü", "/links/%C3%A9%20%C3%BC/products"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if _, err := c.RefreshProducts(t.Context(), tt.id, []string{"identity"}); err != nil {
				t.Fatalf("RefreshProducts(%q): %v", tt.id, err)
			}
			reqs := f.Requests()
			if got := reqs[len(reqs)-1]; got.EscapedPath != tt.wantPath || got.RawQuery != "" {
				t.Errorf("RefreshProducts(%q) requested %s?%s, want %s", tt.id, got.EscapedPath, got.RawQuery, tt.wantPath)
			}
		})
	}
	for _, id := range []string{"", ".", ".."} {
		if _, err := c.RefreshProducts(t.Context(), id, []string{"identity"}); MustAsError(t, err).Code != apierr.CodeInvalidArgument {
			t.Errorf("RefreshProducts(%q) = %v, want %s", id, err, apierr.CodeInvalidArgument)
		}
	}
	if _, err := c.RefreshProducts(t.Context(), "mk_test", nil); MustAsError(t, err).Code != apierr.CodeInvalidArgument {
		t.Errorf("RefreshProducts without products = %v, want %s", err, apierr.CodeInvalidArgument)
	}
}

// countingBudget counts the calls it is asked about and refuses none.
type countingBudget struct{ n atomic.Int32 }

func (b *countingBudget) Reserve(context.Context, string) (time.Duration, string, error) {
	b.n.Add(1)
	return 0, "", nil
}

// TestRefreshProductsSkipsBudget: the identity budget paces GETs; a
// refresh does not spend it.
func TestRefreshProductsSkipsBudget(t *testing.T) {
	f := newFakeUpstream(t, fakeOptions{identity: func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.Method == http.MethodPost {
			writeJSON(w, http.StatusAccepted, refreshAccepted)
			return
		}
		writeJSON(w, http.StatusOK, minimalIdentity)
	}})
	b := &countingBudget{}
	c := MustNewClient(t, f.URL, upstream.Config{Budget: b})
	if _, err := c.RefreshProducts(t.Context(), "mk_test", []string{"identity"}); err != nil {
		t.Fatal(err)
	}
	if n := b.n.Load(); n != 0 {
		t.Errorf("budget asked %d times by RefreshProducts, want 0", n)
	}
	if _, err := c.GetIdentity(t.Context(), "mk_test"); err != nil {
		t.Fatal(err)
	}
	if n := b.n.Load(); n != 1 {
		t.Errorf("budget asked %d times after one GetIdentity, want 1", n)
	}
}

func TestDecodeLink(t *testing.T) {
	l, err := upstream.DecodeLink([]byte(refreshAccepted))
	if err != nil || l.LinkID != "mk_test" || l.Products["identity"] == nil {
		t.Errorf("DecodeLink(refreshAccepted) = %+v, %v", l, err)
	}
	for _, bad := range []string{``, `{}`, `{"link_id":""}`, `{"link_id":"x"} {}`, `{"link_id":"x"`, `[]`} {
		if l, err := upstream.DecodeLink([]byte(bad)); err == nil {
			t.Errorf("DecodeLink(%q) = %+v, nil; want an error", bad, l)
		}
	}
	// Timestamps that are not times do not fail the link.
	l, err = upstream.DecodeLink([]byte(`{"link_id":"x","products":{"identity":{"refreshed_at":42}}}`))
	if err != nil || !l.Products["identity"].RefreshedAt.Invalid {
		t.Errorf("DecodeLink with refreshed_at 42 = %+v, %v; want an Invalid timestamp", l, err)
	}
}

// TestRefreshAgainstSandbox closes the loop with no credentials: accept,
// refuse too soon, then read the changed identity.
func TestRefreshAgainstSandbox(t *testing.T) {
	clock := newFakeClock()
	sb, srv := MustSandbox(t, sandbox.Options{Now: clock.Now, RefreshDelay: 5 * time.Millisecond})
	t.Cleanup(sb.Close)
	c := MustNewClient(t, srv.URL, upstream.Config{Now: clock.Now})

	before, err := c.GetIdentity(t.Context(), sandbox.LinkHousehold)
	if err != nil {
		t.Fatal(err)
	}
	prev := before.Link.Products["identity"].RefreshedAt.Time

	l, err := c.RefreshProducts(t.Context(), sandbox.LinkHousehold, []string{upstream.ProductIdentity})
	if err != nil {
		t.Fatalf("RefreshProducts: %v, want nil", err)
	}
	if p := l.Products["identity"]; l.LinkID != sandbox.LinkHousehold || p == nil || !p.LastAttemptedAt.Time.Equal(clock.Now()) {
		t.Errorf("RefreshProducts = %+v, want the household link with identity attempted now", l)
	}

	_, err = c.RefreshProducts(t.Context(), sandbox.LinkHousehold, []string{upstream.ProductIdentity})
	if e := MustAsError(t, err); e.Code != apierr.CodeRateLimitExceeded || e.Status != 429 || !e.HasRetryAfter || e.RetryAfter != sandbox.DefaultRefreshInterval {
		t.Errorf("second RefreshProducts = %v (retryAfter %v), want %s with retryAfter %v", err, e.RetryAfter, apierr.CodeRateLimitExceeded, sandbox.DefaultRefreshInterval)
	}
	if n := sb.RefreshCallsFor(sandbox.LinkHousehold); n != 2 {
		t.Errorf("%d refresh calls, want 2: the 429 is not retried", n)
	}

	deadline := time.Now().Add(5 * time.Second)
	for sb.IdentityRefreshes(sandbox.LinkHousehold) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	after, err := c.GetIdentity(t.Context(), sandbox.LinkHousehold)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.Link.Products["identity"].RefreshedAt.Time; !got.After(prev) {
		t.Errorf("refreshed_at %v after the refresh, want later than %v", got, prev)
	}
	found := false
	for _, e := range after.Accounts[0].Owners[0].Emails {
		found = found || (e.Address != nil && *e.Address == "refreshed-1@example.com")
	}
	if !found {
		t.Errorf("no refreshed-1@example.com among the first owner's emails after the refresh")
	}
}

func TestRefreshSandboxErrors(t *testing.T) {
	sb, srv := MustSandbox(t, sandbox.Options{RefreshDelay: time.Hour})
	t.Cleanup(sb.Close)
	c := MustNewClient(t, srv.URL, upstream.Config{})
	tests := []struct {
		id   string
		want apierr.Error // Status, Code, RetryAfter
	}{
		{"mk_sandbox_unknown", apierr.Error{Status: 404, Code: "link_error.not_found"}},
		{sandbox.LinkDeleted, apierr.Error{Status: 410, Code: "link_error.deleted"}},
		{sandbox.LinkRateLimited, apierr.Error{Status: 429, Code: apierr.CodeRateLimitExceeded, RetryAfter: 30 * time.Second}},
		{sandbox.LinkUnavailable, apierr.Error{Status: 503, Code: apierr.CodeUpstreamUnavailable}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			_, err := c.RefreshProducts(t.Context(), tt.id, []string{"identity"})
			e := MustAsError(t, err)
			if diff := cmp.Diff(tt.want, apierr.Error{Status: e.Status, Code: e.Code, RetryAfter: e.RetryAfter}); diff != "" {
				t.Errorf("RefreshProducts(%q) error mismatch (-want +got):\n%s", tt.id, diff)
			}
			if n := sb.RefreshCallsFor(tt.id); n != 1 {
				t.Errorf("%d calls, want 1", n)
			}
		})
	}
	// A hostile id reaches the sandbox as one segment: a copy link of that name.
	hostile := sandbox.LinkCopyPrefix + "a/../../auth/token?x#y"
	l, err := c.RefreshProducts(t.Context(), hostile, []string{"identity"})
	if err != nil || l.LinkID != hostile {
		t.Errorf("RefreshProducts(%q) = %+v, %v; want that link", hostile, l, err)
	}
}

// TestRefreshSandboxTokenRenewal: the sandbox refuses the cached token as
// expired; the client renews it and sends the refresh once more.
func TestRefreshSandboxTokenRenewal(t *testing.T) {
	clock := newFakeClock()
	sb, srv := MustSandbox(t, sandbox.Options{Now: clock.Now, RefreshDelay: time.Hour})
	t.Cleanup(sb.Close)
	c := MustNewClient(t, srv.URL, upstream.Config{})
	if _, err := c.RefreshProducts(t.Context(), sandbox.LinkSeed, []string{"identity"}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour) // the token expired; the refresh interval too
	if _, err := c.RefreshProducts(t.Context(), sandbox.LinkSeed, []string{"identity"}); err != nil {
		t.Fatalf("RefreshProducts with an expired token: %v, want nil after one renewal", err)
	}
	if refresh, token := sb.RefreshCallsFor(sandbox.LinkSeed), sb.TokenCalls(); refresh != 3 || token != 2 {
		t.Errorf("%d refresh and %d token calls, want 3 and 2", refresh, token)
	}
}
