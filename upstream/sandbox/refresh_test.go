package sandbox_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
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

	"github.com/mkgraph/mkgraph/internal/testing/clocktest"
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

func TestRefreshRoute(t *testing.T) {
	tests := []struct {
		name, method, linkID, body string
		header                     http.Header // nil: client headers
		wantStatus                 int
		wantCode                   string // "" for a 202
	}{
		{"accepted", http.MethodPost, sandbox.LinkSeed, identityRefresh, nil, 202, ""},
		{"several products", http.MethodPost, sandbox.LinkHousehold, `{"products":["identity","accounts","identity"]}`, nil, 202, ""},
		{"copy link", http.MethodPost, sandbox.LinkCopyPrefix + "r1", identityRefresh, nil, 202, ""},
		{"fault link", http.MethodPost, sandbox.LinkFaultHang, identityRefresh, nil, 202, ""},
		{"unknown link", http.MethodPost, "mk_sandbox_unknown", identityRefresh, nil, 404, "link_error.not_found"},
		{"escaped slash stays one segment", http.MethodPost, sandbox.LinkSeed + "/x", identityRefresh, nil, 404, "link_error.not_found"},
		{"deleted link", http.MethodPost, sandbox.LinkDeleted, identityRefresh, nil, 410, "link_error.deleted"},
		{"bad state link", http.MethodPost, sandbox.LinkBadState, identityRefresh, nil, 422, "link_error.bad_state"},
		{"no credentials", http.MethodPost, sandbox.LinkSeed, identityRefresh, http.Header{}, 401, "api_error.auth.unauthorized"},
		{"wrong secret", http.MethodPost, sandbox.LinkSeed, identityRefresh, http.Header{"X-Client-Id": {sandbox.DefaultClientID}, "X-Client-Secret": {"no"}}, 401, "api_error.auth.unauthorized"},
		{"unknown token", http.MethodPost, sandbox.LinkSeed, identityRefresh, bearer("nope"), 401, "api_error.auth.unauthorized"},
		{"GET", http.MethodGet, sandbox.LinkSeed, "", nil, 405, "api_error.method_not_allowed"},
		{"empty body", http.MethodPost, sandbox.LinkSeed, "", nil, 400, "api_error.bad_request"},
		{"null", http.MethodPost, sandbox.LinkSeed, "null", nil, 400, "api_error.bad_request"},
		{"array", http.MethodPost, sandbox.LinkSeed, `["identity"]`, nil, 400, "api_error.bad_request"},
		{"no products", http.MethodPost, sandbox.LinkSeed, `{}`, nil, 400, "api_error.bad_request"},
		{"empty products", http.MethodPost, sandbox.LinkSeed, `{"products":[]}`, nil, 400, "api_error.bad_request"},
		{"products a string", http.MethodPost, sandbox.LinkSeed, `{"products":"identity"}`, nil, 400, "api_error.bad_request"},
		{"unknown product", http.MethodPost, sandbox.LinkSeed, `{"products":["identity","liabilities"]}`, nil, 400, "api_error.bad_request"},
		{"trailing data", http.MethodPost, sandbox.LinkSeed, identityRefresh + ` {}`, nil, 400, "api_error.bad_request"},
		{"truncated", http.MethodPost, sandbox.LinkSeed, `{"products":["identity"`, nil, 400, "api_error.bad_request"},
		{"too large", http.MethodPost, sandbox.LinkSeed, `{"products":["identity"],"pad":"` + strings.Repeat("x", 70<<10) + `"}`, nil, 400, "api_error.bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := clocktest.New(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
			s, base := startClosing(t, sandbox.Options{Now: clock.Now, RefreshDelay: time.Hour})
			header := tt.header
			if header == nil {
				header = clientHeaders()
			}
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			res, b := do(t, tt.method, productsURL(base, tt.linkID), header, body)
			if s.RefreshCalls() != 1 || s.RefreshCallsFor(tt.linkID) != 1 {
				t.Errorf("RefreshCalls() = %d, RefreshCallsFor = %d; want 1 and 1", s.RefreshCalls(), s.RefreshCallsFor(tt.linkID))
			}
			if tt.wantCode != "" {
				checkError(t, res, b, tt.wantStatus, tt.wantCode)
				if tt.wantStatus == 405 && res.Header.Get("Allow") != http.MethodPost {
					t.Errorf("Allow = %q, want POST", res.Header.Get("Allow"))
				}
				return
			}
			if res.StatusCode != 202 || res.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d (%s), body %.300s; want 202 application/json", res.StatusCode, res.Header.Get("Content-Type"), b)
			}
			var l link
			mustDecode(t, b, &l, true) // the link object, with the reference's field names only
			if l.LinkID != tt.linkID {
				t.Errorf("link_id = %q, want %q", l.LinkID, tt.linkID)
			}
			p := l.Products["identity"]
			if p.LastAttemptedAt == nil || *p.LastAttemptedAt != "2024-05-01T12:00:00Z" {
				t.Errorf("products.identity.last_attempted_at = %v, want the time of the request", p.LastAttemptedAt)
			}
		})
	}
}

