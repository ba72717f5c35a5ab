package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/edge/auth"
	"github.com/mkgraph/mkgraph/internal/edge/httperr"
)

// TestMain fails the package if any goroutine outlives the tests: Close
// must stop the JWKS refresh.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Messages of facade.unauthenticated, as clients see them.
const (
	msgMissing     = "Missing credentials: send Authorization: Bearer <token>."
	msgInvalid     = "Invalid token."
	msgExpired     = "Token expired."
	msgBadScheme   = "Invalid credentials: the Authorization header must be Bearer <token>."
	msgBadAPIKey   = "Invalid API key."
	msgConflicting = "Invalid credentials: send a bearer token or an API key, not both."
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test-secret")

// Keys are generated once: RSA key generation is slow under -race.
var (
	rsaA = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	rsaB = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	rsaC = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	ecA  = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P256()) })
	ecB  = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P256()) })
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// MustNew returns an Authenticator closed at the end of the test.
func MustNew(tb testing.TB, cfg auth.Config) *auth.Authenticator {
	tb.Helper()
	a, err := auth.New(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(a.Close)
	return a
}

// sign returns a JWT of claims signed with key; kid is set when not empty.
func sign(tb testing.TB, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	tb.Helper()
	t := jwt.NewWithClaims(m, claims)
	if kid != "" {
		t.Header["kid"] = kid
	}
	s, err := t.SignedString(key)
	if err != nil {
		tb.Fatalf("SignedString: %v", err)
	}
	return s
}

// userClaims are the claims of a valid end-user token; with overrides
// (a nil value deletes the claim).
func userClaims(overrides jwt.MapClaims) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"sub":      "user-1",
		"iat":      now.Unix(),
		"exp":      now.Add(time.Hour).Unix(),
		"link_ids": []string{"link-a", "link-b"},
	}
	for k, v := range overrides {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func bearerRequest(token string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/query", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// checkRefused checks that err is facade.unauthenticated with message want,
// and that neither the error nor its message echoes secret.
func checkRefused(tb testing.TB, c *auth.Caller, err error, want, secret string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("Authenticate = %+v, nil; want error %q", c, want)
	}
	if c != nil {
		tb.Errorf("Authenticate returned a caller (%+v) with its error", c)
	}
	var e *apierr.Error
	if !errors.As(err, &e) {
		tb.Fatalf("Authenticate error %T (%v), want *apierr.Error", err, err)
	}
	if e.Code != apierr.CodeUnauthenticated || e.Message != want {
		tb.Errorf("Authenticate error = %q %q, want %q %q", e.Code, e.Message, apierr.CodeUnauthenticated, want)
	}
	if secret != "" && (strings.Contains(err.Error(), secret) || strings.Contains(e.Message, secret)) {
		tb.Errorf("Authenticate error %q echoes the credential", err)
	}
}

// wantCaller describes an authenticated caller.
type wantCaller struct {
	kind    auth.Kind
	subject string
	may     []string // links it may read
	mayNot  []string // links it may not read
}

func checkCaller(tb testing.TB, c *auth.Caller, err error, want wantCaller) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("Authenticate: %v", err)
	}
	if c.Kind != want.kind || c.Subject != want.subject {
		tb.Errorf("caller = %v %q, want %v %q", c.Kind, c.Subject, want.kind, want.subject)
	}
	for _, id := range want.may {
		if !c.MayRead(id) {
			tb.Errorf("MayRead(%q) = false, want true", id)
		}
	}
	for _, id := range want.mayNot {
		if c.MayRead(id) {
			tb.Errorf("MayRead(%q) = true, want false", id)
		}
	}
}

var (
	user1   = wantCaller{kind: auth.KindUser, subject: "user-1", may: []string{"link-a", "link-b"}, mayNot: []string{"link-c", "", "link-a "}}
	backend = func(name string) wantCaller {
		return wantCaller{kind: auth.KindBackend, subject: name, may: []string{"link-a", "link-z", "anything"}}
	}
)

func TestHS256(t *testing.T) {
	a := MustNew(t, auth.Config{Mode: "jwt", HS256Secret: testSecret, Issuer: "https://issuer.example", Audience: "mkgraph", BackendScope: auth.DefaultBackendScope})
	now := time.Now()
	claims := func(o jwt.MapClaims) jwt.MapClaims {
		c := userClaims(jwt.MapClaims{"iss": "https://issuer.example", "aud": "mkgraph"})
		for k, v := range o {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
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

	tests := []struct {
		name    string
		token   string
		want    wantCaller
		wantErr string
	}{
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
			if tt.wantErr != "" {
				checkRefused(t, c, err, tt.wantErr, tt.token)
				return
			}
			checkCaller(t, c, err, tt.want)
		})
	}
}

