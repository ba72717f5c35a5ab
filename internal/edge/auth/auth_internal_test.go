package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
)

// TestLookupConstantTime: the key lookup compares the presented hash with
// every stored hash, whether the match is first, last or missing, so its
// time does not tell which key matched or how far the search went.
func TestLookupConstantTime(t *testing.T) {
	var compares int
	ks := keySet{eq: func(x, y []byte) int {
		compares++
		return subtle.ConstantTimeCompare(x, y)
	}}
	names := []string{"k0", "k1", "k2", "k3", "k4"}
	for _, n := range names {
		ks.keys = append(ks.keys, apiKey{name: n, hash: sha256.Sum256([]byte("key-" + n))})
	}
	tests := []struct {
		key      string
		wantName string
		wantOK   bool
	}{
		{"key-k0", "k0", true},
		{"key-k2", "k2", true},
		{"key-k4", "k4", true},
		{"key-k5", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		compares = 0
		name, ok := ks.lookup(sha256.Sum256([]byte(tt.key)))
		if name != tt.wantName || ok != tt.wantOK {
			t.Errorf("lookup(%q) = %q, %v, want %q, %v", tt.key, name, ok, tt.wantName, tt.wantOK)
		}
		if compares != len(names) {
			t.Errorf("lookup(%q) compared %d hashes, want all %d", tt.key, compares, len(names))
		}
	}
}

// TestLoadedKeysCompareInConstantTime: the keys file's set uses a
// constant-time comparison.
func TestLoadedKeysCompareInConstantTime(t *testing.T) {
	p := t.TempDir() + "/keys"
	if err := writeTestFile(p, "bff "+HashAPIKey("k")+"\n"); err != nil {
		t.Fatal(err)
	}
	ks, err := loadAPIKeys(p)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.ValueOf(ks.eq).Pointer() != reflect.ValueOf(subtle.ConstantTimeCompare).Pointer() {
		t.Error("keys file set does not compare with subtle.ConstantTimeCompare")
	}
}

// TestKeyfuncRefusesKeyTypeMismatch: even were HS256 allowed next to JWKS
// keys, keyfunc hands out the RSA public key, which the HMAC method refuses
// as a key: an RSA public key never serves as an HMAC secret.
func TestKeyfuncRefusesKeyTypeMismatch(t *testing.T) {
	rsaKey := mustRSAKey(t)
	store := jwkset.NewMemoryStorage()
	j, err := jwkset.NewJWKFromKey(&rsaKey.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "rsa"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.KeyWrite(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	kf, err := keyfunc.New(keyfunc.Options{Storage: store, UseWhitelist: sigUses})
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string][]byte{
		"PEM": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"DER": der,
	} {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "x", "exp": time.Now().Add(time.Hour).Unix()})
		tok.Header["kid"] = "rsa"
		s, err := tok.SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		// A parser that wrongly allows HS256 and RS256 both.
		p := jwt.NewParser(jwt.WithValidMethods([]string{"HS256", "RS256"}))
		_, err = p.Parse(s, kf.Keyfunc)
		if !errors.Is(err, jwt.ErrTokenSignatureInvalid) || !errors.Is(err, jwt.ErrInvalidKeyType) {
			t.Errorf("%s: Parse = %v, want %v and %v", name, err, jwt.ErrTokenSignatureInvalid, jwt.ErrInvalidKeyType)
		}
	}
}

// TestJWKSPeriodicRefresh: a key published after start is picked up by the
// periodic refresh, without the help of the unknown-kid refresh (whose
// single allowance is spent first).
func TestJWKSPeriodicRefresh(t *testing.T) {
	keyA, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyB, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := newJWKSTestServer(t, jwksOf(t, "a", keyA))
	a, err := New(context.Background(), Config{Mode: "jwt", JWKSURL: srv.URL, refreshInterval: 20 * time.Millisecond, unknownKIDEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+es256(t, keyB, "spend-the-allowance"))
	if _, err := a.Authenticate(r); err == nil {
		t.Fatal("unknown kid accepted")
	}

	srv.mu.Lock()
	srv.body = jwksOf(t, "b", keyB)
	srv.mu.Unlock()
	r.Header.Set("Authorization", "Bearer "+es256(t, keyB, "b"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err = a.Authenticate(r); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("key b not accepted after 5s of refreshes every 20ms: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCloseStopsRefresh: after Close the JWKS URL is no longer fetched and
// no goroutine of this package is left.
func TestCloseStopsRefresh(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := newJWKSTestServer(t, jwksOf(t, "a", key))
	// Without keep-alives no connection goroutine outlives a fetch, so any
	// goroutine left is the refresh loop.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	opts := []goleak.Option{goleak.IgnoreCurrent()}

	a, err := New(context.Background(), Config{Mode: "jwt", JWKSURL: srv.URL, HTTPClient: client, refreshInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.fetches.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("JWKS not refreshed every 5ms")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := goleak.Find(opts...); err == nil {
		t.Fatal("no refresh goroutine found before Close: the test cannot see it stop")
	}
	a.Close()
	a.Close() // idempotent
	goleak.VerifyNone(t, opts...)
	n := srv.fetches.Load()
	time.Sleep(50 * time.Millisecond)
	if m := srv.fetches.Load(); m != n {
		t.Errorf("JWKS fetched %d more times after Close", m-n)
	}
}

// TestCancelledContextStopsRefresh: ending New's context also stops it.
func TestCancelledContextStopsRefresh(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := newJWKSTestServer(t, jwksOf(t, "a", key))
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	opts := []goleak.Option{goleak.IgnoreCurrent()}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, Config{Mode: "jwt", JWKSURL: srv.URL, HTTPClient: client, refreshInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	cancel()
	goleak.VerifyNone(t, opts...)
}

// TestFailedNewStopsRefresh: New starts the refresh goroutine before its
// first fetch; when that fetch fails the goroutine must not be left behind.
func TestFailedNewStopsRefresh(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	opts := []goleak.Option{goleak.IgnoreCurrent()}
	if _, err := New(context.Background(), Config{Mode: "jwt", JWKSURL: srv.URL, HTTPClient: client, refreshInterval: time.Millisecond}); err == nil {
		t.Fatal("New succeeded with a failing JWKS URL")
	}
	goleak.VerifyNone(t, opts...)
}

func TestLimitBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, maxJWKSBytes+1))
	}))
	defer srv.Close()
	exact := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, maxJWKSBytes))
	}))
	defer exact.Close()
	c := jwksClient(nil)
	for url, wantErr := range map[string]error{srv.URL: errJWKSTooLarge, exact.URL: nil} {
		res, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(res.Body)
		res.Body.Close()
		if !errors.Is(err, wantErr) {
			t.Errorf("reading %s: %v, want %v", url, err, wantErr)
		}
	}
	c.CloseIdleConnections()
}