// TestRefreshRateLimit: a product of a link may be asked for once per
// RefreshInterval, from the last accepted request; Retry-After says when.
func TestRefreshRateLimit(t *testing.T) {
	clock := clocktest.New(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	_, base := startClosing(t, sandbox.Options{Now: clock.Now, RefreshDelay: time.Hour})

	steps := []struct {
		advance    time.Duration
		linkID     string
		body       string
		wantStatus int
		wantRetry  string
	}{
		{0, sandbox.LinkSeed, identityRefresh, 202, ""},
		{0, sandbox.LinkSeed, identityRefresh, 429, "30"},
		{0, sandbox.LinkSeed, `{"products":["accounts","identity"]}`, 429, "30"}, // one product too soon refuses all
		{0, sandbox.LinkSeed, `{"products":["accounts"]}`, 202, ""},              // each product has its own interval
		{0, sandbox.LinkHousehold, identityRefresh, 202, ""},                     // and each link
		{10 * time.Second, sandbox.LinkSeed, identityRefresh, 429, "20"},
		{19500 * time.Millisecond, sandbox.LinkSeed, identityRefresh, 429, "1"}, // rounded up, never early
		{500 * time.Millisecond, sandbox.LinkSeed, identityRefresh, 202, ""},
		{0, sandbox.LinkSeed, identityRefresh, 429, "30"},
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		res, b := postRefresh(t, base, st.linkID, st.body)
		if st.wantStatus == 429 {
			checkError(t, res, b, 429, "api_error.rate_limit_exceeded")
		} else if res.StatusCode != st.wantStatus {
			t.Errorf("step %d: status %d, body %.200s; want %d", i, res.StatusCode, b, st.wantStatus)
		}
		if got := res.Header.Get("Retry-After"); got != st.wantRetry {
			t.Errorf("step %d (%s %s): Retry-After %q, want %q", i, st.linkID, st.body, got, st.wantRetry)
		}
	}
}

func TestRefreshIntervalOptions(t *testing.T) {
	tests := []struct {
		interval   time.Duration
		wantSecond int
		wantRetry  string
	}{
		{-1, 202, ""},
		{5 * time.Second, 429, "5"},
		{1500 * time.Millisecond, 429, "2"},
		{0, 429, "30"}, // DefaultRefreshInterval
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.interval), func(t *testing.T) {
			clock := clocktest.New(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
			_, base := startClosing(t, sandbox.Options{Now: clock.Now, RefreshDelay: time.Hour, RefreshInterval: tt.interval})
			if res, b := postRefresh(t, base, sandbox.LinkSeed, identityRefresh); res.StatusCode != 202 {
				t.Fatalf("first refresh: %d %s", res.StatusCode, b)
			}
			res, _ := postRefresh(t, base, sandbox.LinkSeed, identityRefresh)
			if res.StatusCode != tt.wantSecond || res.Header.Get("Retry-After") != tt.wantRetry {
				t.Errorf("second refresh: %d, Retry-After %q; want %d, %q", res.StatusCode, res.Header.Get("Retry-After"), tt.wantSecond, tt.wantRetry)
			}
		})
	}
}