// malleate changes the unused low bits of the token's last base64
// character: a lax decoder reads the same signature, a strict one refuses.
func malleate(token string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, token[len(token)-1])
	return token[:len(token)-1] + string(alphabet[i^1])
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
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
			if tt.wantErr != "" {
				checkRefused(t, c, err, tt.wantErr, tok)
				return
			}
			checkCaller(t, c, err, user1)
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
			if tt.wantErr != "" {
				checkRefused(t, c, err, tt.wantErr, tok)
				return
			}
			checkCaller(t, c, err, user1)
		})
	}
}

// jwk is a public key as published in a JWKS.
type jwk struct {
	kid string
	alg string     // "" leaves alg out
	use jwkset.USE // "" is sig
	key crypto.PublicKey
}

// jwksJSON returns the JWK Set of keys, built with jwkset.
func jwksJSON(tb testing.TB, keys ...jwk) []byte {
	tb.Helper()
	store := jwkset.NewMemoryStorage()
	for _, k := range keys {
		use := k.use
		if use == "" {
			use = jwkset.UseSig
		}
		j, err := jwkset.NewJWKFromKey(k.key, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.ALG(k.alg), USE: use}})
		if err != nil {
			tb.Fatalf("NewJWKFromKey(%s): %v", k.kid, err)
		}
		if err := store.KeyWrite(context.Background(), j); err != nil {
			tb.Fatal(err)
		}
	}
	raw, err := store.JSONPublic(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func writeFile(tb testing.TB, name string, data []byte) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// pemPublic is the PEM of pub, the "secret" of an algorithm-confusion
// attack: a verifier that took the alg from the token would HMAC with it.
func pemPublic(tb testing.TB, pub any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// jwksCases are the asymmetric-key cases run against a JWKS file and URL
// holding rsa-a (no alg), ec-a (ES256), rsa-pinned (alg RS256).
func jwksCases(t *testing.T) []struct {
	name    string
	token   string
	want    wantCaller
	wantErr string
} {
	c := userClaims(nil)
	rsaPEM := pemPublic(t, &rsaA().PublicKey)
	return []struct {
		name    string
		token   string
		want    wantCaller
		wantErr string
	}{
		{name: "RS256", token: sign(t, jwt.SigningMethodRS256, rsaA(), "rsa-a", c), want: user1},
		{name: "RS384", token: sign(t, jwt.SigningMethodRS384, rsaA(), "rsa-a", c), want: user1},
		{name: "RS512", token: sign(t, jwt.SigningMethodRS512, rsaA(), "rsa-a", c), want: user1},
		{name: "PS256", token: sign(t, jwt.SigningMethodPS256, rsaA(), "rsa-a", c), want: user1},
		{name: "ES256", token: sign(t, jwt.SigningMethodES256, ecA(), "ec-a", c), want: user1},
		{name: "RS256 pinned", token: sign(t, jwt.SigningMethodRS256, rsaA(), "rsa-pinned", c), want: user1},
		{name: "RS256 without kid", token: sign(t, jwt.SigningMethodRS256, rsaA(), "", c), want: user1},
		{name: "ES256 without kid", token: sign(t, jwt.SigningMethodES256, ecA(), "", c), want: user1},
		{name: "RS384 without kid", token: sign(t, jwt.SigningMethodRS384, rsaA(), "", c), want: user1},
		{name: "PS384 not allowed", token: sign(t, jwt.SigningMethodPS384, rsaA(), "rsa-a", c), wantErr: msgInvalid},
		{name: "RS384 on a key pinned to RS256", token: sign(t, jwt.SigningMethodRS384, rsaA(), "rsa-pinned", c), wantErr: msgInvalid},
		{name: "expired RS256", token: sign(t, jwt.SigningMethodRS256, rsaA(), "rsa-a", userClaims(jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()})), wantErr: msgExpired},
		{name: "unknown kid", token: sign(t, jwt.SigningMethodRS256, rsaA(), "rsa-zzz", c), wantErr: msgInvalid},
		{name: "kid of another key", token: sign(t, jwt.SigningMethodRS256, rsaB(), "rsa-a", c), wantErr: msgInvalid},
		{name: "unlisted key without kid", token: sign(t, jwt.SigningMethodES256, ecB(), "", c), wantErr: msgInvalid},
		{name: "encryption key without kid", token: sign(t, jwt.SigningMethodRS256, rsaB(), "", c), wantErr: msgInvalid},
		{name: "pinned key without kid", token: sign(t, jwt.SigningMethodRS256, rsaC(), "", c), want: user1},
		{name: "pinned key, other alg, without kid", token: sign(t, jwt.SigningMethodRS384, rsaC(), "", c), wantErr: msgInvalid},
		{name: "ES256 with the kid of an RSA key", token: sign(t, jwt.SigningMethodES256, ecA(), "rsa-a", c), wantErr: msgInvalid},
		{name: "RS256 with the kid of an EC key", token: sign(t, jwt.SigningMethodRS256, rsaA(), "ec-a", c), wantErr: msgInvalid},
		{name: "ES256 by another EC key", token: sign(t, jwt.SigningMethodES256, ecB(), "ec-a", c), wantErr: msgInvalid},
		{name: "alg confusion: HS256 keyed with the RSA public key PEM", token: sign(t, jwt.SigningMethodHS256, rsaPEM, "rsa-a", c), wantErr: msgInvalid},
		{name: "alg confusion: HS256 keyed with the RSA modulus", token: sign(t, jwt.SigningMethodHS256, rsaA().PublicKey.N.Bytes(), "rsa-a", c), wantErr: msgInvalid},
		{name: "alg none", token: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa-a", c), wantErr: msgInvalid},
		{name: "key for encryption", token: sign(t, jwt.SigningMethodRS256, rsaB(), "rsa-enc", c), wantErr: msgInvalid},
	}
}

func testKeys() []jwk {
	return []jwk{
		{kid: "rsa-a", key: &rsaA().PublicKey},
		{kid: "ec-a", alg: "ES256", key: &ecA().PublicKey},
		{kid: "rsa-pinned", alg: "RS256", key: &rsaA().PublicKey},
		{kid: "rsa-enc", use: jwkset.UseEnc, key: &rsaB().PublicKey},
		{kid: "rsa-c-pinned", alg: "RS256", key: &rsaC().PublicKey},
	}
}

func TestJWKSFile(t *testing.T) {
	file := writeFile(t, "jwks.json", jwksJSON(t, testKeys()...))
	configs := map[string]auth.Config{
		"JWKS file":             {Mode: "jwt", JWKSFile: file},
		"JWKS file and HS256":   {Mode: "jwt", JWKSFile: file, HS256Secret: testSecret},
		"JWKS file and API key": {Mode: "jwt", JWKSFile: file, APIKeysFile: writeFile(t, "keys", []byte("bff "+auth.HashAPIKey("k")+"\n"))},
	}
	for cname, cfg := range configs {
		a := MustNew(t, cfg)
		for _, tt := range jwksCases(t) {
			t.Run(cname+"/"+tt.name, func(t *testing.T) {
				c, err := a.Authenticate(bearerRequest(tt.token))
				if tt.wantErr != "" {
					checkRefused(t, c, err, tt.wantErr, tt.token)
					return
				}
				checkCaller(t, c, err, tt.want)
			})
		}
	}
}

// jwksServer serves a JWK Set that a test can change, and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	status  int
	fetches atomic.Int32
}

func newJWKSServer(tb testing.TB, body []byte) *jwksServer {
	s := &jwksServer{body: body, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		body, status := s.body, s.status
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(body)
	}))
	tb.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func TestJWKSURL(t *testing.T) {
	srv := newJWKSServer(t, jwksJSON(t, testKeys()...))
	configs := map[string]auth.Config{
		"JWKS URL":                {Mode: "jwt", JWKSURL: srv.URL + "/.well-known/jwks.json"},
		"JWKS URL and HS256":      {Mode: "jwt", JWKSURL: srv.URL, HS256Secret: testSecret},
		"JWKS URL, custom client": {Mode: "jwt", JWKSURL: srv.URL, HTTPClient: srv.Client()},
	}
	for cname, cfg := range configs {
		a := MustNew(t, cfg)
		for _, tt := range jwksCases(t) {
			t.Run(cname+"/"+tt.name, func(t *testing.T) {
				c, err := a.Authenticate(bearerRequest(tt.token))
				if tt.wantErr != "" {
					checkRefused(t, c, err, tt.wantErr, tt.token)
					return
				}
				checkCaller(t, c, err, tt.want)
			})
		}
	}
}

