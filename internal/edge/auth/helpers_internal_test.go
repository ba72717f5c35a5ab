package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

func writeTestFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}

func mustRSAKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// jwksTestServer serves a changeable JWKS and counts fetches.
type jwksTestServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	fetches atomic.Int32
}

func newJWKSTestServer(tb testing.TB, body []byte) *jwksTestServer {
	s := &jwksTestServer{body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Write(s.body)
	}))
	tb.Cleanup(s.Close)
	return s
}

func jwksOf(tb testing.TB, kid string, key *ecdsa.PrivateKey) []byte {
	tb.Helper()
	store := jwkset.NewMemoryStorage()
	j, err := jwkset.NewJWKFromKey(&key.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: jwkset.AlgES256}})
	if err != nil {
		tb.Fatal(err)
	}
	if err := store.KeyWrite(context.Background(), j); err != nil {
		tb.Fatal(err)
	}
	raw, err := store.JSONPublic(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func es256(tb testing.TB, key *ecdsa.PrivateKey, kid string) string {
	tb.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