// refreshedAt returns products.identity.refreshed_at of an identity answer.
func refreshedAt(t *testing.T, body []byte) time.Time {
	t.Helper()
	var id identityResponse
	mustDecode(t, body, &id, false)
	p := id.Link.Products["identity"]
	if p.RefreshedAt == nil {
		return time.Time{}
	}
	ts, err := time.Parse(time.RFC3339Nano, *p.RefreshedAt)
	if err != nil {
		ts, err = time.Parse("2006-01-02T15:04:05", *p.RefreshedAt)
	}
	if err != nil {
		t.Fatalf("refreshed_at %q: %v", *p.RefreshedAt, err)
	}
	return ts
}

// ownerEmails returns, per account, the emails of its first owner.
func ownerEmails(t *testing.T, body []byte) [][]string {
	t.Helper()
	var id identityResponse
	mustDecode(t, body, &id, false)
	var out [][]string
	for _, a := range id.Accounts {
		var emails []string
		if len(a.Owners) > 0 {
			for _, e := range a.Owners[0].Emails {
				emails = append(emails, e.Address)
			}
		}
		out = append(out, emails)
	}
	return out
}

// TestRefreshChangesIdentity: once a refresh completes, the link's
// identity answer has a later refreshed_at and an added owner email; before,
// it is unchanged.
func TestRefreshChangesIdentity(t *testing.T) {
	links := []string{sandbox.LinkSeed, sandbox.LinkHousehold, sandbox.LinkSparse, sandbox.LinkInternational, sandbox.LinkNovel, sandbox.LinkLarge, sandbox.LinkCopyPrefix + "x"}
	for _, id := range links {
		t.Run(id, func(t *testing.T) {
			// Before some fixtures' refreshed_at: a refresh must still be later.
			clock := clocktest.New(time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC))
			s, base := startClosing(t, sandbox.Options{Now: clock.Now, RefreshDelay: time.Millisecond, RefreshInterval: -1})
			_, before := getIdentity(t, base, id, "", clientHeaders())
			prev := refreshedAt(t, before)
			for n := 1; n <= 2; n++ {
				if res, b := postRefresh(t, base, id, identityRefresh); res.StatusCode != 202 {
					t.Fatalf("refresh %d: %d %s", n, res.StatusCode, b)
				}
				waitFor(t, "the refresh to complete", func() bool { return s.IdentityRefreshes(id) == n })
				res, after := getIdentity(t, base, id, "", clientHeaders())
				checkJSON200(t, res)
				var strict identityResponse
				if id != sandbox.LinkNovel {
					mustDecode(t, after, &strict, true) // still exactly the reference's shape
				}
				got := refreshedAt(t, after)
				if !got.After(prev) {
					t.Errorf("refresh %d: refreshed_at %v, want after %v", n, got, prev)
				}
				prev = got
				want := fmt.Sprintf("refreshed-%d@example.com", n)
				for i, emails := range ownerEmails(t, after) {
					if !slices.Contains(emails, want) {
						t.Errorf("refresh %d: account %d's first owner has emails %v, want %s among them", n, i, emails, want)
					}
				}
				clock.Advance(time.Minute)
			}
		})
	}
}