// TestJWKSFileAndURL: keys of both are accepted.
func TestJWKSFileAndURL(t *testing.T) {
	srv := newJWKSServer(t, jwksJSON(t, jwk{kid: "from-url", key: &rsaB().PublicKey}))
	file := writeFile(t, "jwks.json", jwksJSON(t, jwk{kid: "from-file", key: &ecA().PublicKey}))
	a := MustNew(t, auth.Config{Mode: "jwt", JWKSURL: srv.URL, JWKSFile: file})
	for _, tok := range []string{
		sign(t, jwt.SigningMethodRS256, rsaB(), "from-url", userClaims(nil)),
		sign(t, jwt.SigningMethodES256, ecA(), "from-file", userClaims(nil)),
	} {
		c, err := a.Authenticate(bearerRequest(tok))
		checkCaller(t, c, err, user1)
	}
}

// TestJWKSRotation: the issuer replaces key a by key b. The first token
// signed with b has an unknown kid, which makes the facade fetch the JWKS
// again and accept it; a, gone from the JWKS, is refused from then on, and
// the refusals of unknown kids that follow do not fetch again (rate limit).
func TestJWKSRotation(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			var (
				m          jwt.SigningMethod
				keyA, keyB crypto.Signer
			)
			if alg == "RS256" {
				m, keyA, keyB = jwt.SigningMethodRS256, rsaA(), rsaB()
			} else {
				m, keyA, keyB = jwt.SigningMethodES256, ecA(), ecB()
			}
			srv := newJWKSServer(t, jwksJSON(t, jwk{kid: "a", alg: alg, key: keyA.Public()}))
			a := MustNew(t, auth.Config{Mode: "jwt", JWKSURL: srv.URL})
			tokA := sign(t, m, keyA, "a", userClaims(nil))
			tokB := sign(t, m, keyB, "b", userClaims(nil))

			c, err := a.Authenticate(bearerRequest(tokA))
			checkCaller(t, c, err, user1)

			srv.set(http.StatusOK, jwksJSON(t, jwk{kid: "b", alg: alg, key: keyB.Public()}))
			c, err = a.Authenticate(bearerRequest(tokB))
			checkCaller(t, c, err, user1)
			if n := srv.fetches.Load(); n != 2 {
				t.Errorf("JWKS fetched %d times after a new kid, want 2 (start, new kid)", n)
			}

			start := time.Now()
			c, err = a.Authenticate(bearerRequest(tokA))
			checkRefused(t, c, err, msgInvalid, tokA)
			c, err = a.Authenticate(bearerRequest(sign(t, m, keyB, "forged-kid", userClaims(nil))))
			checkRefused(t, c, err, msgInvalid, "")
			if n := srv.fetches.Load(); n != 2 {
				t.Errorf("JWKS fetched %d times after refused kids, want still 2 (rate-limited)", n)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("refusing rate-limited unknown kids took %v; they must not wait for the limit", d)
			}
			c, err = a.Authenticate(bearerRequest(tokB))
			checkCaller(t, c, err, user1)
		})
	}
}

