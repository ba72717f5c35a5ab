package upstream_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
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

func TestGetIdentityPathEscaping(t *testing.T) {
	tests := []struct {
		id       string
		wantPath string // escaped path the server must see
	}{
		{"mk_eqkWN34UEoa2NxyALG8pcV", "/links/mk_eqkWN34UEoa2NxyALG8pcV/identity"},
		{"a/b", "/links/a%2Fb/identity"},
		{"../auth/token", "/links/..%2Fauth%2Ftoken/identity"},
		{"./x", "/links/.%2Fx/identity"},
		{"x?y=1", "/links/x%3Fy=1/identity"},
		{"x#y", "/links/x%23y/identity"},
		{"%2e%2e", "/links/%252e%252e/identity"},
		{"%2F", "/links/%252F/identity"},
		{"mk_ü", "/links/mk_%C3%BC/identity"},
		{"a b", "/links/a%20b/identity"},
		{"a;b", "/links/a%3Bb/identity"},
		{`a\b`, "/links/a%5Cb/identity"},
		{"...", "/links/.../identity"},
		// Ids ValidateLinkID refuses, should a caller skip it: still one
		// segment, escaped.
		{"mk_a\nb", "/links/mk_a%0Ab/identity"},
		{"mk_\x00", "/links/mk_%00/identity"},
		{"mk_\x7f", "/links/mk_%7F/identity"},
		{"mk_\u0085", "/links/mk_%C2%85/identity"},
		{"mk_\xff", "/links/mk_%FF/identity"},
		{"../../x\r\n", "/links/..%2F..%2Fx%0D%0A/identity"},
		{strings.Repeat("a", upstream.MaxLinkIDLen+1), "/links/" + strings.Repeat("a", upstream.MaxLinkIDLen+1) + "/identity"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			f := newFakeUpstream(t, fakeOptions{})
			c := MustNewClient(t, f.URL, upstream.Config{})
			if _, err := c.GetIdentity(t.Context(), tt.id); err != nil {
				t.Fatalf("GetIdentity(ctx, %q): %v, want nil", tt.id, err)
			}
			var identity []recordedRequest
			for _, r := range f.Requests() {
				if r.EscapedPath != "/auth/token" {
					identity = append(identity, r)
				}
			}
			if len(identity) != 1 {
				t.Fatalf("GetIdentity(ctx, %q) made %d identity requests, want 1: %+v", tt.id, len(identity), identity)
			}
			r := identity[0]
			if r.EscapedPath != tt.wantPath || r.RawQuery != "" || r.Method != http.MethodGet {
				t.Errorf("GetIdentity(ctx, %q) requested %s %s?%s, want GET %s with no query", tt.id, r.Method, r.EscapedPath, r.RawQuery, tt.wantPath)
			}
			// The {id} is exactly one segment and unescapes to the id.
			segment, ok := strings.CutPrefix(r.EscapedPath, "/links/")
			segment, ok2 := strings.CutSuffix(segment, "/identity")
			got, err := url.PathUnescape(segment)
			if !ok || !ok2 || strings.Contains(segment, "/") || err != nil || got != tt.id {
				t.Errorf("GetIdentity(ctx, %q): path segment %q unescapes to %q (%v), want one segment holding the id", tt.id, segment, got, err)
			}
		})
	}
}

// TestGetIdentityPathEscapingSandbox sends hostile ids to the sandbox, which
// routes on the escaped path: each must reach the identity route (an unknown
// link there), never the token route or a 404 route error.
func TestGetIdentityPathEscapingSandbox(t *testing.T) {
	sb, srv := MustSandbox(t, sandbox.Options{})
	c := MustNewClient(t, srv.URL, upstream.Config{})
	if _, err := c.GetIdentity(t.Context(), sandbox.LinkSeed); err != nil { // fetches the token
		t.Fatalf("GetIdentity(ctx, %q): %v, want nil", sandbox.LinkSeed, err)
	}
	for _, id := range []string{"a/b", "../auth/token", "..%2Fauth%2Ftoken", "x?y=1", "x#y", "%2e%2e", "mk_ü", "../../links/" + sandbox.LinkSeed} {
		sb.Reset()
		_, err := c.GetIdentity(t.Context(), id)
		e := MustAsError(t, err)
		if e.Code != "link_error.not_found" || e.Status != http.StatusNotFound {
			t.Errorf("GetIdentity(ctx, %q): %v, want link_error.not_found (HTTP 404)", id, err)
		}
		if got := sb.IdentityCallsFor(id); got != 1 {
			t.Errorf("GetIdentity(ctx, %q): the sandbox saw %d identity calls for the id, want 1", id, got)
		}
		if got := sb.TokenCalls(); got != 0 {
			t.Errorf("GetIdentity(ctx, %q): %d token calls, want 0 (token cached)", id, got)
		}
	}
}

