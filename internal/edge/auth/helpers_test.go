package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/edge/auth"
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
	return override(c, overrides)
}

// override sets the claims of overrides in c, deleting those whose value is
// nil, and returns c.
func override(c, overrides jwt.MapClaims) jwt.MapClaims {
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

// checkOutcome checks Authenticate's answer: refused with message wantErr
// (without echoing secret) when wantErr is set, else the caller want.
func checkOutcome(tb testing.TB, c *auth.Caller, err error, want wantCaller, wantErr, secret string) {
	tb.Helper()
	if wantErr != "" {
		checkRefused(tb, c, err, wantErr, secret)
		return
	}
	checkCaller(tb, c, err, want)
}

// tokenCase is a bearer token and what Authenticate should make of it.
type tokenCase struct {
	name    string
	token   string
	want    wantCaller
	wantErr string
}

var (
	user1   = wantCaller{kind: auth.KindUser, subject: "user-1", may: []string{"link-a", "link-b"}, mayNot: []string{"link-c", "", "link-a "}}
	backend = func(name string) wantCaller {
		return wantCaller{kind: auth.KindBackend, subject: name, may: []string{"link-a", "link-z", "anything"}}
	}
)

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