func TestRefreshKeepsAnswerDetails(t *testing.T) {
	s, base := startClosing(t, sandbox.Options{RefreshDelay: time.Millisecond})
	_, before := getIdentity(t, base, sandbox.LinkInternational, "", clientHeaders())
	if res, b := postRefresh(t, base, sandbox.LinkInternational, identityRefresh); res.StatusCode != 202 {
		t.Fatalf("refresh: %d %s", res.StatusCode, b)
	}
	waitFor(t, "the refresh", func() bool { return s.IdentityRefreshes(sandbox.LinkInternational) == 1 })
	_, after := getIdentity(t, base, sandbox.LinkInternational, "", clientHeaders())
	for _, digits := range []string{"12345678901234567.89", "0.10"} {
		if !bytes.Contains(after, []byte(digits)) || !bytes.Contains(before, []byte(digits)) {
			t.Errorf("amount %s lost by the refresh", digits)
		}
	}
	var id identityResponse
	mustDecode(t, after, &id, true)
	if p := id.Link.Products["identity"]; p.ErrorCode != nil || p.ErrorMessage != nil {
		t.Errorf("identity after a completed refresh has error %v / %v, want none", p.ErrorCode, p.ErrorMessage)
	}
	// account_ids still filters.
	first := id.Accounts[0].AccountID
	_, filtered := getIdentity(t, base, sandbox.LinkInternational, "account_ids="+url.QueryEscape(first), clientHeaders())
	var f identityResponse
	mustDecode(t, filtered, &f, true)
	if len(f.Accounts) != 1 || f.Accounts[0].AccountID != first || !slices.Contains(ownerEmails(t, filtered)[0], "refreshed-1@example.com") {
		t.Errorf("account_ids=%s after a refresh: %.300s", first, filtered)
	}
	// Other links are untouched.
	_, seed := getIdentity(t, base, sandbox.LinkSeed, "", clientHeaders())
	if bytes.Contains(seed, []byte("refreshed-")) {
		t.Errorf("seed link changed by another link's refresh")
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

func TestRefreshWebhooks(t *testing.T) {
	recv := newHookReceiver(t, nil)
	clock := clocktest.New(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	s, base := startClosing(t, sandbox.Options{Now: clock.Now, RefreshDelay: 20 * time.Millisecond, WebhookURL: recv.URL})
	recv.attach(base, clock.Now)
	reader := newClient(t, 5*time.Second, false)
	recv.onReceive = func() []byte {
		_, b, err := fetch(t.Context(), reader, base, sandbox.LinkHousehold, clientHeaders())
		if err != nil {
			return nil
		}
		return b
	}

	if res, b := postRefresh(t, base, sandbox.LinkHousehold, identityRefresh); res.StatusCode != 202 {
		t.Fatalf("refresh: %d %s", res.StatusCode, b)
	}
	got := recv.waitFor(t, 2)
	wantStates := []string{"pending", "completed"}
	keys := map[string]bool{}
	for i, h := range got {
		if h.Err != nil {
			t.Errorf("delivery %d: signature does not verify: %v", i, h.Err)
		}
		if h.Kid != s.KeyIDs()[0] {
			t.Errorf("delivery %d: kid %q, want the current key %q", i, h.Kid, s.KeyIDs()[0])
		}
		if h.Header.Get("Content-Type") != "application/json" || h.Header.Get(sandbox.HeaderDeliveryToken) == "" || h.Header.Get(sandbox.HeaderDeliveryAttempt) != "1" {
			t.Errorf("delivery %d headers %v: want application/json, a delivery token, attempt 1", i, h.Header)
		}
		var b productRefreshHook
		mustDecode(t, h.Body, &b, true)
		if !bytes.Contains(h.Body, []byte(`"error_message":null`)) {
			t.Errorf("delivery %d body %s: error_message absent, want null", i, h.Body)
		}
		if b.MajorVersion != 1 || b.MinorVersion != sandbox.WebhookMinorVersion || b.LinkID != sandbox.LinkHousehold ||
			b.Event != sandbox.EventProductRefresh || b.Product != "identity" || b.State != wantStates[i] || b.LinkTags == nil {
			t.Errorf("delivery %d body %s: want v1 %s identity %s for %s", i, h.Body, sandbox.EventProductRefresh, wantStates[i], sandbox.LinkHousehold)
		}
		for _, ts := range []string{b.Timestamp, b.StateChangedAt} {
			if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
				t.Errorf("delivery %d: timestamp %q: %v", i, ts, err)
			}
		}
		if b.IdempotencyKey == "" || keys[b.IdempotencyKey] {
			t.Errorf("delivery %d: idempotency key %q, want a new one", i, b.IdempotencyKey)
		}
		keys[b.IdempotencyKey] = true
	}
	// Completed comes once the data changed: the receiver, reading
	// identity as it gets the webhook, sees the new email.
	if !bytes.Contains(got[1].Extra, []byte("refreshed-1@example.com")) {
		t.Errorf("identity read on the completed webhook lacks refreshed-1@example.com")
	}
	if !bytes.Contains(got[0].Extra, []byte(`"link_id"`)) || bytes.Contains(got[0].Extra, []byte("refreshed-1@example.com")) {
		t.Errorf("identity read on the pending webhook already changed, or unreadable: %.200s", got[0].Extra)
	}
	waitFor(t, "the counters", func() bool { return s.WebhooksDelivered() == 2 })
	if st := s.Stats(); st.WebhooksSent != 2 || st.RefreshCalls != 1 {
		t.Errorf("Stats() = %+v, want 2 webhooks sent, 1 refresh call", st)
	}
}

func TestRefreshWebhookLinkTags(t *testing.T) {
	recv := newHookReceiver(t, nil)
	_, base := startClosing(t, sandbox.Options{RefreshDelay: time.Hour, WebhookURL: recv.URL})
	recv.attach(base, nil)
	_, idBody := getIdentity(t, base, sandbox.LinkSeed, "", clientHeaders())
	var id identityResponse
	mustDecode(t, idBody, &id, true)
	postRefresh(t, base, sandbox.LinkSeed, identityRefresh)
	got := recv.waitFor(t, 1)
	var b productRefreshHook
	mustDecode(t, got[0].Body, &b, true)
	if !slices.Equal(b.LinkTags, id.Link.LinkTags) || len(b.LinkTags) == 0 {
		t.Errorf("link_tags %v, want the link's %v", b.LinkTags, id.Link.LinkTags)
	}
}

// TestWebhookRetries: a delivery not answered 2xx is tried again, the same
// body (idempotency key) and token, a bounded number of times.
func TestWebhookRetries(t *testing.T) {
	tests := []struct {
		name          string
		status        func(n int) int
		attempts      int
		wantAttempts  int
		wantDelivered int
	}{
		{"500 twice, then 200", func(n int) int { return map[bool]int{true: 500, false: 200}[n <= 2] }, 4, 3, 1},
		{"always 503", func(int) int { return 503 }, 3, 3, 0},
		{"a redirect is not followed", func(int) int { return 307 }, 2, 2, 0},
		{"204", func(int) int { return 204 }, 4, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recv := newHookReceiver(t, tt.status)
			s, base := startClosing(t, sandbox.Options{RefreshDelay: time.Hour, WebhookURL: recv.URL, WebhookAttempts: tt.attempts, WebhookBackoff: 2 * time.Millisecond})
			recv.attach(base, nil)
			postRefresh(t, base, sandbox.LinkSeed, identityRefresh)
			got := recv.waitFor(t, tt.wantAttempts)
			waitFor(t, "the attempts to end", func() bool { return s.WebhooksSent() == tt.wantAttempts })
			time.Sleep(30 * time.Millisecond) // well past the last backoff: no more come
			if got = recv.received(); len(got) != tt.wantAttempts {
				t.Fatalf("%d attempts, want %d", len(got), tt.wantAttempts)
			}
			for i, h := range got {
				if h.Err != nil {
					t.Errorf("attempt %d: %v", i+1, h.Err)
				}
				if !bytes.Equal(h.Body, got[0].Body) || h.Header.Get(sandbox.HeaderDeliveryToken) != got[0].Header.Get(sandbox.HeaderDeliveryToken) {
					t.Errorf("attempt %d: body or delivery token differs from the first attempt's", i+1)
				}
				if a := h.Header.Get(sandbox.HeaderDeliveryAttempt); a != fmt.Sprint(i+1) {
					t.Errorf("attempt %d: %s %q", i+1, sandbox.HeaderDeliveryAttempt, a)
				}
			}
			if d := s.WebhooksDelivered(); d != tt.wantDelivered {
				t.Errorf("WebhooksDelivered() = %d, want %d", d, tt.wantDelivered)
			}
			log := s.WebhookDeliveries()
			if len(log) != tt.wantAttempts || log[len(log)-1].Attempt != tt.wantAttempts || log[0].Status != tt.status(1) {
				t.Errorf("WebhookDeliveries() = %+v", log)
			}
		})
	}
}

// TestCloseStopsBackgroundWork: Close ends a delivery waiting for its
// retry and a refresh not yet complete, promptly; goleak (TestMain) checks
// that nothing is left.
func TestCloseStopsBackgroundWork(t *testing.T) {
	recv := newHookReceiver(t, func(int) int { return 500 })
	s, base := start(t, sandbox.Options{RefreshDelay: time.Hour, WebhookURL: recv.URL, WebhookBackoff: time.Hour})
	recv.attach(base, nil)
	postRefresh(t, base, sandbox.LinkSeed, identityRefresh)
	recv.waitFor(t, 1)
	start := time.Now()
	s.Close()
	s.Close() // twice is fine
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v, want it prompt", took)
	}
	// Still answering, but nothing more happens.
	res, _ := postRefresh(t, base, sandbox.LinkHousehold, identityRefresh)
	if res.StatusCode != 202 {
		t.Errorf("refresh after Close: %d, want 202", res.StatusCode)
	}
	time.Sleep(20 * time.Millisecond)
	if n := len(recv.received()); n != 1 {
		t.Errorf("%d deliveries after Close, want the 1 before", n)
	}
	if n := s.IdentityRefreshes(sandbox.LinkSeed); n != 0 {
		t.Errorf("%d refreshes completed, want 0", n)
	}
}