func TestValidateLinkID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		ok   bool
	}{
		{"example", "mk_eqkWN34UEoa2NxyALG8pcV", true},
		{"128 bytes", strings.Repeat("a", upstream.MaxLinkIDLen), true},
		{"unicode", "mk_ü", true},
		{"three dots", "...", true},
		{"slash", "a/b", true},
		{"empty", "", false},
		{"129 bytes", strings.Repeat("a", upstream.MaxLinkIDLen+1), false},
		{"129 bytes ending in a 2-byte rune", strings.Repeat("a", upstream.MaxLinkIDLen-1) + "ü", false},
		{"newline", "mk_a\nb", false},
		{"carriage return", "mk_a\r", false},
		{"tab", "mk\ta", false},
		{"NUL", "mk_\x00", false},
		{"DEL", "mk_\x7f", false},
		{"escape", "mk_\x1b[31m", false},
		{"U+0085 NEL", "mk_\u0085", false},
		{"U+009B CSI", "mk_\u009b", false},
		{"invalid UTF-8", "mk_\xff", false},
		{"truncated UTF-8", "mk_\xc3", false},
		{"overlong encoding", "mk_\xc0\xaf", false},
		{"dot", ".", false},
		{"dot dot", "..", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := upstream.ValidateLinkID(tt.id)
			if tt.ok {
				if err != nil {
					t.Errorf("ValidateLinkID(%q): %v, want nil", tt.id, err)
				}
				return
			}
			e := MustAsError(t, err)
			if e.Code != apierr.CodeInvalidArgument || e.Status != 0 {
				t.Errorf("ValidateLinkID(%q): %v, want %s", tt.id, err, apierr.CodeInvalidArgument)
			}
			if len(e.Message) > 100 || (len(tt.id) > 3 && strings.Contains(e.Message, tt.id)) {
				t.Errorf("ValidateLinkID(%q).Message = %q, want a short message that does not echo the id", tt.id, e.Message)
			}
		})
	}
}

// TestGetIdentityDotSegments: GetIdentity does not validate ids (the
// resolvers do, where they enter), but the ids PathEscape would leave as a
// segment a proxy could resolve to another path are refused before any HTTP
// exchange, token included.
func TestGetIdentityDotSegments(t *testing.T) {
	for _, id := range []string{"", ".", ".."} {
		t.Run(id, func(t *testing.T) {
			f := newFakeUpstream(t, fakeOptions{})
			var calls []upstream.Call
			c := MustNewClient(t, f.URL, upstream.Config{Observer: func(_ context.Context, c upstream.Call) { calls = append(calls, c) }})
			_, err := c.GetIdentity(t.Context(), id)
			if e := MustAsError(t, err); e.Code != apierr.CodeInvalidArgument {
				t.Errorf("GetIdentity(ctx, %q): %v, want %s", id, err, apierr.CodeInvalidArgument)
			}
			if n := len(f.Requests()); n != 0 || len(calls) != 0 {
				t.Errorf("GetIdentity(ctx, %q) made %d HTTP requests (%d observed), want 0", id, n, len(calls))
			}
		})
	}
}

func TestGetIdentityRequestHeaders(t *testing.T) {
	f := newFakeUpstream(t, fakeOptions{})
	c := MustNewClient(t, f.URL, upstream.Config{ClientID: "client-1", ClientSecret: "secret-1"})
	for range 3 {
		if _, err := c.GetIdentity(t.Context(), "mk_test"); err != nil {
			t.Fatalf("GetIdentity(ctx, %q): %v, want nil", "mk_test", err)
		}
	}
	want := map[string]string{
		"Authorization":    "Bearer tok-1",
		"X-Client-Id":      "client-1",
		"X-Client-Secret":  "secret-1",
		"Moneykit-Version": "2023-02-18",
		"Accept":           "application/json",
	}
	n := 0
	for _, r := range f.Requests() {
		if r.EscapedPath == "/auth/token" {
			continue
		}
		n++
		got := make(map[string]string, len(want))
		for k := range want {
			got[k] = r.Header.Get(k)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("identity request %d headers mismatch (-want +got):\n%s", n, diff)
		}
		if r.Method != http.MethodGet || r.RawQuery != "" {
			t.Errorf("identity request %d: %s with query %q, want GET without query (no account_ids)", n, r.Method, r.RawQuery)
		}
	}
	if n != 3 {
		t.Errorf("saw %d identity requests, want 3", n)
	}
	if upstream.Version != "2023-02-18" {
		t.Errorf("Version = %q, want 2023-02-18", upstream.Version)
	}
}

