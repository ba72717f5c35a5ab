package sandbox_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/testing/clocktest"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// jwk is one key of the JWKS, with exactly the fields it should have.
type jwk struct {
	KTY string `json:"kty"`
	CRV string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	KID string `json:"kid"`
	ALG string `json:"alg"`
	USE string `json:"use"`
}

func TestJWKSEndpoint(t *testing.T) {
	s, base := startClosing(t, sandbox.Options{})
	tests := []struct {
		name       string
		method     string
		header     http.Header
		wantStatus int
	}{
		{"client id", http.MethodGet, http.Header{"X-Client-Id": {sandbox.DefaultClientID}}, 200},
		{"no client id", http.MethodGet, nil, 401},
		{"another client id", http.MethodGet, http.Header{"X-Client-Id": {"someone_else"}}, 401},
		{"a token is not enough", http.MethodGet, bearer(mustToken(t, base)), 401},
		{"POST", http.MethodPost, http.Header{"X-Client-Id": {sandbox.DefaultClientID}}, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, b := do(t, tt.method, base+sandbox.JWKSPath, tt.header, nil)
			if tt.wantStatus != 200 {
				code := map[int]string{401: "api_error.auth.unauthorized", 405: "api_error.method_not_allowed"}[tt.wantStatus]
				checkError(t, res, b, tt.wantStatus, code)
				return
			}
			checkJSON200(t, res)
			var set struct {
				Keys []jwk `json:"keys"`
			}
			mustDecode(t, b, &set, true)
			if len(set.Keys) != 1 {
				t.Fatalf("%d keys, want 1", len(set.Keys))
			}
			k := set.Keys[0]
			if k.KTY != "EC" || k.CRV != "P-256" || k.ALG != "ES256" || k.USE != "sig" || k.KID != s.KeyIDs()[0] {
				t.Errorf("key %+v, want EC P-256 ES256 sig with kid %s", k, s.KeyIDs()[0])
			}
			x, errX := base64.RawURLEncoding.DecodeString(k.X)
			y, errY := base64.RawURLEncoding.DecodeString(k.Y)
			if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 ||
				!elliptic.P256().IsOnCurve(new(big.Int).SetBytes(x), new(big.Int).SetBytes(y)) { //nolint:staticcheck // a check of the encoding only
				t.Errorf("x %q, y %q: want 32-byte base64url coordinates of a P-256 point", k.X, k.Y)
			}
		})
	}
}

// TestRotate: after Rotate the new key signs and the old one still
// verifies, until the next Rotate.
func TestRotate(t *testing.T) {
	clock := clocktest.New(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	s, base := startClosing(t, sandbox.Options{Now: clock.Now})
	body := []byte(`{"webhook_event":"link.product_refresh"}`)
	kid1 := s.KeyIDs()[0]
	sig1 := s.SignWebhook(body)

	kid2 := s.Rotate()
	if kid2 == kid1 || !slices.Equal(s.KeyIDs(), []string{kid2, kid1}) {
		t.Fatalf("after Rotate: KeyIDs %v, new kid %q; want [new, %s]", s.KeyIDs(), kid2, kid1)
	}
	jwks := fetchJWKS(t, base)
	if kid, err := verifySignature(jwks, sig1, body, clock.Now()); err != nil || kid != kid1 {
		t.Errorf("signature from before Rotate: kid %q, %v; want %s, verified", kid, err, kid1)
	}
	sig2 := s.SignWebhook(body)
	if kid, err := verifySignature(jwks, sig2, body, clock.Now()); err != nil || kid != kid2 {
		t.Errorf("signature after Rotate: kid %q, %v; want %s, verified", kid, err, kid2)
	}

	kid3 := s.Rotate()
	jwks = fetchJWKS(t, base)
	if _, err := verifySignature(jwks, sig1, body, clock.Now()); err == nil {
		t.Errorf("signature of a key two rotations old still verifies")
	}
	if _, err := verifySignature(jwks, sig2, body, clock.Now()); err != nil {
		t.Errorf("signature of the previous key: %v, want verified", err)
	}
	if !slices.Equal(s.KeyIDs(), []string{kid3, kid2}) {
		t.Errorf("KeyIDs %v, want [%s %s]", s.KeyIDs(), kid3, kid2)
	}
}

// TestRotateWithDeliveries: deliveries after a Rotate carry the new kid and
// verify against a freshly fetched JWKS.
func TestRotateWithDeliveries(t *testing.T) {
	recv := newHookReceiver(t, nil)
	s, base := startClosing(t, sandbox.Options{RefreshDelay: time.Hour, RefreshInterval: -1, WebhookURL: recv.URL})
	recv.attach(base, nil)
	postRefresh(t, base, sandbox.LinkSeed, identityRefresh)
	recv.waitFor(t, 1)
	kid2 := s.Rotate()
	postRefresh(t, base, sandbox.LinkSeed, identityRefresh)
	got := recv.waitFor(t, 2)
	if got[1].Err != nil || got[1].Kid != kid2 || got[0].Kid == kid2 {
		t.Errorf("deliveries: %q (%v) then %q (%v); want the old kid, then %s verified", got[0].Kid, got[0].Err, got[1].Kid, got[1].Err, kid2)
	}
}

// TestSignWebhookWith: the test hook makes each kind of bad signature a
// receiver must refuse; the zero options make a good one.
func TestSignWebhookWith(t *testing.T) {
	clock := clocktest.New(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	s, base := startClosing(t, sandbox.Options{Now: clock.Now})
	jwks := fetchJWKS(t, base)
	body := []byte(`{"link_id":"mk_x"}`)
	foreign, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	tests := []struct {
		name    string
		opts    sandbox.SignOptions
		body    []byte // verified against; nil: body
		wantErr bool
	}{
		{"as delivered", sandbox.SignOptions{}, nil, false},
		{"iat 4 minutes ago", sandbox.SignOptions{IssuedAt: now.Add(-4 * time.Minute)}, nil, false},
		{"replayed: iat 10 minutes ago", sandbox.SignOptions{IssuedAt: now.Add(-10 * time.Minute)}, nil, true},
		{"iat 10 minutes ahead", sandbox.SignOptions{IssuedAt: now.Add(10 * time.Minute)}, nil, true},
		{"a key not in the JWKS", sandbox.SignOptions{Key: foreign}, nil, true},
		{"a foreign key under the real kid", sandbox.SignOptions{Key: foreign, KeyID: s.KeyIDs()[0]}, nil, true},
		{"an unknown kid", sandbox.SignOptions{KeyID: "mkgraph-sandbox-unknown"}, nil, true},
		{"another body's hash", sandbox.SignOptions{BodySHA256: strings.Repeat("0", 64)}, nil, true},
		{"the body changed", sandbox.SignOptions{}, []byte(`{"link_id":"mk_y"}`), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := s.SignWebhookWith(body, tt.opts)
			check := body
			if tt.body != nil {
				check = tt.body
			}
			_, err := verifySignature(jwks, sig, check, now)
			if (err != nil) != tt.wantErr {
				t.Errorf("verify = %v, want error %v", err, tt.wantErr)
			}
		})
	}
	// The header is what MoneyKit sends: ES256 with a kid.
	parts := strings.Split(s.SignWebhook(body), ".")
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]any
	if err := json.Unmarshal(hdr, &h); err != nil || h["alg"] != "ES256" || h["kid"] != s.KeyIDs()[0] {
		t.Errorf("JWT header %s, want alg ES256 and kid %s", hdr, s.KeyIDs()[0])
	}
}