// TestCloseDuringAttempt: an attempt the receiver holds is cancelled by Close.
func TestCloseDuringAttempt(t *testing.T) {
	release := make(chan struct{})
	hold := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(hold.Close)
	t.Cleanup(func() { close(release) })
	s, base := start(t, sandbox.Options{RefreshDelay: -1, WebhookURL: hold.URL})
	postRefresh(t, base, sandbox.LinkSeed, identityRefresh)
	waitFor(t, "the refresh", func() bool { return s.IdentityRefreshes(sandbox.LinkSeed) == 1 })
	start := time.Now()
	s.Close()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v with an attempt in flight, want it prompt", took)
	}
}

func TestWebhookURLMustBeAbsolute(t *testing.T) {
	for _, u := range []string{"/webhooks/moneykit", "ftp://x/y", "http://"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New with WebhookURL %q did not panic", u)
				}
			}()
			sandbox.New(sandbox.Options{WebhookURL: u})
		}()
	}
}

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

func TestTestWebhook(t *testing.T) {
	tests := []struct {
		name, linkID, body string
		header             http.Header // nil: client headers
		wantStatus         int
		wantCode           string
		wantFields         map[string]any // of the delivered body, beyond the common ones
	}{
		{"product refresh", sandbox.LinkSeed, `{"webhook_event":"link.product_refresh","webhook_idempotency_key":"key-1"}`, nil, 202, "",
			map[string]any{"product": "identity", "state": "completed", "error_message": nil}},
		{"state changed", sandbox.LinkHousehold, `{"webhook_event":"link.state_changed","webhook_idempotency_key":"key-1"}`, nil, 202, "",
			map[string]any{"state": "connected", "error": nil, "error_message": nil}},
		{"transactions", sandbox.LinkCopyPrefix + "t", `{"webhook_event":"transactions.updates_available","webhook_idempotency_key":"key-1"}`, nil, 202, "",
			map[string]any{"has_history": true}},
		{"no key: a new one", sandbox.LinkSeed, `{"webhook_event":"link.product_refresh"}`, nil, 202, "", map[string]any{"product": "identity"}},
		{"bad event", sandbox.LinkSeed, `{"webhook_event":"link.exploded"}`, nil, 400, "api_error.bad_request", nil},
		{"no event", sandbox.LinkSeed, `{}`, nil, 400, "api_error.bad_request", nil},
		{"not JSON", sandbox.LinkSeed, `webhook_event=link.product_refresh`, nil, 400, "api_error.bad_request", nil},
		{"unknown link", "mk_sandbox_nope", `{"webhook_event":"link.product_refresh"}`, nil, 404, "link_error.not_found", nil},
		{"no credentials", sandbox.LinkSeed, `{"webhook_event":"link.product_refresh"}`, http.Header{}, 401, "api_error.auth.unauthorized", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recv := newHookReceiver(t, nil)
			s, base := startClosing(t, sandbox.Options{WebhookURL: recv.URL})
			recv.attach(base, nil)
			header := tt.header
			if header == nil {
				header = clientHeaders()
			}
			res, b := do(t, http.MethodPost, base+sandbox.TestWebhookPrefix+url.PathEscape(tt.linkID), header, strings.NewReader(tt.body))
			if tt.wantCode != "" {
				checkError(t, res, b, tt.wantStatus, tt.wantCode)
				time.Sleep(10 * time.Millisecond)
				if n := s.WebhooksSent(); n != 0 {
					t.Errorf("%d webhooks sent for a refused request", n)
				}
				return
			}
			if res.StatusCode != 202 {
				t.Fatalf("status %d, body %s; want 202", res.StatusCode, b)
			}
			var answer struct {
				Event          string `json:"webhook_event"`
				IdempotencyKey string `json:"webhook_idempotency_key"`
				LinkID         string `json:"link_id"`
			}
			mustDecode(t, b, &answer, true)
			got := recv.waitFor(t, 1)[0]
			if got.Err != nil {
				t.Errorf("signature: %v", got.Err)
			}
			var delivered map[string]any
			mustDecode(t, got.Body, &delivered, false)
			var req map[string]string
			json.Unmarshal([]byte(tt.body), &req)
			wantKey := req["webhook_idempotency_key"]
			if wantKey == "" {
				wantKey = answer.IdempotencyKey
			}
			if answer.IdempotencyKey == "" || delivered["webhook_idempotency_key"] != wantKey || delivered["webhook_event"] != req["webhook_event"] ||
				delivered["link_id"] != tt.linkID || answer.LinkID != tt.linkID || delivered["webhook_major_version"] != json.Number("1") {
				t.Errorf("answer %s, delivered %s: want event %s, key %q, link %s", b, got.Body, req["webhook_event"], wantKey, tt.linkID)
			}
			for k, v := range tt.wantFields {
				if dv, ok := delivered[k]; !ok || dv != v {
					t.Errorf("delivered %s = %v (present %v), want %v", k, dv, ok, v)
				}
			}
		})
	}
}