func TestTokenRequest(t *testing.T) {
	f := newFakeUpstream(t, fakeOptions{})
	const id, secret = "client id&=1", "s3cr=t&x+y %"
	c := MustNewClient(t, f.URL, upstream.Config{ClientID: id, ClientSecret: secret})
	if _, err := c.GetIdentity(t.Context(), "mk_test"); err != nil {
		t.Fatalf("GetIdentity(ctx, %q): %v, want nil", "mk_test", err)
	}
	reqs := f.Requests()
	if len(reqs) != 2 {
		t.Fatalf("saw %d requests, want 2 (token, identity): %+v", len(reqs), reqs)
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.EscapedPath != "/auth/token" || r.RawQuery != "" {
		t.Errorf("token request: %s %s?%s, want POST /auth/token without query", r.Method, r.EscapedPath, r.RawQuery)
	}
	if got := r.Header.Get("Content-Type"); got != "application/x-www-form-urlencoded" {
		t.Errorf("token request Content-Type = %q, want application/x-www-form-urlencoded", got)
	}
	if got := r.Header.Get("Authorization"); strings.HasPrefix(got, "Bearer") {
		t.Errorf("token request Authorization = %q, want no bearer token", got)
	}
	if got := r.Header.Get("MoneyKit-Version"); got != upstream.Version {
		t.Errorf("token request MoneyKit-Version = %q, want %q", got, upstream.Version)
	}
	wantForm := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	if diff := cmp.Diff(wantForm, r.PostForm); diff != "" {
		t.Errorf("token request form mismatch (-want +got):\n%s", diff)
	}
}

// TestTokenAgainstSandbox checks the credentials with the sandbox's own parser.
func TestTokenAgainstSandbox(t *testing.T) {
	sb, srv := MustSandbox(t, sandbox.Options{ClientID: "id+with&odd=chars", ClientSecret: "secret with spaces%"})
	c := MustNewClient(t, srv.URL, upstream.Config{ClientID: "id+with&odd=chars", ClientSecret: "secret with spaces%"})
	if _, err := c.GetIdentity(t.Context(), sandbox.LinkSeed); err != nil {
		t.Fatalf("GetIdentity(ctx, %q): %v, want nil", sandbox.LinkSeed, err)
	}
	if got := sb.TokenCalls(); got != 1 {
		t.Errorf("TokenCalls() = %d, want 1", got)
	}
}

func TestTokenCached(t *testing.T) {
	sb, srv := MustSandbox(t, sandbox.Options{})
	c := MustNewClient(t, srv.URL, upstream.Config{})
	for i := range 5 {
		if _, err := c.GetIdentity(t.Context(), sandbox.LinkSeed); err != nil {
			t.Fatalf("GetIdentity(ctx, %q) #%d: %v, want nil", sandbox.LinkSeed, i+1, err)
		}
	}
	if got, want := sb.TokenCalls(), 1; got != want {
		t.Errorf("5 GetIdentity calls: TokenCalls() = %d, want %d", got, want)
	}
	if got, want := sb.IdentityCalls(), 5; got != want {
		t.Errorf("5 GetIdentity calls: IdentityCalls() = %d, want %d", got, want)
	}
	if q := sb.LastIdentityQuery(sandbox.LinkSeed); len(q) != 0 {
		t.Errorf("LastIdentityQuery(%q) = %v, want no query (no account_ids)", sandbox.LinkSeed, q)
	}
}

func TestTokenRenewedBeforeExpiry(t *testing.T) {
	tests := []struct {
		name        string
		ttl         time.Duration // sandbox token lifetime; 0: 3600 s
		stillCached time.Duration // clock advance after which the token is reused
		renewed     time.Duration // clock advance after which a new token is fetched
	}{
		{"3600s renews a minute early", 0, 3539 * time.Second, 3541 * time.Second},
		{"100s renews a tenth early", 100 * time.Second, 89 * time.Second, 91 * time.Second},
		{"1h renews a minute early", 2 * time.Hour, 2*time.Hour - 61*time.Second, 2*time.Hour - 59*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			sb, srv := MustSandbox(t, sandbox.Options{TokenTTL: tt.ttl, Now: clock.Now})
			c := MustNewClient(t, srv.URL, upstream.Config{Now: clock.Now})
			get := func() {
				t.Helper()
				if _, err := c.GetIdentity(t.Context(), sandbox.LinkSeed); err != nil {
					t.Fatalf("GetIdentity(ctx, %q): %v, want nil", sandbox.LinkSeed, err)
				}
			}
			get()
			clock.Advance(tt.stillCached)
			get()
			if got := sb.TokenCalls(); got != 1 {
				t.Errorf("after %v: TokenCalls() = %d, want 1 (token still cached)", tt.stillCached, got)
			}
			clock.Advance(tt.renewed - tt.stillCached)
			get()
			if got := sb.TokenCalls(); got != 2 {
				t.Errorf("after %v: TokenCalls() = %d, want 2 (token renewed before expiry)", tt.renewed, got)
			}
			// Renewed ahead of expiry: the sandbox never had to refuse a token.
			if got := sb.IdentityCalls(); got != 3 {
				t.Errorf("IdentityCalls() = %d, want 3 (no expired-token retry)", got)
			}
		})
	}
}

