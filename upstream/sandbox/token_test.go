package sandbox_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestToken(t *testing.T) {
	form := defaultForm()
	withSecret := func(secret string) url.Values {
		f := defaultForm()
		f.Set("client_secret", secret)
		return f
	}
	basic := func(id, secret string) http.Header {
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		req.SetBasicAuth(id, secret)
		return req.Header
	}
	tests := []struct {
		name   string
		form   url.Values
		header http.Header
		want   int
	}{
		{"form credentials", form, nil, http.StatusCreated},
		{"form credentials with scope", url.Values{"scope": {"identity"}, "grant_type": {"client_credentials"}, "client_id": form["client_id"], "client_secret": form["client_secret"]}, nil, http.StatusCreated},
		{"basic auth", url.Values{"grant_type": {"client_credentials"}}, basic(sandbox.DefaultClientID, sandbox.DefaultClientSecret), http.StatusCreated},
		{"wrong secret", withSecret("nope"), nil, http.StatusUnauthorized},
		{"secret prefix", withSecret(sandbox.DefaultClientSecret[:5]), nil, http.StatusUnauthorized},
		{"wrong basic auth", url.Values{"grant_type": {"client_credentials"}}, basic(sandbox.DefaultClientID, "nope"), http.StatusUnauthorized},
		{"no credentials", url.Values{"grant_type": {"client_credentials"}}, nil, http.StatusUnauthorized},
		{"no grant_type", url.Values{"client_id": form["client_id"], "client_secret": form["client_secret"]}, nil, http.StatusUnauthorized},
		{"wrong grant_type", url.Values{"grant_type": {"password"}, "client_id": form["client_id"], "client_secret": form["client_secret"]}, nil, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, base := start(t, sandbox.Options{})
			res, body := postToken(t, base, tt.form, tt.header)
			if s.TokenCalls() != 1 {
				t.Errorf("TokenCalls() = %d, want 1", s.TokenCalls())
			}
			if tt.want != http.StatusCreated {
				checkError(t, res, body, tt.want, "api_error.auth.unauthorized")
				return
			}
			if res.StatusCode != tt.want || res.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, Content-Type %q, want %d application/json", res.StatusCode, res.Header.Get("Content-Type"), tt.want)
			}
			var tok tokenResponse
			mustDecode(t, body, &tok, true)
			if len(tok.AccessToken) < 32 || tok.TokenType != "bearer" || tok.ExpiresIn != 3600 {
				t.Errorf("token = %+v, want a 32+ char bearer token expiring in 3600", tok)
			}
		})
	}
}

func TestTokenMethodNotAllowed(t *testing.T) {
	s, base := start(t, sandbox.Options{})
	res, body := do(t, http.MethodGet, base+"/auth/token", nil, nil)
	checkError(t, res, body, http.StatusMethodNotAllowed, "api_error.method_not_allowed")
	if s.TokenCalls() != 0 {
		t.Errorf("TokenCalls() = %d after a GET, want 0", s.TokenCalls())
	}
}

func TestTokensAreUnique(t *testing.T) {
	_, base := start(t, sandbox.Options{})
	if a, b := mustToken(t, base), mustToken(t, base); a == b {
		t.Errorf("two token calls returned the same token %q", a)
	}
}

func TestCustomCredentialsAndTTL(t *testing.T) {
	_, base := start(t, sandbox.Options{ClientID: "id", ClientSecret: "secret", TokenTTL: 90 * time.Second})
	res, body := postToken(t, base, defaultForm(), nil)
	checkError(t, res, body, http.StatusUnauthorized, "api_error.auth.unauthorized")

	res, body = postToken(t, base, url.Values{"grant_type": {"client_credentials"}, "client_id": {"id"}, "client_secret": {"secret"}}, nil)
	var tok tokenResponse
	mustDecode(t, body, &tok, true)
	if res.StatusCode != http.StatusCreated || tok.ExpiresIn != 90 {
		t.Errorf("status %d, expires_in %d, want 201 and 90", res.StatusCode, tok.ExpiresIn)
	}
	res, _ = getIdentity(t, base, sandbox.LinkSeed, "", http.Header{"X-Client-Id": {"id"}, "X-Client-Secret": {"secret"}})
	if res.StatusCode != http.StatusOK {
		t.Errorf("identity with custom client headers: status %d, want 200", res.StatusCode)
	}
}

func TestIdentityAuth(t *testing.T) {
	start0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var elapsed atomic.Int64
	now := func() time.Time { return start0.Add(time.Duration(elapsed.Load())) }
	_, base := start(t, sandbox.Options{Now: now})
	token := mustToken(t, base)

	tests := []struct {
		name    string
		header  http.Header
		advance time.Duration // clock time passed since the token was issued
		want    int
		code    string
	}{
		{"client headers", clientHeaders(), 0, 200, ""},
		{"token", bearer(token), 0, 200, ""},
		{"token, lower-case scheme", http.Header{"Authorization": {"bearer " + token}}, 0, 200, ""},
		{"token just before expiry", bearer(token), time.Hour - time.Second, 200, ""},
		{"expired token", bearer(token), time.Hour, 401, "api_error.auth.expired_access_token"},
		{"expired token, valid client headers", http.Header{"Authorization": {"Bearer " + token}, "X-Client-Id": clientHeaders()["X-Client-Id"], "X-Client-Secret": clientHeaders()["X-Client-Secret"]}, 2 * time.Hour, 401, "api_error.auth.expired_access_token"},
		{"no credentials", nil, 0, 401, "api_error.auth.unauthorized"},
		{"unknown token", bearer("not-a-token"), 0, 401, "api_error.auth.unauthorized"},
		{"empty bearer", http.Header{"Authorization": {"Bearer "}}, 0, 401, "api_error.auth.unauthorized"},
		{"token as basic", http.Header{"Authorization": {"Basic " + token}}, 0, 401, "api_error.auth.unauthorized"},
		{"wrong client secret", http.Header{"X-Client-Id": {sandbox.DefaultClientID}, "X-Client-Secret": {"nope"}}, 0, 401, "api_error.auth.unauthorized"},
		{"client id only", http.Header{"X-Client-Id": {sandbox.DefaultClientID}}, 0, 401, "api_error.auth.unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			elapsed.Store(int64(tt.advance))
			res, body := getIdentity(t, base, sandbox.LinkSeed, "", tt.header)
			if tt.want == http.StatusOK {
				if res.StatusCode != tt.want {
					t.Errorf("status %d, want 200; body %s", res.StatusCode, body)
				}
				return
			}
			checkError(t, res, body, tt.want, tt.code)
		})
	}
}
