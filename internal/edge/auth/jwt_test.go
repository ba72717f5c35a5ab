package auth_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mkgraph/mkgraph/internal/edge/auth"
)

func TestHS256(t *testing.T) {
	a := MustNew(t, auth.Config{Mode: "jwt", HS256Secret: testSecret, Issuer: "https://issuer.example", Audience: "mkgraph", BackendScope: auth.DefaultBackendScope})
	now := time.Now()
	claims := func(o jwt.MapClaims) jwt.MapClaims {
		return override(userClaims(jwt.MapClaims{"iss": "https://issuer.example", "aud": "mkgraph"}), o)
	}
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, testSecret, "", c) }
	valid := hs(claims(nil))
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(mustJSON(t, claims(jwt.MapClaims{"link_ids": []string{"link-a", "link-b", "victim"}}))) + "." + parts[2]
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims(nil))
	// "none" with the signature of the valid token, in case a verifier
	// checked a signature it was not asked for.
	noneWithSig := strings.Join(strings.Split(none, ".")[:2], ".") + "." + parts[2]
	ids := func(n int) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = fmt.Sprintf("link-%d", i)
		}
		return s
	}

	tests := []tokenCase{
		{name: "valid", token: valid, want: user1},
		{name: "expired", token: hs(claims(jwt.MapClaims{"exp": now.Add(-time.Hour).Unix()})), wantErr: msgExpired},
		{name: "expired within leeway", token: hs(claims(jwt.MapClaims{"exp": now.Add(-10 * time.Second).Unix()})), want: user1},
		{name: "expired just past leeway", token: hs(claims(jwt.MapClaims{"exp": now.Add(-45 * time.Second).Unix()})), wantErr: msgExpired},
		{name: "not yet valid", token: hs(claims(jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()})), wantErr: msgInvalid},
		{name: "nbf within leeway", token: hs(claims(jwt.MapClaims{"nbf": now.Add(10 * time.Second).Unix()})), want: user1},
		{name: "issued in the future", token: hs(claims(jwt.MapClaims{"iat": now.Add(time.Hour).Unix()})), wantErr: msgInvalid},
		{name: "iat within leeway", token: hs(claims(jwt.MapClaims{"iat": now.Add(10 * time.Second).Unix()})), want: user1},
		{name: "missing exp", token: hs(claims(jwt.MapClaims{"exp": nil})), wantErr: msgInvalid},
		{name: "exp not a number", token: hs(claims(jwt.MapClaims{"exp": "tomorrow"})), wantErr: msgInvalid},
		{name: "wrong secret", token: sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-at-least-32-bytes!!"), "", claims(nil)), wantErr: msgInvalid},
		{name: "HS384 with the secret", token: sign(t, jwt.SigningMethodHS384, testSecret, "", claims(nil)), wantErr: msgInvalid},
		{name: "HS512 with the secret", token: sign(t, jwt.SigningMethodHS512, testSecret, "", claims(nil)), wantErr: msgInvalid},
		{name: "alg none", token: none, wantErr: msgInvalid},
		{name: "alg none with a signature", token: noneWithSig, wantErr: msgInvalid},
		{name: "RS256 without JWKS", token: sign(t, jwt.SigningMethodRS256, rsaA(), "a", claims(nil)), wantErr: msgInvalid},
		{name: "tampered payload", token: tampered, wantErr: msgInvalid},
		{name: "signature not canonical base64", token: malleate(valid), wantErr: msgInvalid},
		{name: "signature stripped", token: parts[0] + "." + parts[1] + ".", wantErr: msgInvalid},
		{name: "garbage", token: "not.a.jwt", wantErr: msgInvalid},
		{name: "two segments", token: parts[0] + "." + parts[1], wantErr: msgInvalid},
		{name: "wrong iss", token: hs(claims(jwt.MapClaims{"iss": "https://evil.example"})), wantErr: msgInvalid},
		{name: "missing iss", token: hs(claims(jwt.MapClaims{"iss": nil})), wantErr: msgInvalid},
		{name: "wrong aud", token: hs(claims(jwt.MapClaims{"aud": "another-api"})), wantErr: msgInvalid},
		{name: "missing aud", token: hs(claims(jwt.MapClaims{"aud": nil})), wantErr: msgInvalid},
		{name: "aud array holding ours", token: hs(claims(jwt.MapClaims{"aud": []string{"another-api", "mkgraph"}})), want: user1},
		{name: "missing sub", token: hs(claims(jwt.MapClaims{"sub": nil})), wantErr: msgInvalid},
		{name: "empty sub", token: hs(claims(jwt.MapClaims{"sub": ""})), wantErr: msgInvalid},
		{name: "links as a string", token: hs(claims(jwt.MapClaims{"link_ids": " link-a  link-b "})), want: user1},
		{name: "links with duplicates", token: hs(claims(jwt.MapClaims{"link_ids": []string{"link-a", "link-b", "link-a"}})), want: user1},
		{name: "links missing", token: hs(claims(jwt.MapClaims{"link_ids": nil})),
			want: wantCaller{kind: auth.KindUser, subject: "user-1", mayNot: []string{"link-a", "link-b", ""}}},
		{name: "links null", token: hs(claims(jwt.MapClaims{"link_ids": json.RawMessage("null")})),
			want: wantCaller{kind: auth.KindUser, subject: "user-1", mayNot: []string{"link-a"}}},
		{name: "links empty", token: hs(claims(jwt.MapClaims{"link_ids": []string{}})),
			want: wantCaller{kind: auth.KindUser, subject: "user-1", mayNot: []string{"link-a", ""}}},
		{name: "links empty string", token: hs(claims(jwt.MapClaims{"link_ids": ""})),
			want: wantCaller{kind: auth.KindUser, subject: "user-1", mayNot: []string{"link-a", ""}}},
		{name: "links at the cap", token: hs(claims(jwt.MapClaims{"link_ids": ids(auth.MaxLinkIDs)})),
			want: wantCaller{kind: auth.KindUser, subject: "user-1", may: []string{"link-0", "link-999"}, mayNot: []string{"link-1000"}}},
		{name: "links over the cap", token: hs(claims(jwt.MapClaims{"link_ids": ids(auth.MaxLinkIDs + 1)})), wantErr: msgInvalid},
		{name: "links string over the cap", token: hs(claims(jwt.MapClaims{"link_ids": strings.Join(ids(auth.MaxLinkIDs+1), " ")})), wantErr: msgInvalid},
		{name: "links a number", token: hs(claims(jwt.MapClaims{"link_ids": 42})), wantErr: msgInvalid},
		{name: "links an object", token: hs(claims(jwt.MapClaims{"link_ids": map[string]any{"link-a": true}})), wantErr: msgInvalid},
		{name: "links with a number", token: hs(claims(jwt.MapClaims{"link_ids": []any{"link-a", 7}})), wantErr: msgInvalid},
		{name: "backend scope", token: hs(claims(jwt.MapClaims{"sub": "bff", "scope": "openid mkgraph:backend profile", "link_ids": nil})), want: backend("bff")},
		{name: "backend scp array", token: hs(claims(jwt.MapClaims{"sub": "bff", "scp": []string{"read", "mkgraph:backend"}})), want: backend("bff")},
		{name: "backend scp string", token: hs(claims(jwt.MapClaims{"sub": "bff", "scp": "mkgraph:backend"})), want: backend("bff")},
		{name: "scope not quite backend", token: hs(claims(jwt.MapClaims{"scope": "mkgraph:backend2 mkgraph:back"})), want: user1},
		{name: "scope array is not scope", token: hs(claims(jwt.MapClaims{"scope": []string{"mkgraph:backend extra"}})), want: user1},
		{name: "expired backend", token: hs(claims(jwt.MapClaims{"scope": "mkgraph:backend", "exp": now.Add(-time.Hour).Unix()})), wantErr: msgExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := a.Authenticate(bearerRequest(tt.token))
			checkOutcome(t, c, err, tt.want, tt.wantErr, tt.token)
		})
	}
}