// TestTokenDefaultTTL: without a usable expires_in the token lives 5 minutes
// and is renewed 30 s early.
func TestTokenDefaultTTL(t *testing.T) {
	for _, body := range []string{
		`{"access_token":"tok","token_type":"bearer"}`,
		`{"access_token":"tok","token_type":"bearer","expires_in":0}`,
		`{"access_token":"tok","token_type":"bearer","expires_in":-10}`,
	} {
		t.Run(body, func(t *testing.T) {
			clock := newFakeClock()
			f := newFakeUpstream(t, fakeOptions{token: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, http.StatusCreated, body)
			}})
			c := MustNewClient(t, f.URL, upstream.Config{Now: clock.Now})
			for _, step := range []struct {
				advance    time.Duration
				wantTokens int
			}{{0, 1}, {269 * time.Second, 1}, {2 * time.Second, 2}} {
				clock.Advance(step.advance)
				if _, err := c.GetIdentity(t.Context(), "mk_test"); err != nil {
					t.Fatalf("GetIdentity(ctx, %q): %v, want nil", "mk_test", err)
				}
				if _, got := f.Counts(); got != step.wantTokens {
					t.Errorf("after +%v: %d token calls, want %d", step.advance, got, step.wantTokens)
				}
			}
		})
	}
}

// TestTokenHugeExpiresIn: an absurd expires_in must not make every call
// fetch a token.
func TestTokenHugeExpiresIn(t *testing.T) {
	f := newFakeUpstream(t, fakeOptions{token: func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, http.StatusCreated, `{"access_token":"tok","token_type":"bearer","expires_in":10000000000}`)
	}})
	c := MustNewClient(t, f.URL, upstream.Config{})
	for range 3 {
		if _, err := c.GetIdentity(t.Context(), "mk_test"); err != nil {
			t.Fatalf("GetIdentity(ctx, %q): %v, want nil", "mk_test", err)
		}
	}
	if _, got := f.Counts(); got != 1 {
		t.Errorf("3 GetIdentity calls with expires_in 10000000000: %d token calls, want 1", got)
	}
}

func TestTokenSingleFlight(t *testing.T) {
	f := newFakeUpstream(t, fakeOptions{token: func(w http.ResponseWriter, r *http.Request, n int) {
		time.Sleep(100 * time.Millisecond)
		writeJSON(w, http.StatusCreated, `{"access_token":"tok-shared","token_type":"bearer","expires_in":3600}`)
	}})
	c := MustNewClient(t, f.URL, upstream.Config{})
	const n = 50
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = c.GetIdentity(t.Context(), "mk_test")
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("%d concurrent GetIdentity calls: %v, want no error", n, err)
	}
	if gotIdentity, gotToken := f.Counts(); gotToken != 1 || gotIdentity != n {
		t.Errorf("%d concurrent GetIdentity calls: %d token and %d identity calls, want 1 and %d", n, gotToken, gotIdentity, n)
	}
	for _, r := range f.Requests() {
		if r.EscapedPath != "/auth/token" && r.Header.Get("Authorization") != "Bearer tok-shared" {
			t.Errorf("identity request Authorization = %q, want Bearer tok-shared", r.Header.Get("Authorization"))
		}
	}
}

