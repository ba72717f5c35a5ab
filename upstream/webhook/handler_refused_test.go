package webhook_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mkgraph/mkgraph/upstream/webhook"
)

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