// TestJWKSUnknownKID: an unknown kid fetches the JWKS once (it might be a
// new key), is refused, and a second one does not fetch again.
func TestJWKSUnknownKID(t *testing.T) {
	srv := newJWKSServer(t, jwksJSON(t, testKeys()...))
	a := MustNew(t, auth.Config{Mode: "jwt", JWKSURL: srv.URL})
	for i, want := range []int32{2, 2, 2} {
		tok := sign(t, jwt.SigningMethodRS256, rsaB(), fmt.Sprintf("unknown-%d", i), userClaims(nil))
		c, err := a.Authenticate(bearerRequest(tok))
		checkRefused(t, c, err, msgInvalid, tok)
		if n := srv.fetches.Load(); n != want {
			t.Errorf("after unknown kid %d: %d fetches, want %d", i, n, want)
		}
	}
}

func TestJWKSURLAtStart(t *testing.T) {
	huge := []byte(`{"keys":[],"pad":"` + strings.Repeat("x", 2<<20) + `"}`)
	tests := []struct {
		name   string
		status int
		body   []byte
	}{
		{"server error", http.StatusInternalServerError, []byte(`{}`)},
		{"not found", http.StatusNotFound, nil},
		{"not JSON", http.StatusOK, []byte(`<html>`)},
		{"too large", http.StatusOK, huge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, nil)
			srv.set(tt.status, tt.body)
			a, err := auth.New(context.Background(), auth.Config{Mode: "jwt", JWKSURL: srv.URL})
			if err == nil {
				a.Close()
				t.Fatal("New succeeded with an unreadable JWKS URL")
			}
			if !strings.Contains(err.Error(), "MKGRAPH_JWT_JWKS_URL") {
				t.Errorf("New error %q does not name MKGRAPH_JWT_JWKS_URL", err)
			}
		})
	}
}

