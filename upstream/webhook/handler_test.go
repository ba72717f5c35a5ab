package webhook_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream/webhook"
)

func TestValidDeliveryAcceptedOnce(t *testing.T) {
	f := newFixture(t)
	body := eventBody("idem-1", nil)
	expect(t, f.deliver(body), http.StatusOK, wantAccepted)

	want := []webhook.Event{{
		LinkID: testLinkID, Kind: webhook.ProductRefresh, Product: "identity", State: "completed",
		RefreshState: webhook.RefreshCompleted, OccurredAt: time.Date(2024, 5, 1, 11, 59, 57, 0, time.UTC),
		IdempotencyKey: "idem-1", RawEvent: "link.product_refresh", LinkTags: []string{"customer"},
	}}
	if diff := cmp.Diff(want, f.applied()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if got := f.allVerdicts(); !cmp.Equal(got, []string{webhook.VerdictAccepted}) {
		t.Errorf("verdicts = %v", got)
	}
	hs := f.jwks.requestHeaders()
	if len(hs) != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", len(hs))
	}
	if got := hs[0].Get("X-Client-Id"); got != testClientID {
		t.Errorf("JWKS request X-Client-Id = %q, want %q", got, testClientID)
	}
	if got := hs[0].Get("Authorization"); got != "" {
		t.Errorf("JWKS request carries Authorization %q, want none", got)
	}
}

func TestRepeatedKeyAppliedOnce(t *testing.T) {
	f := newFixture(t)
	body := eventBody("idem-repeat", nil)
	for i := range 3 {
		f.clock.Advance(time.Minute) // MoneyKit signs each attempt anew
		expect(t, f.deliver(body), http.StatusOK, wantAccepted)
		if i == 0 {
			f.clock.Advance(2 * time.Hour) // retries go on for 2 hours
		}
	}
	if n := len(f.applied()); n != 1 {
		t.Errorf("applied %d times, want 1", n)
	}
	want := []string{webhook.VerdictAccepted, webhook.VerdictDuplicate, webhook.VerdictDuplicate}
	if got := f.allVerdicts(); !cmp.Equal(got, want) {
		t.Errorf("verdicts = %v, want %v", got, want)
	}
	// Past DefaultDedupeTTL the key is forgotten (MoneyKit stopped retrying long before).
	f.clock.Advance(webhook.DefaultDedupeTTL)
	expect(t, f.deliver(body), http.StatusOK, wantAccepted)
	if n := len(f.applied()); n != 2 {
		t.Errorf("applied %d times after the dedupe TTL, want 2", n)
	}
}

func TestConcurrentDuplicatesAppliedOnce(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	f.setOnEvent(func(context.Context, webhook.Event) error { <-release; return nil })
	body := eventBody("idem-concurrent", nil)
	sig := f.signed(body)
	const n = 20
	recs := make([]*httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { recs[i] = f.post(body, sig) })
	}
	time.Sleep(50 * time.Millisecond) // let them all reach the store
	close(release)
	wg.Wait()
	for _, rec := range recs {
		expect(t, rec, http.StatusOK, wantAccepted)
	}
	if got := len(f.applied()); got != 1 {
		t.Errorf("applied %d times, want 1", got)
	}
	accepted := 0
	for _, v := range f.allVerdicts() {
		if v == webhook.VerdictAccepted {
			accepted++
		}
	}
	if accepted != 1 {
		t.Errorf("verdicts %v: %d accepted, want 1 (the rest duplicate)", f.allVerdicts(), accepted)
	}
}

func TestConcurrentDuplicateAppliesWhenTheFirstFails(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	calls := 0
	started := make(chan struct{})
	release := make(chan struct{})
	f.setOnEvent(func(context.Context, webhook.Event) error {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			close(started)
			<-release
			return errors.New("cache unavailable")
		}
		return nil
	})
	body := eventBody("idem-first-fails", nil)
	sig := f.signed(body)
	var first, second *httptest.ResponseRecorder
	var wg sync.WaitGroup
	wg.Go(func() { first = f.post(body, sig) })
	<-started
	wg.Go(func() { second = f.post(body, sig) })
	time.Sleep(30 * time.Millisecond) // the second waits on the busy key
	close(release)
	wg.Wait()
	expect(t, first, http.StatusServiceUnavailable, wantUnavailable)
	expect(t, second, http.StatusOK, wantAccepted)
	if n := len(f.applied()); n != 1 {
		t.Errorf("applied %d times, want 1", n)
	}
}

