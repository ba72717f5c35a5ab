package auth_test

import (
	"context"
	"crypto"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mkgraph/mkgraph/internal/edge/auth"
)

// jwksCases are the asymmetric-key cases run against a JWKS file and URL
// holding rsa-a (no alg), ec-a (ES256), rsa-pinned (alg RS256).
func jwksCases(t *testing.T) []tokenCase {
	c := userClaims(nil)
	rsaPEM := pemPublic(t, &rsaA().PublicKey)
	return []tokenCase{
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

// runJWKSCases runs jwksCases against an Authenticator of each config.
func runJWKSCases(t *testing.T, configs map[string]auth.Config) {
	t.Helper()
	for cname, cfg := range configs {
		a := MustNew(t, cfg)
		for _, tt := range jwksCases(t) {
			t.Run(cname+"/"+tt.name, func(t *testing.T) {
				c, err := a.Authenticate(bearerRequest(tt.token))
				checkOutcome(t, c, err, tt.want, tt.wantErr, tt.token)
			})
		}
	}
}

func TestJWKSFile(t *testing.T) {
	file := writeFile(t, "jwks.json", jwksJSON(t, testKeys()...))
	configs := map[string]auth.Config{
		"JWKS file":             {Mode: "jwt", JWKSFile: file},
		"JWKS file and HS256":   {Mode: "jwt", JWKSFile: file, HS256Secret: testSecret},
		"JWKS file and API key": {Mode: "jwt", JWKSFile: file, APIKeysFile: writeFile(t, "keys", []byte("bff "+auth.HashAPIKey("k")+"\n"))},
	}
	runJWKSCases(t, configs)
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
	runJWKSCases(t, configs)
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