// TestAlgConfusionWithSecret: when an HS256 secret and JWKS keys are both
// configured, an HS256 token is checked with the secret only, never with a
// JWKS key (whose public bytes an attacker knows).
func TestAlgConfusionWithSecret(t *testing.T) {
	rsaPEM := pemPublic(t, &rsaA().PublicKey)
	file := writeFile(t, "jwks.json", jwksJSON(t, testKeys()...))
	a := MustNew(t, auth.Config{Mode: "jwt", JWKSFile: file, HS256Secret: rsaPEM[:len(rsaPEM)-1]})
	// Keyed with the secret: accepted, even with the kid of an RSA key.
	tok := sign(t, jwt.SigningMethodHS256, rsaPEM[:len(rsaPEM)-1], "rsa-a", userClaims(nil))
	c, err := a.Authenticate(bearerRequest(tok))
	checkCaller(t, c, err, user1)
	// Keyed with the whole PEM (the published key): refused.
	tok = sign(t, jwt.SigningMethodHS256, rsaPEM, "rsa-a", userClaims(nil))
	c, err = a.Authenticate(bearerRequest(tok))
	checkRefused(t, c, err, msgInvalid, tok)
}

func TestAPIKeys(t *testing.T) {
	keysFile := writeFile(t, "keys", []byte(strings.Join([]string{
		"# backends allowed to read any link",
		"",
		"bff-web " + auth.HashAPIKey("web-key-0123456789"),
		"   bff-mobile   " + strings.ToUpper(auth.HashAPIKey("mobile-key-0123456789")) + "   # rotated 2026-11",
		"\t",
	}, "\n")))
	a := MustNew(t, auth.Config{Mode: "jwt", APIKeysFile: keysFile, HS256Secret: testSecret})
	custom := MustNew(t, auth.Config{Mode: "jwt", APIKeysFile: keysFile, APIKeyHeader: "x-backend-key"})
	noKeys := MustNew(t, auth.Config{Mode: "jwt", HS256Secret: testSecret})
	tok := sign(t, jwt.SigningMethodHS256, testSecret, "", userClaims(nil))

	tests := []struct {
		name    string
		a       *auth.Authenticator
		header  http.Header
		want    wantCaller
		wantErr string
	}{
		{name: "first key", a: a, header: http.Header{"X-Api-Key": {"web-key-0123456789"}}, want: backend("bff-web")},
		{name: "second key, upper-case hash", a: a, header: http.Header{"X-Api-Key": {"mobile-key-0123456789"}}, want: backend("bff-mobile")},
		{name: "unlisted key", a: a, header: http.Header{"X-Api-Key": {"web-key-012345678"}}, wantErr: msgBadAPIKey},
		{name: "the hash itself", a: a, header: http.Header{"X-Api-Key": {auth.HashAPIKey("web-key-0123456789")}}, wantErr: msgBadAPIKey},
		{name: "the name", a: a, header: http.Header{"X-Api-Key": {"bff-web"}}, wantErr: msgBadAPIKey},
		{name: "empty key", a: a, header: http.Header{"X-Api-Key": {""}}, wantErr: msgBadAPIKey},
		{name: "two keys", a: a, header: http.Header{"X-Api-Key": {"web-key-0123456789", "web-key-0123456789"}}, wantErr: msgBadAPIKey},
		{name: "key too long", a: a, header: http.Header{"X-Api-Key": {strings.Repeat("k", 600)}}, wantErr: msgBadAPIKey},
		{name: "key and bearer token", a: a, header: http.Header{"X-Api-Key": {"web-key-0123456789"}, "Authorization": {"Bearer " + tok}}, wantErr: msgConflicting},
		{name: "bad key, good token", a: a, header: http.Header{"X-Api-Key": {"nope"}, "Authorization": {"Bearer " + tok}}, wantErr: msgConflicting},
		{name: "bearer token alone", a: a, header: http.Header{"Authorization": {"Bearer " + tok}}, want: user1},
		{name: "custom header", a: custom, header: http.Header{"X-Backend-Key": {"web-key-0123456789"}}, want: backend("bff-web")},
		{name: "custom header: default header unknown", a: custom, header: http.Header{"X-Api-Key": {"web-key-0123456789"}}, wantErr: msgMissing},
		{name: "no keys file", a: noKeys, header: http.Header{"X-Api-Key": {"web-key-0123456789"}}, wantErr: msgBadAPIKey},
		{name: "keys only: bearer token", a: custom, header: http.Header{"Authorization": {"Bearer " + tok}}, wantErr: msgInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/query", nil)
			r.Header = tt.header
			c, err := tt.a.Authenticate(r)
			if tt.wantErr != "" {
				key := ""
				if v := tt.header.Get("X-Api-Key"); v != "" {
					key = v
				}
				checkRefused(t, c, err, tt.wantErr, key)
				return
			}
			checkCaller(t, c, err, tt.want)
		})
	}
}