func TestBusyKeyTimesOut(t *testing.T) {
	f := newFixture(t, func(c *webhook.Config) { c.BusyWait = 50 * time.Millisecond })
	release := make(chan struct{})
	started := make(chan struct{})
	f.setOnEvent(func(context.Context, webhook.Event) error { close(started); <-release; return nil })
	body := eventBody("idem-slow", nil)
	sig := f.signed(body)
	var wg sync.WaitGroup
	var first *httptest.ResponseRecorder
	wg.Go(func() { first = f.post(body, sig) })
	<-started
	expect(t, f.post(body, sig), http.StatusServiceUnavailable, wantUnavailable)
	if v := f.lastVerdict(); v != webhook.VerdictBusy {
		t.Errorf("verdict = %q, want %q", v, webhook.VerdictBusy)
	}
	close(release)
	wg.Wait()
	expect(t, first, http.StatusOK, wantAccepted)
}

// TestRefused: every delivery that cannot be verified or is malformed is
// 400 facade.webhook_invalid, applies nothing and records nothing.
func TestRefused(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	type tc struct {
		name    string
		body    []byte
		sig     func(f *fixture, body []byte) string
		verdict string
	}
	good := eventBody("idem-refused", nil)
	signedWith := func(claims func(f *fixture, body []byte) jwt.MapClaims) func(*fixture, []byte) string {
		return func(f *fixture, body []byte) string { return f.moneyKit.sign(t, claims(f, body)) }
	}
	withClaim := func(k string, v any) func(*fixture, []byte) string {
		return signedWith(func(f *fixture, body []byte) jwt.MapClaims {
			c := f.claimsFor(body)
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
			return c
		})
	}
	cases := []tc{
		{"forged: another key with MoneyKit's kid", good, func(f *fixture, body []byte) string {
			return newSigner(t, f.moneyKit.kid).sign(t, f.claimsFor(body))
		}, webhook.VerdictInvalidSignature},
		{"replayed: iat 6 minutes old", good, func(f *fixture, body []byte) string {
			c := f.claimsFor(body)
			c["iat"] = f.clock.Now().Add(-6 * time.Minute).Unix()
			return f.moneyKit.sign(t, c)
		}, webhook.VerdictStale},
		{"future iat: 6 minutes ahead", good, func(f *fixture, body []byte) string {
			c := f.claimsFor(body)
			c["iat"] = f.clock.Now().Add(6 * time.Minute).Unix()
			return f.moneyKit.sign(t, c)
		}, webhook.VerdictStale},
		{"no iat", good, withClaim("iat", nil), webhook.VerdictStale},
		{"exp passed", good, withClaim("exp", t0.Add(-10*time.Minute).Unix()), webhook.VerdictStale},
		{"HS256 with the public key as secret", good, func(f *fixture, body []byte) string {
			pub, err := x509.MarshalPKIXPublicKey(&f.moneyKit.priv.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, f.claimsFor(body))
			tok.Header["kid"] = f.moneyKit.kid
			s, err := tok.SignedString(pub)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, webhook.VerdictWrongAlg},
		{"RS256", good, func(f *fixture, body []byte) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, f.claimsFor(body))
			tok.Header["kid"] = f.moneyKit.kid
			s, err := tok.SignedString(rsaKey)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, webhook.VerdictWrongAlg},
		{"alg none", good, func(f *fixture, body []byte) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, f.claimsFor(body))
			tok.Header["kid"] = f.moneyKit.kid
			s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, webhook.VerdictWrongAlg},
		{"ES384 header on an ES256 key", good, func(f *fixture, body []byte) string {
			s := f.signed(body)
			head := jwtSegment(t, map[string]any{"alg": "ES384", "kid": f.moneyKit.kid, "typ": "JWT"})
			return head + s[strings.Index(s, "."):]
		}, webhook.VerdictWrongAlg},
		{"hash of another body", good, func(f *fixture, _ []byte) string {
			return f.signed(eventBody("idem-other", nil))
		}, webhook.VerdictHashMismatch},
		{"hash upper-case of another body", good, withClaim("request_body_sha256", strings.ToUpper(bodyHash([]byte("x")))), webhook.VerdictHashMismatch},
		{"hash missing", good, withClaim("request_body_sha256", nil), webhook.VerdictHashMismatch},
		{"hash not hex", good, withClaim("request_body_sha256", strings.Repeat("zz", 32)), webhook.VerdictHashMismatch},
		{"hash not a string", good, withClaim("request_body_sha256", 42), webhook.VerdictMalformedSignature},
		{"missing header", good, func(*fixture, []byte) string { return "" }, webhook.VerdictMissingSignature},
		{"not a JWT", good, func(*fixture, []byte) string { return "not-a-jwt" }, webhook.VerdictMalformedSignature},
		{"two segments", good, func(*fixture, []byte) string { return "eyJhbGciOiJFUzI1NiJ9.e30" }, webhook.VerdictMalformedSignature},
		{"four segments", good, func(f *fixture, body []byte) string { return f.signed(body) + ".x" }, webhook.VerdictMalformedSignature},
		{"header not JSON", good, func(*fixture, []byte) string { return "bm90IGpzb24.e30.c2ln" }, webhook.VerdictMalformedSignature},
		{"no kid", good, func(f *fixture, body []byte) string {
			s := f.signed(body)
			return jwtSegment(t, map[string]any{"alg": "ES256", "typ": "JWT"}) + s[strings.Index(s, "."):]
		}, webhook.VerdictMalformedSignature},
		{"kid not a string", good, func(f *fixture, body []byte) string {
			s := f.signed(body)
			return jwtSegment(t, map[string]any{"alg": "ES256", "kid": 7}) + s[strings.Index(s, "."):]
		}, webhook.VerdictMalformedSignature},
		{"signature bytes garbled", good, func(f *fixture, body []byte) string {
			s := f.signed(body)
			return s[:len(s)-4] + "AAAA"
		}, webhook.VerdictInvalidSignature},
		{"claims tampered (signature of other claims)", good, func(f *fixture, body []byte) string {
			s := strings.Split(f.signed(body), ".")
			other := strings.Split(f.signed(eventBody("x", nil)), ".")
			return s[0] + "." + other[1] + "." + s[2]
		}, webhook.VerdictInvalidSignature},
		{"oversized header", good, func(*fixture, []byte) string { return strings.Repeat("a", webhook.MaxSignatureBytes+1) }, webhook.VerdictMalformedSignature},
		{"non-JSON body", []byte("state=completed"), nil, webhook.VerdictBadBody},
		{"empty body", []byte(""), nil, webhook.VerdictBadBody},
		{"JSON array", []byte(`[{"webhook_idempotency_key":"k"}]`), nil, webhook.VerdictBadBody},
		{"two JSON values", append(eventBody("k2", nil), []byte(" {}")...), nil, webhook.VerdictBadBody},
		{"truncated JSON", good[:len(good)-3], nil, webhook.VerdictBadBody},
		{"missing idempotency key", eventBody("", map[string]any{"webhook_idempotency_key": nil}), nil, webhook.VerdictBadBody},
		{"empty idempotency key", eventBody("", nil), nil, webhook.VerdictBadBody},
		{"idempotency key too long", eventBody(strings.Repeat("k", webhook.MaxIdempotencyKeyLen+1), nil), nil, webhook.VerdictBadBody},
		{"idempotency key with a control character", eventBody("k\n1", nil), nil, webhook.VerdictBadBody},
		{"idempotency key a number", eventBody("", map[string]any{"webhook_idempotency_key": 12}), nil, webhook.VerdictBadBody},
		{"missing link_id", eventBody("k3", map[string]any{"link_id": nil}), nil, webhook.VerdictBadBody},
		{"link_id a dot segment", eventBody("k4", map[string]any{"link_id": ".."}), nil, webhook.VerdictBadBody},
		{"link_id too long", eventBody("k5", map[string]any{"link_id": strings.Repeat("m", 129)}), nil, webhook.VerdictBadBody},
		{"link_id with a control character", eventBody("k6", map[string]any{"link_id": "mk_\x00"}), nil, webhook.VerdictBadBody},
		{"missing webhook_event", eventBody("k7", map[string]any{"webhook_event": nil}), nil, webhook.VerdictBadBody},
		{"webhook_event too long", eventBody("k8", map[string]any{"webhook_event": strings.Repeat("e", webhook.MaxEventNameLen+1)}), nil, webhook.VerdictBadBody},
		{"state a number", eventBody("k9", map[string]any{"state": 3}), nil, webhook.VerdictBadBody},
		{"link_tags not strings", eventBody("k10", map[string]any{"link_tags": []int{1}}), nil, webhook.VerdictBadBody},
		{"major version not a number", eventBody("k11", map[string]any{"webhook_major_version": "one"}), nil, webhook.VerdictBadBody},
		{"error_message too long", eventBody("k12", map[string]any{"error_message": strings.Repeat("x", webhook.MaxErrorMessageLen+1)}), nil, webhook.VerdictBadBody},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			sig := c.sig
			if sig == nil {
				sig = func(f *fixture, body []byte) string { return f.signed(body) }
			}
			expect(t, f.post(c.body, sig(f, c.body)), http.StatusBadRequest, wantInvalid)
			if v := f.lastVerdict(); v != c.verdict {
				t.Errorf("verdict = %q, want %q", v, c.verdict)
			}
			if n := len(f.applied()); n != 0 {
				t.Errorf("applied %d events, want none", n)
			}
			if n := f.store.Len(); n != 0 {
				t.Errorf("the store holds %d keys, want none", n)
			}
			// The genuine delivery still goes through.
			expect(t, f.deliver(good), http.StatusOK, wantAccepted)
		})
	}
}

