package sandbox_test

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// startClosing serves a new sandbox for the duration of the test and closes
// it (its refreshes and deliveries) first when the test ends.
func startClosing(t *testing.T, opts sandbox.Options) (*sandbox.Server, string) {
	t.Helper()
	s, base := start(t, opts)
	t.Cleanup(s.Close)
	return s, base
}

func productsURL(base, linkID string) string {
	return base + "/links/" + url.PathEscape(linkID) + "/products"
}

// postRefresh calls POST /links/{linkID}/products with body.
func postRefresh(t *testing.T, base, linkID, body string) (*http.Response, []byte) {
	t.Helper()
	h := clientHeaders()
	h.Set("Content-Type", "application/json")
	return do(t, http.MethodPost, productsURL(base, linkID), h, strings.NewReader(body))
}

const identityRefresh = `{"products":["identity"]}`

// waitFor polls cond until it holds or 5 s have passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// verifySignature checks a MoneyKit-Signature as a receiver must: ES256
// only, a kid of jwks, iat within 5 minutes of now, and the body's hash.
func verifySignature(jwks []byte, signature string, body []byte, now time.Time) (kid string, err error) {
	kf, err := keyfunc.NewJWKSetJSON(jwks)
	if err != nil {
		return "", err
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(signature, claims, kf.Keyfunc,
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithLeeway(5*time.Minute), jwt.WithIssuedAt())
	if err != nil {
		return "", err
	}
	kid, _ = tok.Header["kid"].(string)
	iat, err := claims.GetIssuedAt()
	if err != nil || iat == nil || now.Sub(iat.Time) > 5*time.Minute {
		return kid, fmt.Errorf("iat %v too old or missing (%v)", iat, err)
	}
	sum := sha256.Sum256(body)
	got, _ := claims["request_body_sha256"].(string)
	if subtle.ConstantTimeCompare([]byte(got), []byte(hex.EncodeToString(sum[:]))) != 1 {
		return kid, errors.New("request_body_sha256 does not match the body")
	}
	return kid, nil
}

// fetchJWKS calls GET /.well-known/jwks.json with the sandbox's client id.
func fetchJWKS(t *testing.T, base string) []byte {
	t.Helper()
	res, b := do(t, http.MethodGet, base+sandbox.JWKSPath, http.Header{"X-Client-Id": {sandbox.DefaultClientID}}, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", sandbox.JWKSPath, res.StatusCode, b)
	}
	return b
}

// receivedHook is one delivery a hookReceiver got.
type receivedHook struct {
	Header http.Header
	Body   []byte
	Kid    string
	Err    error  // from verifySignature
	Extra  []byte // what onReceive returned
}

// hookReceiver is a webhook endpoint that verifies each delivery against
// the sandbox's JWKS (fetched from its endpoint, each time) and answers
// status(n) to the nth (from 1), 200 when status is nil.
type hookReceiver struct {
	*httptest.Server
	t         *testing.T
	client    *http.Client
	status    func(n int) int
	onReceive func() []byte // runs before answering, e.g. to read the sandbox

	mu      sync.Mutex
	sandbox string
	now     func() time.Time
	got     []receivedHook
}

func newHookReceiver(t *testing.T, status func(n int) int) *hookReceiver {
	h := &hookReceiver{t: t, client: newClient(t, 5*time.Second, false), status: status, now: time.Now}
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.Close)
	return h
}

// attach names the sandbox whose keys verify deliveries.
func (h *hookReceiver) attach(base string, now func() time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sandbox = base
	if now != nil {
		h.now = now
	}
}

func (h *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	base, now := h.sandbox, h.now
	h.mu.Unlock()
	rec := receivedHook{Header: r.Header.Clone(), Body: body}
	req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, base+sandbox.JWKSPath, nil)
	req.Header.Set("X-Client-Id", sandbox.DefaultClientID)
	if res, err := h.client.Do(req); err != nil {
		rec.Err = err
	} else {
		jwks, _ := io.ReadAll(res.Body)
		res.Body.Close()
		rec.Kid, rec.Err = verifySignature(jwks, r.Header.Get(sandbox.HeaderSignature), body, now())
	}
	if h.onReceive != nil {
		rec.Extra = h.onReceive()
	}
	h.mu.Lock()
	h.got = append(h.got, rec)
	n := len(h.got)
	h.mu.Unlock()
	status := http.StatusOK
	if h.status != nil {
		status = h.status(n)
	}
	w.WriteHeader(status)
}

func (h *hookReceiver) received() []receivedHook {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

func (h *hookReceiver) waitFor(t *testing.T, n int) []receivedHook {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d webhooks", n), func() bool { return len(h.received()) >= n })
	return h.received()
}

// productRefreshHook is the body of link.product_refresh, exactly.
type productRefreshHook struct {
	MajorVersion   int      `json:"webhook_major_version"`
	MinorVersion   int      `json:"webhook_minor_version"`
	IdempotencyKey string   `json:"webhook_idempotency_key"`
	Timestamp      string   `json:"webhook_timestamp"`
	LinkID         string   `json:"link_id"`
	LinkTags       []string `json:"link_tags"`
	Event          string   `json:"webhook_event"`
	Product        string   `json:"product"`
	State          string   `json:"state"`
	StateChangedAt string   `json:"state_changed_at"`
	ErrorMessage   *string  `json:"error_message"`
}
