package webhook_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/mkgraph/mkgraph/internal/testing/clocktest"
	"github.com/mkgraph/mkgraph/internal/testing/logtest"
	"github.com/mkgraph/mkgraph/upstream/webhook"
)

// TestMain fails the run when a test leaves a goroutine behind (a JWKS
// fetch, a connection).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testClientID = "mkgraph_test_client"
	testLinkID   = "mk_eqkWN34UEoa2NxyALG8pcV"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// signer is one ES256 key of MoneyKit's (or a forger's).
type signer struct {
	kid  string
	priv *ecdsa.PrivateKey
}

func newSigner(tb testing.TB, kid string) signer {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return signer{kid: kid, priv: k}
}

// jwk is the signer's public key as a JWK.
func (s signer) jwk() map[string]any {
	b, err := s.priv.PublicKey.Bytes() // 0x04 | X | Y
	if err != nil {
		panic(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return map[string]any{"kty": "EC", "crv": "P-256", "x": enc(b[1:33]), "y": enc(b[33:65]), "kid": s.kid, "use": "sig", "alg": "ES256"}
}

// sign returns a compact ES256 JWT of claims with the signer's kid.
func (s signer) sign(tb testing.TB, claims jwt.MapClaims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = s.kid
	out, err := tok.SignedString(s.priv)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// jwksServer is MoneyKit's /.well-known/jwks.json.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int32

	mu      sync.Mutex
	keys    []map[string]any
	status  int    // 0: 200
	raw     string // when set, the body instead of the keys
	headers []http.Header
}

func newJWKSServer(tb testing.TB, signers ...signer) *jwksServer {
	tb.Helper()
	s := &jwksServer{}
	for _, sg := range signers {
		s.keys = append(s.keys, sg.jwk())
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/.well-known/jwks.json" || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	s.fetches.Add(1)
	s.mu.Lock()
	s.headers = append(s.headers, r.Header.Clone())
	status, raw := s.status, s.raw
	body, _ := json.Marshal(map[string]any{"keys": s.keys})
	s.mu.Unlock()
	if raw != "" {
		body = []byte(raw)
	}
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

func (s *jwksServer) setKeys(signers ...signer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = nil
	for _, sg := range signers {
		s.keys = append(s.keys, sg.jwk())
	}
}

func (s *jwksServer) addKeys(keys ...map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, keys...)
}

func (s *jwksServer) fail(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
}

func (s *jwksServer) setRaw(raw string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raw = raw
}

func (s *jwksServer) requestHeaders() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.headers)
}

// fixture is a Handler over a fake JWKS, with a hand-moved clock, and
// records of its events, verdicts and logs.
type fixture struct {
	t        testing.TB
	moneyKit signer
	jwks     *jwksServer
	clock    *clocktest.Clock
	store    *webhook.MemoryStore
	h        *webhook.Handler
	log      *logtest.Buffer

	mu       sync.Mutex
	events   []webhook.Event
	verdicts []string
	onEvent  func(context.Context, webhook.Event) error // nil: succeed
}

func newFixture(tb testing.TB, modify ...func(*webhook.Config)) *fixture {
	tb.Helper()
	f := &fixture{t: tb, moneyKit: newSigner(tb, "mk-key-1"), clock: clocktest.New(t0), log: &logtest.Buffer{}}
	f.jwks = newJWKSServer(tb, f.moneyKit)
	f.store = webhook.NewMemoryStore(0, f.clock.Now)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tb.Cleanup(tr.CloseIdleConnections)
	cfg := webhook.Config{
		BaseURL:    f.jwks.URL,
		ClientID:   testClientID,
		HTTPClient: &http.Client{Transport: tr},
		Now:        f.clock.Now,
		Store:      f.store,
		Log:        zerolog.New(f.log).Level(zerolog.DebugLevel),
		OnEvent:    f.apply,
		OnVerdict: func(v string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.verdicts = append(f.verdicts, v)
		},
	}
	for _, m := range modify {
		m(&cfg)
	}
	h, err := webhook.New(cfg)
	if err != nil {
		tb.Fatalf("webhook.New: %v", err)
	}
	f.h = h
	return f
}

func (f *fixture) apply(ctx context.Context, e webhook.Event) error {
	f.mu.Lock()
	fn := f.onEvent
	f.mu.Unlock()
	if fn != nil {
		if err := fn(ctx, e); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
	return nil
}

func (f *fixture) setOnEvent(fn func(context.Context, webhook.Event) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onEvent = fn
}

// applied returns the events applied so far.
func (f *fixture) applied() []webhook.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.events)
}

func (f *fixture) allVerdicts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.verdicts)
}

func (f *fixture) lastVerdict() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.verdicts) == 0 {
		return ""
	}
	return f.verdicts[len(f.verdicts)-1]
}

// eventBody returns a link.product_refresh delivery of key, with fields
// overridden (a nil value deletes the field).
func eventBody(key string, override map[string]any) []byte {
	m := map[string]any{
		"webhook_major_version":   1,
		"webhook_minor_version":   0,
		"webhook_idempotency_key": key,
		"webhook_timestamp":       "2024-05-01T11:59:58Z",
		"link_id":                 testLinkID,
		"link_tags":               []string{"customer"},
		"webhook_event":           "link.product_refresh",
		"product":                 "identity",
		"state":                   "completed",
		"state_changed_at":        "2024-05-01T11:59:57Z",
		"error_message":           nil,
	}
	for k, v := range override {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func bodyHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// claimsFor returns MoneyKit's claims for body, issued now.
func (f *fixture) claimsFor(body []byte) jwt.MapClaims {
	return jwt.MapClaims{"iat": f.clock.Now().Unix(), "request_body_sha256": bodyHash(body)}
}

// signed returns MoneyKit's signature of body, issued now.
func (f *fixture) signed(body []byte) string {
	return f.moneyKit.sign(f.t, f.claimsFor(body))
}

// post delivers body with signature sig ("" for none).
func (f *fixture) post(body []byte, sig string) *httptest.ResponseRecorder {
	f.t.Helper()
	req := httptest.NewRequest(http.MethodPost, webhook.Path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set(webhook.SignatureHeader, sig)
	}
	req.Header.Set("MoneyKit-Delivery-Token", "delivery-token-secret-7f3a")
	req.Header.Set(webhook.AttemptHeader, "1")
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

// deliver posts body signed by MoneyKit now.
func (f *fixture) deliver(body []byte) *httptest.ResponseRecorder {
	f.t.Helper()
	return f.post(body, f.signed(body))
}

const (
	wantAccepted    = `{"status":"accepted"}`
	wantInvalid     = `{"error_code":"facade.webhook_invalid"}`
	wantUnavailable = `{"error_code":"facade.webhook_unavailable"}`
)

// expect fails the test unless rec is status with body.
func expect(tb testing.TB, rec *httptest.ResponseRecorder, status int, body string) {
	tb.Helper()
	if rec.Code != status || rec.Body.String() != body {
		tb.Errorf("answer = %d %s, want %d %s", rec.Code, rec.Body, status, body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		tb.Errorf("Content-Type = %q, want application/json", ct)
	}
}