// jwtSegment is the base64url JSON of v.
func jwtSegment(tb testing.TB, v map[string]any) string {
	tb.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{})
	tok.Header = v
	s, err := tok.SigningString()
	if err != nil {
		tb.Fatal(err)
	}
	return s[:strings.Index(s, ".")]
}

func TestIATWithinMaxAgeAccepted(t *testing.T) {
	for _, skew := range []time.Duration{-webhook.DefaultMaxAge + time.Second, webhook.DefaultMaxAge - time.Second} {
		f := newFixture(t)
		body := eventBody("idem-skew", nil)
		c := f.claimsFor(body)
		c["iat"] = f.clock.Now().Add(skew).Unix()
		expect(t, f.post(body, f.moneyKit.sign(t, c)), http.StatusOK, wantAccepted)
	}
	// MaxAge is a setting.
	f := newFixture(t, func(c *webhook.Config) { c.MaxAge = time.Minute })
	body := eventBody("idem-maxage", nil)
	c := f.claimsFor(body)
	c["iat"] = f.clock.Now().Add(-2 * time.Minute).Unix()
	expect(t, f.post(body, f.moneyKit.sign(t, c)), http.StatusBadRequest, wantInvalid)
}

func TestForgeryThenGenuineApplied(t *testing.T) {
	f := newFixture(t)
	body := eventBody("idem-shared", nil)
	forger := newSigner(t, f.moneyKit.kid)
	expect(t, f.post(body, forger.sign(t, f.claimsFor(body))), http.StatusBadRequest, wantInvalid)
	// A forgery of a verified-looking body with a stolen key id but a bad hash.
	evil := eventBody("idem-shared", map[string]any{"link_id": "mk_attacker"})
	expect(t, f.post(evil, f.signed(body)), http.StatusBadRequest, wantInvalid)
	expect(t, f.deliver(body), http.StatusOK, wantAccepted)
	if got := f.applied(); len(got) != 1 || got[0].LinkID != testLinkID {
		t.Errorf("applied %+v, want the genuine event once", got)
	}
}