// TestTestWebhookSameKeyTwice: the same idempotency key asked twice is
// delivered twice, as a retried MoneyKit delivery would be.
func TestTestWebhookSameKeyTwice(t *testing.T) {
	recv := newHookReceiver(t, nil)
	_, base := startClosing(t, sandbox.Options{WebhookURL: recv.URL})
	recv.attach(base, nil)
	for range 2 {
		do(t, http.MethodPost, base+sandbox.TestWebhookPrefix+sandbox.LinkSeed, clientHeaders(),
			strings.NewReader(`{"webhook_event":"link.product_refresh","webhook_idempotency_key":"dup"}`))
	}
	got := recv.waitFor(t, 2)
	for _, h := range got {
		if !bytes.Contains(h.Body, []byte(`"webhook_idempotency_key":"dup"`)) {
			t.Errorf("delivery %s lacks the given key", h.Body)
		}
	}
	if got[0].Header.Get(sandbox.HeaderDeliveryToken) == got[1].Header.Get(sandbox.HeaderDeliveryToken) {
		t.Errorf("two deliveries share a delivery token")
	}
}

func TestTestWebhookWithoutURL(t *testing.T) {
	s, base := startClosing(t, sandbox.Options{})
	res, b := do(t, http.MethodPost, base+sandbox.TestWebhookPrefix+sandbox.LinkSeed, clientHeaders(), strings.NewReader(`{"webhook_event":"link.product_refresh"}`))
	checkError(t, res, b, 400, "api_error.bad_request")
	if s.WebhooksSent() != 0 {
		t.Errorf("webhooks sent with no URL")
	}
}