func TestHashAPIKey(t *testing.T) {
	// FIPS 180-2 test vector.
	if got, want := auth.HashAPIKey("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("HashAPIKey(%q) = %q, want %q", "abc", got, want)
	}
}

func TestAPIKeysFileErrors(t *testing.T) {
	h := auth.HashAPIKey("some-key")
	tests := []struct {
		name    string
		content string
		leak    string // must not appear in the error
	}{
		{"empty", "", ""},
		{"comments only", "# nothing\n\n", ""},
		{"raw key instead of hash", "bff super-secret-raw-key\n", "super-secret-raw-key"},
		{"hash not hex", "bff " + strings.Repeat("zz", 32) + "\n", "zzzz"},
		{"name only", "bff\n", ""},
		{"extra field", "bff " + h + " extra\n", h},
		{"duplicate name", "bff " + h + "\nbff " + auth.HashAPIKey("other") + "\n", h},
		{"duplicate key", "bff " + h + "\nops " + h + "\n", h},
		{"bad name", "b/f\x01f " + h + "\n", h},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.New(context.Background(), auth.Config{Mode: "jwt", APIKeysFile: writeFile(t, "keys", []byte(tt.content))})
			if err == nil {
				t.Fatal("New accepted the keys file")
			}
			if !strings.Contains(err.Error(), "MKGRAPH_API_KEYS_FILE") {
				t.Errorf("New error %q does not name MKGRAPH_API_KEYS_FILE", err)
			}
			if tt.leak != "" && strings.Contains(err.Error(), tt.leak) {
				t.Errorf("New error %q echoes the file's content", err)
			}
		})
	}
}