func TestOnEventFailureIsRetried(t *testing.T) {
	for _, failure := range []string{"error", "panic"} {
		t.Run(failure, func(t *testing.T) {
			f := newFixture(t)
			fail := true
			f.setOnEvent(func(context.Context, webhook.Event) error {
				if fail {
					if failure == "panic" {
						panic("boom")
					}
					return errors.New("redis down")
				}
				return nil
			})
			body := eventBody("idem-retry", nil)
			expect(t, f.deliver(body), http.StatusServiceUnavailable, wantUnavailable)
			if v := f.lastVerdict(); v != webhook.VerdictApplyFailed {
				t.Errorf("verdict = %q, want %q", v, webhook.VerdictApplyFailed)
			}
			if n := f.store.Len(); n != 0 {
				t.Errorf("the store holds %d keys after a failed apply, want none", n)
			}
			f.setOnEvent(nil)
			f.clock.Advance(time.Minute)
			expect(t, f.deliver(body), http.StatusOK, wantAccepted)
			expect(t, f.deliver(body), http.StatusOK, wantAccepted)
			if n := len(f.applied()); n != 1 {
				t.Errorf("applied %d times, want 1", n)
			}
		})
	}
}

func TestOnEventContextOutlivesTheRequest(t *testing.T) {
	f := newFixture(t, func(c *webhook.Config) { c.ApplyTimeout = time.Second })
	var deadline time.Time
	var hasDeadline bool
	var ctxErr error
	f.setOnEvent(func(ctx context.Context, _ webhook.Event) error {
		deadline, hasDeadline = ctx.Deadline()
		ctxErr = ctx.Err()
		return nil
	})
	body := eventBody("idem-ctx", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // MoneyKit hung up
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, webhook.Path, bytes.NewReader(body))
	req.Header.Set(webhook.SignatureHeader, f.signed(body))
	// The keys are fetched with a context detached from the request too.
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	expect(t, rec, http.StatusOK, wantAccepted)
	if ctxErr != nil || !hasDeadline || time.Until(deadline) > time.Second {
		t.Errorf("OnEvent context: err %v, deadline %v (%v): want live, within ApplyTimeout", ctxErr, deadline, hasDeadline)
	}
}