// slowTokenUpstream is a fake whose token endpoint answers only when release
// is closed (or the client gives up); started receives one value per token call.
func slowTokenUpstream(t *testing.T) (f *fakeUpstream, started chan struct{}, release func()) {
	t.Helper()
	started = make(chan struct{}, 10)
	ch := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	f = newFakeUpstream(t, fakeOptions{token: func(w http.ResponseWriter, r *http.Request, n int) {
		started <- struct{}{}
		select {
		case <-ch:
			writeJSON(w, http.StatusCreated, `{"access_token":"tok-slow","token_type":"bearer","expires_in":3600}`)
		case <-r.Context().Done():
		}
	}})
	t.Cleanup(release) // runs before the server's Close
	return f, started, release
}

func TestTokenWaiterCancelled(t *testing.T) {
	f, started, release := slowTokenUpstream(t)
	c := MustNewClient(t, f.URL, upstream.Config{})

	leaderErr := make(chan error, 1)
	go func() {
		_, err := c.GetIdentity(context.Background(), "mk_test")
		leaderErr <- err
	}()
	<-started // the leader is fetching the token

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.GetIdentity(ctx, "mk_test")
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("waiter with a 50ms deadline returned after %v, want promptly", elapsed)
	}
	if e := MustAsError(t, err); e.Code != apierr.CodeUpstreamTimeout {
		t.Errorf("GetIdentity(ctx with 50ms deadline, %q): %v, want %s", "mk_test", err, apierr.CodeUpstreamTimeout)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GetIdentity(ctx with 50ms deadline, %q): %v, want it to wrap context.DeadlineExceeded", "mk_test", err)
	}

	// The waiter's departure does not disturb the fetch it was waiting for.
	release()
	if err := <-leaderErr; err != nil {
		t.Errorf("leader GetIdentity(ctx, %q): %v, want nil", "mk_test", err)
	}
	if gotIdentity, gotToken := f.Counts(); gotToken != 1 || gotIdentity != 1 {
		t.Errorf("%d token and %d identity calls, want 1 and 1", gotToken, gotIdentity)
	}
}

// TestTokenLeaderCancelled: the caller that happens to start the token fetch
// is bounded by its own context too, not by Config.Timeout.
func TestTokenLeaderCancelled(t *testing.T) {
	f, started, release := slowTokenUpstream(t)
	c := MustNewClient(t, f.URL, upstream.Config{Timeout: 2 * time.Second})

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.GetIdentity(ctx, "mk_test")
	elapsed := time.Since(start)
	<-started
	if elapsed > time.Second {
		t.Errorf("leader with a 50ms deadline returned after %v, want promptly", elapsed)
	}
	if e := MustAsError(t, err); e.Code != apierr.CodeUpstreamTimeout {
		t.Errorf("GetIdentity(ctx with 50ms deadline, %q): %v, want %s", "mk_test", err, apierr.CodeUpstreamTimeout)
	}
	// The fetch carries on for the callers that come next.
	release()
	if _, err := c.GetIdentity(t.Context(), "mk_test"); err != nil {
		t.Errorf("next GetIdentity(ctx, %q): %v, want nil", "mk_test", err)
	}
	if _, gotToken := f.Counts(); gotToken != 1 {
		t.Errorf("%d token calls, want 1", gotToken)
	}
}

func TestGetIdentityPreCancelledContext(t *testing.T) {
	_, srv := MustSandbox(t, sandbox.Options{})
	c := MustNewClient(t, srv.URL, upstream.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.GetIdentity(ctx, sandbox.LinkSeed)
	if e := MustAsError(t, err); e.Code != apierr.CodeUpstreamTimeout || !errors.Is(err, context.Canceled) {
		t.Errorf("GetIdentity(cancelled ctx, %q): %v, want %s wrapping context.Canceled", sandbox.LinkSeed, err, apierr.CodeUpstreamTimeout)
	}
}

func TestTokenUnauthorized(t *testing.T) {
	sb, srv := MustSandbox(t, sandbox.Options{})
	c := MustNewClient(t, srv.URL, upstream.Config{ClientSecret: "wrong"})
	_, err := c.GetIdentity(t.Context(), sandbox.LinkSeed)
	e := MustAsError(t, err)
	if e.Code != apierr.CodeUnauthorized || e.Status != http.StatusUnauthorized {
		t.Errorf("GetIdentity(ctx, %q) with a wrong secret: %v, want %s (HTTP 401)", sandbox.LinkSeed, err, apierr.CodeUnauthorized)
	}
	if got := sb.IdentityCalls(); got != 0 {
		t.Errorf("IdentityCalls() = %d, want 0: no identity call without a token", got)
	}
	if got := sb.TokenCalls(); got != 1 {
		t.Errorf("TokenCalls() = %d, want 1", got)
	}
}

// observed is a Call without its Duration, for comparison.
type observed struct {
	Endpoint string
	Status   int
	Code     string
}

// recordCalls returns an Observer and a function returning what it saw.
func recordCalls(t *testing.T, wantValue string) (func(context.Context, upstream.Call), func() []observed) {
	var mu sync.Mutex
	var calls []observed
	observe := func(ctx context.Context, c upstream.Call) {
		if got, _ := ctx.Value(ctxKey{}).(string); got != wantValue {
			t.Errorf("Observer got a context with value %q, want the caller's context (%q)", got, wantValue)
		}
		if c.Duration <= 0 {
			t.Errorf("Observer got Call %+v with Duration %v, want > 0", c, c.Duration)
		}
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, observed{c.Endpoint, c.Status, c.Code})
	}
	return observe, func() []observed {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(calls)
	}
}