func TestJWKSFileErrors(t *testing.T) {
	privRSA, err := jwkset.NewJWKFromKey(rsaA(), jwkset.JWKOptions{Marshal: jwkset.JWKMarshalOptions{Private: true}, Metadata: jwkset.JWKMetadataOptions{KID: "priv"}})
	if err != nil {
		t.Fatal(err)
	}
	private := mustJSON(t, jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{privRSA.Marshal()}})
	tests := []struct {
		name    string
		content []byte
	}{
		{"not JSON", []byte("-----BEGIN PUBLIC KEY-----")},
		{"no keys", []byte(`{"keys":[]}`)},
		{"symmetric key", []byte(`{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}`)},
		{"private key", private},
		{"broken key", []byte(`{"keys":[{"kty":"RSA","kid":"x","n":"!!","e":"AQAB"}]}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.New(context.Background(), auth.Config{Mode: "jwt", JWKSFile: writeFile(t, "jwks.json", tt.content)})
			if err == nil {
				t.Fatal("New accepted the JWKS file")
			}
			if !strings.Contains(err.Error(), "MKGRAPH_JWT_JWKS_FILE") {
				t.Errorf("New error %q does not name MKGRAPH_JWT_JWKS_FILE", err)
			}
		})
	}
}

func TestNewConfigErrors(t *testing.T) {
	secret := "short-secret-never-echoed"
	tests := []struct {
		name    string
		cfg     auth.Config
		want    []string // substrings of the error
		notWant string
	}{
		{"mode unset", auth.Config{HS256Secret: testSecret}, []string{"MKGRAPH_AUTH"}, ""},
		{"mode unknown", auth.Config{Mode: "basic", HS256Secret: testSecret}, []string{"MKGRAPH_AUTH"}, ""},
		{"jwt without credentials", auth.Config{Mode: "jwt"}, []string{"MKGRAPH_JWT_HS256_SECRET", "MKGRAPH_JWT_JWKS_URL", "MKGRAPH_JWT_JWKS_FILE", "MKGRAPH_API_KEYS_FILE"}, ""},
		{"short secret", auth.Config{Mode: "jwt", HS256Secret: []byte(secret)}, []string{"MKGRAPH_JWT_HS256_SECRET", "32"}, secret},
		{"missing JWKS file", auth.Config{Mode: "jwt", JWKSFile: filepath.Join(t.TempDir(), "nope.json")}, []string{"MKGRAPH_JWT_JWKS_FILE"}, ""},
		{"JWKS URL over http", auth.Config{Mode: "jwt", JWKSURL: "http://issuer.example/jwks.json"}, []string{"MKGRAPH_JWT_JWKS_URL", "https"}, ""},
		{"JWKS URL relative", auth.Config{Mode: "jwt", JWKSURL: "/jwks.json"}, []string{"MKGRAPH_JWT_JWKS_URL"}, ""},
		{"JWKS URL unparsable", auth.Config{Mode: "jwt", JWKSURL: "https://[::1"}, []string{"MKGRAPH_JWT_JWKS_URL"}, ""},
		{"JWKS URL other scheme", auth.Config{Mode: "jwt", JWKSURL: "file:///etc/jwks.json"}, []string{"MKGRAPH_JWT_JWKS_URL"}, ""},
		{"missing keys file", auth.Config{Mode: "jwt", APIKeysFile: filepath.Join(t.TempDir(), "nope")}, []string{"MKGRAPH_API_KEYS_FILE"}, ""},
		{"negative leeway", auth.Config{Mode: "jwt", HS256Secret: testSecret, Leeway: -time.Second}, []string{"MKGRAPH_JWT_LEEWAY"}, ""},
		{"huge leeway", auth.Config{Mode: "jwt", HS256Secret: testSecret, Leeway: time.Hour}, []string{"MKGRAPH_JWT_LEEWAY"}, ""},
		{"links claim sub", auth.Config{Mode: "jwt", HS256Secret: testSecret, LinksClaim: "sub"}, []string{"MKGRAPH_JWT_LINKS_CLAIM"}, ""},
		{"links claim scope", auth.Config{Mode: "jwt", HS256Secret: testSecret, LinksClaim: "scope"}, []string{"MKGRAPH_JWT_LINKS_CLAIM"}, ""},
		{"backend scope with spaces", auth.Config{Mode: "jwt", HS256Secret: testSecret, BackendScope: "a b"}, []string{"MKGRAPH_JWT_BACKEND_SCOPE"}, ""},
		{"API key header Authorization", auth.Config{Mode: "jwt", HS256Secret: testSecret, APIKeyHeader: "authorization"}, []string{"APIKeyHeader"}, ""},
		{"API key header invalid", auth.Config{Mode: "jwt", HS256Secret: testSecret, APIKeyHeader: "X Api Key"}, []string{"APIKeyHeader"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := auth.New(context.Background(), tt.cfg)
			if err == nil {
				a.Close()
				t.Fatal("New succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New error %q does not mention %q", err, w)
				}
			}
			if tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("New error %q echoes a secret", err)
			}
		})
	}
}

func TestNewAccepts(t *testing.T) {
	for name, cfg := range map[string]auth.Config{
		"JWT upper case":        {Mode: " JWT ", HS256Secret: testSecret},
		"secret of 32 bytes":    {Mode: "jwt", HS256Secret: testSecret[:32]},
		"none ignores the rest": {Mode: "none", HS256Secret: []byte("short"), JWKSFile: "/nonexistent", APIKeysFile: "/nonexistent", JWKSURL: "http://evil.example", Leeway: -1},
	} {
		t.Run(name, func(t *testing.T) {
			MustNew(t, cfg)
		})
	}
}

func TestModeNone(t *testing.T) {
	a := MustNew(t, auth.Config{Mode: "none"})
	forged := sign(t, jwt.SigningMethodHS256, []byte("whatever-whatever-whatever-whatev"), "", userClaims(nil))
	for name, h := range map[string]http.Header{
		"no credentials": {},
		"forged token":   {"Authorization": {"Bearer " + forged}},
		"bad scheme":     {"Authorization": {"Basic Zm9vOmJhcg=="}},
		"bad API key":    {"X-Api-Key": {"nope"}},
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/query", nil)
			r.Header = h
			c, err := a.Authenticate(r)
			checkCaller(t, c, err, wantCaller{kind: auth.KindAnonymous, may: []string{"link-a", "link-z"}})
			if got := c.ID(); got != "anonymous" {
				t.Errorf("ID() = %q, want anonymous", got)
			}
		})
	}
}

func TestMiddleware(t *testing.T) {
	a := MustNew(t, auth.Config{Mode: "jwt", HS256Secret: testSecret})
	tok := sign(t, jwt.SigningMethodHS256, testSecret, "", userClaims(nil))
	expired := sign(t, jwt.SigningMethodHS256, testSecret, "", userClaims(jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()}))

	var got *auth.Caller
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = auth.FromContext(r.Context())
		w.WriteHeader(http.StatusTeapot)
	})
	var failed *apierr.Error
	fail := func(w http.ResponseWriter, r *http.Request, err *apierr.Error) {
		failed = err
		httperr.Write(w, r, http.StatusUnauthorized, err)
	}

	tests := []struct {
		name       string
		fail       func(http.ResponseWriter, *http.Request, *apierr.Error)
		authz      string
		wantStatus int
		wantMsg    string
	}{
		{"success", fail, "Bearer " + tok, http.StatusTeapot, ""},
		{"missing", fail, "", http.StatusUnauthorized, msgMissing},
		{"expired", fail, "Bearer " + expired, http.StatusUnauthorized, msgExpired},
		{"forged", fail, "Bearer " + tok + "x", http.StatusUnauthorized, msgInvalid},
		{"default fail", nil, "Bearer " + tok + "x", http.StatusUnauthorized, msgInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, failed = nil, nil
			h := a.Middleware(tt.fail)(next)
			r := httptest.NewRequest(http.MethodPost, "/query", nil)
			if tt.authz != "" {
				r.Header.Set("Authorization", tt.authz)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if tt.wantMsg == "" {
				checkCaller(t, got, nil, user1)
				if v := w.Header().Get("WWW-Authenticate"); v != "" {
					t.Errorf("WWW-Authenticate = %q on success", v)
				}
				if failed != nil {
					t.Errorf("fail called on success with %v", failed)
				}
				return
			}
			if got != nil {
				t.Errorf("next handler called with %+v", got)
			}
			if v := w.Header().Get("WWW-Authenticate"); v != "Bearer" {
				t.Errorf("WWW-Authenticate = %q, want Bearer", v)
			}
			if tt.fail != nil && (failed == nil || failed.Code != apierr.CodeUnauthenticated || failed.Message != tt.wantMsg) {
				t.Errorf("fail called with %v, want %s %q", failed, apierr.CodeUnauthenticated, tt.wantMsg)
			}
			var body struct {
				Errors []struct {
					Message    string         `json:"message"`
					Extensions map[string]any `json:"extensions"`
				} `json:"errors"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if len(body.Errors) != 1 || body.Errors[0].Message != tt.wantMsg || body.Errors[0].Extensions["code"] != apierr.CodeUnauthenticated {
				t.Errorf("body = %s, want one %s error %q", w.Body, apierr.CodeUnauthenticated, tt.wantMsg)
			}
			if strings.Contains(w.Body.String(), strings.TrimPrefix(tt.authz, "Bearer ")) && tt.authz != "" {
				t.Errorf("body %s echoes the token", w.Body)
			}
		})
	}
}