func TestOversizedBody(t *testing.T) {
	f := newFixture(t)
	// With a Content-Length: refused before reading.
	big := bytes.Repeat([]byte(" "), webhook.MaxBodyBytes+1)
	counted := &countingReader{r: bytes.NewReader(big)}
	req := httptest.NewRequest(http.MethodPost, webhook.Path, counted)
	req.ContentLength = int64(len(big))
	req.Header.Set(webhook.SignatureHeader, f.signed(big))
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	expect(t, rec, http.StatusRequestEntityTooLarge, wantInvalid)
	if counted.n != 0 {
		t.Errorf("read %d bytes of a body whose Content-Length is over the limit, want 0", counted.n)
	}
	// Without one (chunked): read up to the limit (and the one byte that
	// shows it is over), no further.
	huge := bytes.Repeat([]byte(" "), 4<<20)
	counted = &countingReader{r: bytes.NewReader(huge)}
	req = httptest.NewRequest(http.MethodPost, webhook.Path, counted)
	req.ContentLength = -1
	req.Header.Set(webhook.SignatureHeader, f.signed(huge))
	rec = httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	expect(t, rec, http.StatusRequestEntityTooLarge, wantInvalid)
	if counted.n > webhook.MaxBodyBytes+1 {
		t.Errorf("read %d bytes of an oversized body, want at most %d", counted.n, webhook.MaxBodyBytes+1)
	}
	if v := f.lastVerdict(); v != webhook.VerdictTooLarge {
		t.Errorf("verdict = %q", v)
	}
	if f.jwks.fetches.Load() != 0 {
		t.Error("an oversized delivery caused a JWKS fetch")
	}
	// Exactly the limit is fine.
	body := eventBody("idem-limit", nil)
	body = append(body[:len(body)-1], []byte(`,"pad":"`)...)
	body = append(body, bytes.Repeat([]byte("p"), webhook.MaxBodyBytes-len(body)-2)...)
	body = append(body, '"', '}')
	if len(body) != webhook.MaxBodyBytes {
		t.Fatalf("body is %d bytes", len(body))
	}
	expect(t, f.deliver(body), http.StatusOK, wantAccepted)
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestMethodNotAllowed(t *testing.T) {
	f := newFixture(t)
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodHead, http.MethodDelete, http.MethodOptions} {
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, httptest.NewRequest(m, webhook.Path, nil))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != http.MethodPost {
			t.Errorf("%s: %d Allow %q, want 405 Allow POST", m, rec.Code, rec.Header().Get("Allow"))
		}
		if m != http.MethodHead && rec.Body.String() != wantInvalid {
			t.Errorf("%s: body %s", m, rec.Body)
		}
	}
	if v := f.lastVerdict(); v != webhook.VerdictMethodNotAllowed {
		t.Errorf("verdict = %q", v)
	}
}