func TestLeeway(t *testing.T) {
	now := time.Now()
	tests := []struct {
		leeway  time.Duration
		exp     time.Duration // from now
		wantErr string
	}{
		{0, -20 * time.Second, ""}, // the default, 30s
		{0, -40 * time.Second, msgExpired},
		{2 * time.Minute, -90 * time.Second, ""},
		{2 * time.Minute, -150 * time.Second, msgExpired},
		{time.Nanosecond, -2 * time.Second, msgExpired},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/%v", tt.leeway, tt.exp), func(t *testing.T) {
			a := MustNew(t, auth.Config{Mode: "jwt", HS256Secret: testSecret, Leeway: tt.leeway})
			tok := sign(t, jwt.SigningMethodHS256, testSecret, "", userClaims(jwt.MapClaims{"exp": now.Add(tt.exp).Unix()}))
			c, err := a.Authenticate(bearerRequest(tok))
			checkOutcome(t, c, err, user1, tt.wantErr, tok)
		})
	}
}

func TestConfiguredClaims(t *testing.T) {
	a := MustNew(t, auth.Config{Mode: "jwt", HS256Secret: testSecret, LinksClaim: "https://example.com/links", BackendScope: "facade:all"})
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, testSecret, "", c) }
	tests := []struct {
		name  string
		token string
		want  wantCaller
	}{
		{"own links claim", hs(userClaims(jwt.MapClaims{"link_ids": nil, "https://example.com/links": []string{"link-a", "link-b"}})), user1},
		{"default claim ignored", hs(userClaims(nil)), wantCaller{kind: auth.KindUser, subject: "user-1", mayNot: []string{"link-a", "link-b"}}},
		{"own backend scope", hs(userClaims(jwt.MapClaims{"sub": "svc", "scope": "facade:all"})), backend("svc")},
		{"default scope ignored", hs(userClaims(jwt.MapClaims{"scope": "mkgraph:backend"})), wantCaller{kind: auth.KindUser, subject: "user-1", mayNot: []string{"link-a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := a.Authenticate(bearerRequest(tt.token))
			checkCaller(t, c, err, tt.want)
		})
	}
}