func TestMiddlewareModeNone(t *testing.T) {
	a := MustNew(t, auth.Config{Mode: "none"})
	var got *auth.Caller
	h := a.Middleware(func(w http.ResponseWriter, r *http.Request, err *apierr.Error) {
		t.Errorf("fail called: %v", err)
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = auth.FromContext(r.Context())
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if got == nil || got.Kind != auth.KindAnonymous || !got.MayRead("any-link") {
		t.Errorf("caller = %+v, want an anonymous caller that may read any link", got)
	}
}

func TestCaller(t *testing.T) {
	tests := []struct {
		name   string
		c      *auth.Caller
		id     string
		may    []string
		mayNot []string
	}{
		{"nil", nil, "anonymous", nil, []string{"link-a", ""}},
		{"zero literal fails closed", &auth.Caller{}, "anonymous", nil, []string{"link-a"}},
		{"backend literal fails closed", &auth.Caller{Kind: auth.KindBackend, Subject: "x"}, "backend:x", nil, []string{"link-a"}},
		{"anonymous", auth.Anonymous(), "anonymous", []string{"link-a", "link-z"}, nil},
		{"backend", auth.NewBackend("bff"), "backend:bff", []string{"link-a", "link-z"}, nil},
		{"user", auth.NewUser("u1", "link-a", "link-b", "link-a", ""), "user:u1", []string{"link-a", "link-b"}, []string{"link-c", "", "LINK-A"}},
		{"user without links", auth.NewUser("u2"), "user:u2", nil, []string{"link-a", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.ID(); got != tt.id {
				t.Errorf("ID() = %q, want %q", got, tt.id)
			}
			for _, id := range tt.may {
				if !tt.c.MayRead(id) {
					t.Errorf("MayRead(%q) = false, want true", id)
				}
			}
			for _, id := range tt.mayNot {
				if tt.c.MayRead(id) {
					t.Errorf("MayRead(%q) = true, want false", id)
				}
			}
		})
	}
}

func TestContext(t *testing.T) {
	ctx := context.Background()
	if c := auth.FromContext(ctx); c != nil {
		t.Errorf("FromContext(empty) = %+v, want nil", c)
	}
	u := auth.NewUser("u1", "link-a")
	if c := auth.FromContext(auth.NewContext(ctx, u)); c != u {
		t.Errorf("FromContext = %+v, want %+v", c, u)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[auth.Kind]string{auth.KindAnonymous: "anonymous", auth.KindUser: "user", auth.KindBackend: "backend", auth.Kind(9): "unknown"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
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