func TestEventKinds(t *testing.T) {
	cases := []struct {
		name     string
		override map[string]any
		want     webhook.Event
	}{
		{"product refresh failed", map[string]any{"state": "failed", "error_message": "The institution is down.", "state_changed_at": "2024-05-01T11:00:00"},
			webhook.Event{Kind: webhook.ProductRefresh, Product: "identity", State: "failed", RefreshState: webhook.RefreshFailed,
				ErrorMessage: "The institution is down.", OccurredAt: time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC)}},
		{"product refresh pending", map[string]any{"state": "pending"},
			webhook.Event{Kind: webhook.ProductRefresh, Product: "identity", State: "pending", RefreshState: webhook.RefreshPending,
				OccurredAt: time.Date(2024, 5, 1, 11, 59, 57, 0, time.UTC)}},
		{"product refresh in progress", map[string]any{"state": "in_progress"},
			webhook.Event{Kind: webhook.ProductRefresh, Product: "identity", State: "in_progress", RefreshState: webhook.RefreshInProgress,
				OccurredAt: time.Date(2024, 5, 1, 11, 59, 57, 0, time.UTC)}},
		{"product refresh of a new state", map[string]any{"state": "queued"},
			webhook.Event{Kind: webhook.ProductRefresh, Product: "identity", State: "queued", RefreshState: webhook.RefreshUnknown,
				OccurredAt: time.Date(2024, 5, 1, 11, 59, 57, 0, time.UTC)}},
		{"state changed", map[string]any{"webhook_event": "link.state_changed", "product": nil, "state_changed_at": nil,
			"state": "error", "error": "auth_expired", "error_message": "Reconnect."},
			webhook.Event{Kind: webhook.StateChanged, State: "error", LinkState: "error", LinkError: "auth_expired",
				ErrorMessage: "Reconnect.", RefreshState: webhook.RefreshUnknown, OccurredAt: time.Date(2024, 5, 1, 11, 59, 58, 0, time.UTC)}},
		{"transactions", map[string]any{"webhook_event": "transactions.updates_available", "product": nil, "state": nil,
			"state_changed_at": nil, "has_history": true, "webhook_timestamp": "2024-05-01T13:59:58+02:00"},
			webhook.Event{Kind: webhook.TransactionsUpdatesAvailable, HasHistory: true, RefreshState: webhook.RefreshUnknown,
				OccurredAt: time.Date(2024, 5, 1, 11, 59, 58, 0, time.UTC)}},
		{"a kind this API does not know", map[string]any{"webhook_event": "link.sparkled", "product": nil, "state": nil,
			"state_changed_at": nil, "webhook_timestamp": "yesterday", "sparkle": map[string]any{"new": true}},
			webhook.Event{Kind: webhook.Unknown, RefreshState: webhook.RefreshUnknown}},
		{"a major version this code does not know", map[string]any{"webhook_major_version": 2},
			webhook.Event{Kind: webhook.Unknown, Product: "identity", State: "completed", RefreshState: webhook.RefreshUnknown,
				OccurredAt: time.Date(2024, 5, 1, 11, 59, 57, 0, time.UTC)}},
		{"nulls", map[string]any{"link_tags": nil, "state": nil, "product": nil},
			webhook.Event{Kind: webhook.ProductRefresh, RefreshState: webhook.RefreshUnknown, OccurredAt: time.Date(2024, 5, 1, 11, 59, 57, 0, time.UTC)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			body := eventBody("idem-kind", c.override)
			expect(t, f.deliver(body), http.StatusOK, wantAccepted)
			got := f.applied()
			if len(got) != 1 {
				t.Fatalf("applied %d events", len(got))
			}
			want := c.want
			want.LinkID, want.IdempotencyKey = testLinkID, "idem-kind"
			want.RawEvent = "link.product_refresh"
			if ev, ok := c.override["webhook_event"].(string); ok {
				want.RawEvent = ev
			}
			if _, ok := c.override["link_tags"]; !ok {
				want.LinkTags = []string{"customer"}
			}
			if diff := cmp.Diff(want, got[0]); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []webhook.Config{
		{ClientID: "c"},
		{BaseURL: "api.moneykit.com", ClientID: "c"},
		{BaseURL: "ftp://api.moneykit.com", ClientID: "c"},
		{BaseURL: "https://api.moneykit.com"},
	} {
		if _, err := webhook.New(cfg); err == nil {
			t.Errorf("New(%+v) = nil error", cfg)
		}
	}
	if _, err := webhook.New(webhook.Config{BaseURL: "https://api.moneykit.com/", ClientID: "c"}); err != nil {
		t.Errorf("New: %v", err)
	}
}

func TestVerdictsAreAFixedSet(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range webhook.Verdicts() {
		if seen[v] || v == "" || strings.ContainsAny(v, " :") {
			t.Errorf("verdict %q repeated or not a label", v)
		}
		seen[v] = true
	}
	if len(seen) < 10 {
		t.Errorf("%d verdicts", len(seen))
	}
}