type ctxKey struct{}

func TestObserver(t *testing.T) {
	tokenOK := observed{upstream.EndpointToken, http.StatusCreated, ""}
	tests := []struct {
		name     string
		identity func(http.ResponseWriter, *http.Request, int)
		token    func(http.ResponseWriter, *http.Request, int)
		linkID   string
		want     []observed
	}{
		{
			name: "success",
			want: []observed{tokenOK, {upstream.EndpointIdentity, 200, ""}},
		},
		{
			name: "expired token retried",
			identity: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					writeJSON(w, 401, apiErrorJSON(apierr.CodeExpiredAccessToken, "Access token expired", docsAuth, ""))
					return
				}
				writeJSON(w, 200, minimalIdentity)
			},
			want: []observed{tokenOK, {upstream.EndpointIdentity, 401, apierr.CodeExpiredAccessToken}, tokenOK, {upstream.EndpointIdentity, 200, ""}},
		},
		{
			name: "404",
			identity: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 404, apiErrorJSON("link_error.not_found", "Link not found.", docsLinkErrors, ""))
			},
			want: []observed{tokenOK, {upstream.EndpointIdentity, 404, "link_error.not_found"}},
		},
		{
			name: "503",
			identity: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 503, `{}`)
			},
			// Retried twice: each attempt is observed.
			want: []observed{tokenOK, {upstream.EndpointIdentity, 503, apierr.CodeUpstreamUnavailable},
				{upstream.EndpointIdentity, 503, apierr.CodeUpstreamUnavailable}, {upstream.EndpointIdentity, 503, apierr.CodeUpstreamUnavailable}},
		},
		{
			name: "200 HTML",
			identity: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Content-Type", "text/html")
				w.Write([]byte("<html></html>"))
			},
			want: []observed{tokenOK, {upstream.EndpointIdentity, 200, apierr.CodeUpstreamBadResponse}},
		},
		{
			name: "200 truncated JSON",
			identity: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 200, `{"accounts":[`)
			},
			want: []observed{tokenOK, {upstream.EndpointIdentity, 200, apierr.CodeUpstreamBadResponse}},
		},
		{
			name: "token without access_token",
			token: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 201, `{"token_type":"bearer"}`)
			},
			want: []observed{{upstream.EndpointToken, 201, apierr.CodeUpstreamBadResponse}},
		},
		{
			name: "token refused",
			token: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 401, apiErrorJSON(apierr.CodeUnauthorized, "Invalid client credentials.", docsAuth, ""))
			},
			want: []observed{{upstream.EndpointToken, 401, apierr.CodeUnauthorized}},
		},
		{
			name:   "invalid link id",
			linkID: "..",
			want:   nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeUpstream(t, fakeOptions{identity: tt.identity, token: tt.token})
			observe, calls := recordCalls(t, "caller")
			c := MustNewClient(t, f.URL, upstream.Config{Observer: observe})
			linkID := cmpOr(tt.linkID, "mk_test")
			c.GetIdentity(context.WithValue(t.Context(), ctxKey{}, "caller"), linkID)
			if diff := cmp.Diff(tt.want, calls()); diff != "" {
				t.Errorf("GetIdentity(ctx, %q) observed calls mismatch (-want +got):\n%s", linkID, diff)
			}
		})
	}
}

func TestObserverConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	observe, calls := recordCalls(t, "caller")
	c := MustNewClient(t, "http://"+addr, upstream.Config{Observer: observe})
	c.GetIdentity(context.WithValue(t.Context(), ctxKey{}, "caller"), "mk_test")
	want := []observed{{upstream.EndpointToken, 0, apierr.CodeUpstreamUnavailable}}
	if diff := cmp.Diff(want, calls()); diff != "" {
		t.Errorf("observed calls mismatch (-want +got):\n%s", diff)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestNew(t *testing.T) {
	valid := upstream.Config{BaseURL: "https://api.moneykit.com", ClientID: "id", ClientSecret: "secret"}
	with := func(f func(*upstream.Config)) upstream.Config {
		c := valid
		f(&c)
		return c
	}
	bad := map[string]upstream.Config{
		"ftp scheme":         with(func(c *upstream.Config) { c.BaseURL = "ftp://x" }),
		"not a url":          with(func(c *upstream.Config) { c.BaseURL = "not a url" }),
		"no host":            with(func(c *upstream.Config) { c.BaseURL = "http://" }),
		"query":              with(func(c *upstream.Config) { c.BaseURL = "https://api.moneykit.com/?env=sandbox" }),
		"fragment":           with(func(c *upstream.Config) { c.BaseURL = "https://api.moneykit.com/#x" }),
		"empty":              with(func(c *upstream.Config) { c.BaseURL = "" }),
		"scheme-relative":    with(func(c *upstream.Config) { c.BaseURL = "//api.moneykit.com" }),
		"unparseable":        with(func(c *upstream.Config) { c.BaseURL = "http://[::1" }),
		"mailto":             with(func(c *upstream.Config) { c.BaseURL = "mailto:a@example.com" }),
		"missing client id":  with(func(c *upstream.Config) { c.ClientID = "" }),
		"missing secret":     with(func(c *upstream.Config) { c.ClientSecret = "" }),
		"missing both creds": with(func(c *upstream.Config) { c.ClientID, c.ClientSecret = "", "" }),
	}
	for name, cfg := range bad {
		if c, err := upstream.New(cfg); err == nil || c != nil {
			t.Errorf("New(%s: %+v) = %v, %v; want nil, an error", name, cfg, c, err)
		}
	}
	for _, base := range []string{"https://api.moneykit.com", "https://api.moneykit.com/", "http://127.0.0.1:8080", "HTTPS://api.moneykit.com", "http://localhost:9/prefix/"} {
		cfg := with(func(c *upstream.Config) { c.BaseURL = base })
		if c, err := upstream.New(cfg); err != nil || c == nil {
			t.Errorf("New(BaseURL %q) = %v, %v; want a client, nil", base, c, err)
		}
	}
}

func TestNewErrorHidesSecret(t *testing.T) {
	_, err := upstream.New(upstream.Config{BaseURL: "ftp://x", ClientID: "id", ClientSecret: "hunter2"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("New(bad base URL): %v, want an error without the secret", err)
	}
}

// TestNewBaseURLEmptyQuery: "https://host/?" has an empty query that
// url.URL keeps (ForceQuery), so every path would land in the query string.
func TestNewBaseURLEmptyQuery(t *testing.T) {
	f := newFakeUpstream(t, fakeOptions{})
	c, err := upstream.New(upstream.Config{BaseURL: f.URL + "/?", ClientID: "id", ClientSecret: "secret", HTTPClient: newHTTPClient(t)})
	if err != nil {
		return // refused: fine
	}
	c.GetIdentity(t.Context(), "mk_test")
	for _, r := range f.Requests() {
		if r.EscapedPath != "/auth/token" && r.EscapedPath != "/links/mk_test/identity" || r.RawQuery != "" {
			t.Errorf("New(BaseURL %q) accepted, then requested %s %s?%s; want New to refuse the URL", f.URL+"/?", r.Method, r.EscapedPath, r.RawQuery)
		}
	}
}

// TestBaseURLWithPath: a base URL with a path prefix keeps it for every call.
func TestBaseURLWithPath(t *testing.T) {
	sb := sandbox.New(sandbox.Options{})
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.EscapedPath())
		mu.Unlock()
		http.StripPrefix("/mk", sb).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c := MustNewClient(t, srv.URL+"/mk/", upstream.Config{})
	if _, err := c.GetIdentity(t.Context(), "a/b"); MustAsError(t, err).Code != "link_error.not_found" {
		t.Errorf("GetIdentity(ctx, %q): %v, want link_error.not_found", "a/b", err)
	}
	if _, err := c.GetIdentity(t.Context(), sandbox.LinkSeed); err != nil {
		t.Errorf("GetIdentity(ctx, %q): %v, want nil", sandbox.LinkSeed, err)
	}
	want := []string{"/mk/auth/token", "/mk/links/a%2Fb/identity", "/mk/links/" + sandbox.LinkSeed + "/identity"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("requested paths mismatch (-want +got):\n%s", diff)
	}
}

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

// TestRedirectKeepsCredentials: MoneyKit never redirects; a redirect (a
// misconfigured proxy, a hijacked DNS name) must not carry the client secret
// or the token to another host. net/http forwards custom headers such as
// X-Client-Secret to any redirect target, and re-POSTs a form on a 307.
func TestRedirectKeepsCredentials(t *testing.T) {
	var mu sync.Mutex
	var leaked []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		leaked = append(leaked, r.URL.Path)
		for _, v := range []string{r.Header.Get("X-Client-Secret"), r.Header.Get("Authorization"), r.PostForm.Get("client_secret")} {
			if v != "" {
				leaked = append(leaked, r.URL.Path+": "+v)
			}
		}
		mu.Unlock()
		writeJSON(w, http.StatusOK, minimalIdentity)
	}))
	t.Cleanup(other.Close)

	for _, tt := range []struct {
		name            string
		identity, token func(http.ResponseWriter, *http.Request, int)
		wantStatus      int
	}{
		{name: "identity 302", wantStatus: http.StatusFound, identity: func(w http.ResponseWriter, r *http.Request, n int) {
			http.Redirect(w, r, other.URL+"/links/mk_test/identity", http.StatusFound)
		}},
		{name: "identity 308", wantStatus: http.StatusPermanentRedirect, identity: func(w http.ResponseWriter, r *http.Request, n int) {
			http.Redirect(w, r, other.URL+"/links/mk_test/identity", http.StatusPermanentRedirect)
		}},
		{name: "token 307", wantStatus: http.StatusTemporaryRedirect, token: func(w http.ResponseWriter, r *http.Request, n int) {
			http.Redirect(w, r, other.URL+"/auth/token", http.StatusTemporaryRedirect)
		}},
	} {
		for _, own := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/own HTTPClient %v", tt.name, own), func(t *testing.T) {
				f := newFakeUpstream(t, fakeOptions{identity: tt.identity, token: tt.token})
				cfg := upstream.Config{BaseURL: f.URL, ClientID: "id", ClientSecret: "the-secret"}
				if own {
					cfg.HTTPClient = newHTTPClient(t) // no CheckRedirect of its own
				}
				c, err := upstream.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				if own && cfg.HTTPClient.CheckRedirect != nil {
					t.Errorf("New changed the caller's http.Client: CheckRedirect set")
				}
				_, err = c.GetIdentity(t.Context(), "mk_test")
				if err == nil {
					t.Fatalf("GetIdentity(ctx, %q) after a redirect: nil error, want %s", "mk_test", apierr.CodeUpstreamBadResponse)
				}
				if e := MustAsError(t, err); e.Code != apierr.CodeUpstreamBadResponse || e.Status != tt.wantStatus {
					t.Errorf("GetIdentity(ctx, %q) after a redirect: %v, want %s (HTTP %d)", "mk_test", err, apierr.CodeUpstreamBadResponse, tt.wantStatus)
				}
				mu.Lock()
				defer mu.Unlock()
				if len(leaked) > 0 {
					t.Errorf("the redirect target was called: %q", leaked)
					leaked = nil
				}
			})
		}
	}
}

// TestCallerCheckRedirectKept: a caller that sets CheckRedirect decides.
func TestCallerCheckRedirectKept(t *testing.T) {
	var called atomic.Bool
	f := newFakeUpstream(t, fakeOptions{identity: func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			http.Redirect(w, r, "/links/mk_test/identity", http.StatusFound)
			return
		}
		writeJSON(w, http.StatusOK, minimalIdentity)
	}})
	hc := newHTTPClient(t)
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { called.Store(true); return nil }
	c := MustNewClient(t, f.URL, upstream.Config{HTTPClient: hc})
	if _, err := c.GetIdentity(t.Context(), "mk_test"); err != nil || !called.Load() {
		t.Errorf("GetIdentity(ctx, %q) with the caller's CheckRedirect: %v (CheckRedirect called: %v), want nil, true", "mk_test", err, called.Load())
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