func TestAuthorizationHeader(t *testing.T) {
	a := MustNew(t, auth.Config{Mode: "jwt", HS256Secret: testSecret})
	tok := sign(t, jwt.SigningMethodHS256, testSecret, "", userClaims(nil))
	long := sign(t, jwt.SigningMethodHS256, testSecret, "", userClaims(jwt.MapClaims{"pad": strings.Repeat("x", 70<<10)}))
	tests := []struct {
		name    string
		header  []string // Authorization values
		wantErr string
	}{
		{"Bearer", []string{"Bearer " + tok}, ""},
		{"bearer", []string{"bearer " + tok}, ""},
		{"BEARER", []string{"BEARER " + tok}, ""},
		{"extra spaces", []string{"  Bearer   " + tok + " "}, ""},
		{"no header", nil, msgMissing},
		{"Basic", []string{"Basic dXNlcjpwYXNz"}, msgBadScheme},
		{"token without scheme", []string{tok}, msgBadScheme},
		{"Bearer without token", []string{"Bearer"}, msgInvalid},
		{"Bearer and space", []string{"Bearer "}, msgInvalid},
		{"empty header", []string{""}, msgBadScheme},
		{"two tokens", []string{"Bearer " + tok + " " + tok}, msgInvalid},
		{"two headers", []string{"Bearer " + tok, "Bearer " + tok}, msgBadScheme},
		{"token too long", []string{"Bearer " + long}, msgInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/query", nil)
			for _, v := range tt.header {
				r.Header.Add("Authorization", v)
			}
			c, err := a.Authenticate(r)
			checkOutcome(t, c, err, user1, tt.wantErr, tok)
		})
	}
}

// TestConcurrentUsers: two users whose link sets differ authenticate at the
// same time through one Authenticator; each sees only their own links.
func TestConcurrentUsers(t *testing.T) {
	a := MustNew(t, auth.Config{Mode: "jwt", HS256Secret: testSecret})
	tokA := sign(t, jwt.SigningMethodHS256, testSecret, "", userClaims(jwt.MapClaims{"sub": "alice", "link_ids": []string{"link-alice"}}))
	tokB := sign(t, jwt.SigningMethodHS256, testSecret, "", userClaims(jwt.MapClaims{"sub": "bob", "link_ids": []string{"link-bob"}}))
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			tok, me, other := tokA, "link-alice", "link-bob"
			if i%2 == 1 {
				tok, me, other = tokB, "link-bob", "link-alice"
			}
			c, err := a.Authenticate(bearerRequest(tok))
			if err != nil {
				t.Errorf("Authenticate: %v", err)
				return
			}
			if !c.MayRead(me) || c.MayRead(other) {
				t.Errorf("%s: MayRead(%s) = %v, MayRead(%s) = %v", c.ID(), me, c.MayRead(me), other, c.MayRead(other))
			}
		})
	}
	wg.Wait()
}

// TestBackendScopeOptIn: without a configured backend scope no JWT is a
// backend, whatever scope it claims.
func TestBackendScopeOptIn(t *testing.T) {
	a := MustNew(t, auth.Config{Mode: "jwt", HS256Secret: testSecret})
	c, err := a.Authenticate(bearerRequest(sign(t, jwt.SigningMethodHS256, testSecret, "", userClaims(jwt.MapClaims{"scope": "openid mkgraph:backend"}))))
	if err != nil || c.Kind != auth.KindUser || c.MayRead("link-z") {
		t.Errorf("scope mkgraph:backend without MKGRAPH_JWT_BACKEND_SCOPE: %+v, %v; want an end user", c, err)
	}
}
