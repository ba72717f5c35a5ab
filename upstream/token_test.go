package upstream_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// TestGetIdentityExpiredTokenRenewed checks the one retry: a new token is
// fetched and sent, and the second answer is returned.
func TestGetIdentityExpiredTokenRenewed(t *testing.T) {
	f := newFakeUpstream(t, fakeOptions{identity: func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Header.Get("Authorization") == "Bearer tok-1" {
			writeJSON(w, http.StatusUnauthorized, apiErrorJSON(apierr.CodeExpiredAccessToken, "Access token expired", docsAuth, ""))
			return
		}
		writeJSON(w, http.StatusOK, minimalIdentity)
	}})
	c := MustNewClient(t, f.URL, upstream.Config{})
	id, err := c.GetIdentity(t.Context(), "mk_test")
	if err != nil {
		t.Fatalf("GetIdentity(ctx, %q): %v, want nil", "mk_test", err)
	}
	if id.Link.LinkID != "mk_test" {
		t.Errorf("GetIdentity(ctx, %q).Link.LinkID = %q, want mk_test", "mk_test", id.Link.LinkID)
	}
	if gotIdentity, gotToken := f.Counts(); gotIdentity != 2 || gotToken != 2 {
		t.Errorf("GetIdentity(ctx, %q): %d identity and %d token calls, want 2 and 2", "mk_test", gotIdentity, gotToken)
	}
	var auth []string
	for _, r := range f.Requests() {
		if r.EscapedPath != "/auth/token" {
			auth = append(auth, r.Header.Get("Authorization"))
		}
	}
	if diff := cmp.Diff([]string{"Bearer tok-1", "Bearer tok-2"}, auth); diff != "" {
		t.Errorf("Authorization headers mismatch (-want +got):\n%s", diff)
	}
	// The renewed token is cached: the next call needs no new token.
	if _, err := c.GetIdentity(t.Context(), "mk_test"); err != nil {
		t.Fatalf("GetIdentity(ctx, %q): %v, want nil", "mk_test", err)
	}
	if gotIdentity, gotToken := f.Counts(); gotIdentity != 3 || gotToken != 2 {
		t.Errorf("after a second GetIdentity: %d identity and %d token calls, want 3 and 2", gotIdentity, gotToken)
	}
}

func TestGetIdentityTokenErrors(t *testing.T) {
	tests := []struct {
		name  string
		token func(http.ResponseWriter, *http.Request, int)
		want  apierr.Error
	}{
		{
			name: "401 unauthorized",
			token: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 401, apiErrorJSON(apierr.CodeUnauthorized, "Invalid client credentials.", docsAuth, ""))
			},
			want: apierr.Error{Status: 401, Code: apierr.CodeUnauthorized, Message: "Invalid client credentials.", DocumentationURL: docsAuth},
		},
		{
			name: "400 unauthorized",
			token: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 400, apiErrorJSON(apierr.CodeUnauthorized, "Bad grant.", docsAuth, ""))
			},
			want: apierr.Error{Status: 400, Code: apierr.CodeUnauthorized, Message: "Bad grant.", DocumentationURL: docsAuth},
		},
		{
			name: "503",
			token: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 503, `{"error_code":"x"}`)
			},
			want: apierr.Error{Status: 503, Code: apierr.CodeUpstreamUnavailable, Message: msgUnavailable},
		},
		{
			name: "201 without access_token",
			token: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 201, `{"token_type":"bearer","expires_in":3600}`)
			},
			want: apierr.Error{Status: 201, Code: apierr.CodeUpstreamBadResponse, Message: msgBadResponse},
		},
		{
			name: "201 not JSON",
			token: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 201, `access_token=abc`)
			},
			want: apierr.Error{Status: 201, Code: apierr.CodeUpstreamBadResponse, Message: msgBadResponse},
		},
		{
			name: "201 text/html",
			token: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(201)
				w.Write([]byte(`{"access_token":"abc"}`))
			},
			want: apierr.Error{Status: 201, Code: apierr.CodeUpstreamBadResponse, Message: msgBadResponse},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeUpstream(t, fakeOptions{token: tt.token})
			c := MustNewClient(t, f.URL, upstream.Config{})
			for i := range 2 {
				_, err := c.GetIdentity(t.Context(), "mk_test")
				got := errorFields(MustAsError(t, err))
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("GetIdentity(ctx, %q) #%d error mismatch (-want +got):\n%s", "mk_test", i+1, diff)
				}
			}
			wantToken := 2 // a failed fetch is not cached…
			if tt.want.Code == apierr.CodeUnauthorized {
				wantToken = 1 // …but refused credentials are held, not asked again in a loop
			}
			if gotIdentity, gotToken := f.Counts(); gotIdentity != 0 || gotToken != wantToken {
				t.Errorf("two GetIdentity calls: %d identity and %d token calls, want 0 and %d", gotIdentity, gotToken, wantToken)
			}
		})
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
