package webhook_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mkgraph/mkgraph/upstream/webhook"
)

// forgedKID posts a delivery signed by a key whose kid MoneyKit never
// published.
func (f *fixture) forgedKID(i int) *httptest.ResponseRecorder {
	f.t.Helper()
	body := eventBody(fmt.Sprintf("idem-forged-%d", i), nil)
	return f.post(body, newSigner(f.t, fmt.Sprintf("forged-%d", i)).sign(f.t, f.claimsFor(body)))
}

func TestUnknownKIDRefetchIsRateLimited(t *testing.T) {
	f := newFixture(t)
	expect(t, f.deliver(eventBody("idem-warm", nil)), http.StatusOK, wantAccepted)
	if n := f.jwks.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches to warm the cache, want 1", n)
	}
	for i := range 20 {
		expect(t, f.forgedKID(i), http.StatusBadRequest, wantInvalid)
		if v := f.lastVerdict(); v != webhook.VerdictUnknownKID {
			t.Errorf("verdict = %q, want %q", v, webhook.VerdictUnknownKID)
		}
		f.clock.Advance(time.Second)
	}
	if n := f.jwks.fetches.Load(); n != 2 {
		t.Errorf("twenty unknown kids within the interval cost %d fetches after the first, want 1", n-1)
	}
	f.clock.Advance(webhook.DefaultRefetchInterval)
	expect(t, f.forgedKID(99), http.StatusBadRequest, wantInvalid)
	if n := f.jwks.fetches.Load(); n != 3 {
		t.Errorf("after the interval: %d fetches, want 3", n)
	}
	// MoneyKit's own key still verifies without a fetch.
	expect(t, f.deliver(eventBody("idem-after", nil)), http.StatusOK, wantAccepted)
	if n := f.jwks.fetches.Load(); n != 3 {
		t.Errorf("a known kid caused a fetch (%d)", n)
	}
}

func TestUnknownKIDsOnAColdCacheCostOneFetch(t *testing.T) {
	f := newFixture(t, func(c *webhook.Config) { c.RefetchInterval = time.Minute })
	for i := range 20 {
		expect(t, f.forgedKID(i), http.StatusBadRequest, wantInvalid)
	}
	if n := f.jwks.fetches.Load(); n != 1 {
		t.Errorf("twenty unknown kids on a cold cache cost %d fetches, want 1", n)
	}
	f.clock.Advance(59 * time.Second)
	expect(t, f.forgedKID(20), http.StatusBadRequest, wantInvalid)
	if n := f.jwks.fetches.Load(); n != 1 {
		t.Errorf("within RefetchInterval: %d fetches, want 1", n)
	}
	f.clock.Advance(time.Second)
	expect(t, f.forgedKID(21), http.StatusBadRequest, wantInvalid)
	if n := f.jwks.fetches.Load(); n != 2 {
		t.Errorf("after RefetchInterval: %d fetches, want 2", n)
	}
}

func TestKeyRotation(t *testing.T) {
	f := newFixture(t)
	expect(t, f.deliver(eventBody("idem-old-key", nil)), http.StatusOK, wantAccepted)
	next := newSigner(t, "mk-key-2")
	f.jwks.setKeys(f.moneyKit, next)
	f.clock.Advance(time.Second) // well within RefetchInterval of the first fetch
	body := eventBody("idem-new-key", nil)
	expect(t, f.post(body, next.sign(t, f.claimsFor(body))), http.StatusOK, wantAccepted)
	if n := f.jwks.fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2 (the rotation picked up at once)", n)
	}
	// The old key is retired: after the next refetch it no longer verifies.
	f.moneyKit = next
	f.jwks.setKeys(next)
	f.clock.Advance(webhook.DefaultJWKSTTL)
	old := newSigner(t, "mk-key-1")
	body = eventBody("idem-retired", nil)
	expect(t, f.post(body, old.sign(t, f.claimsFor(body))), http.StatusBadRequest, wantInvalid)
	expect(t, f.deliver(eventBody("idem-next", nil)), http.StatusOK, wantAccepted)
}

func TestJWKSCachedForTTL(t *testing.T) {
	f := newFixture(t, func(c *webhook.Config) { c.JWKSTTL = time.Hour })
	for i := range 5 {
		expect(t, f.deliver(eventBody(fmt.Sprintf("idem-%d", i), nil)), http.StatusOK, wantAccepted)
		f.clock.Advance(10 * time.Minute)
	}
	if n := f.jwks.fetches.Load(); n != 1 {
		t.Errorf("%d fetches within the TTL, want 1", n)
	}
	f.clock.Advance(20 * time.Minute) // 60 min since the fetch
	expect(t, f.deliver(eventBody("idem-expired", nil)), http.StatusOK, wantAccepted)
	if n := f.jwks.fetches.Load(); n != 2 {
		t.Errorf("%d fetches after the TTL, want 2", n)
	}
	// Past the TTL the old keys are not used, even when the refetch fails.
	f.clock.Advance(time.Hour)
	f.jwks.fail(http.StatusServiceUnavailable)
	expect(t, f.deliver(eventBody("idem-outage", nil)), http.StatusServiceUnavailable, wantUnavailable)
}

func TestDefaultJWKSTTLIsWithinMoneyKitsLimit(t *testing.T) {
	if webhook.DefaultJWKSTTL != 12*time.Hour || webhook.DefaultMaxAge != 5*time.Minute ||
		webhook.DefaultDedupeTTL < 3*time.Hour || webhook.DefaultRefetchInterval != 30*time.Second ||
		webhook.MaxBodyBytes != 64<<10 {
		t.Error("a default changed: update the package documentation and the README")
	}
}

// TestJWKSOutage: a delivery whose key cannot be fetched may be genuine:
// 503, so that MoneyKit retries; the fetch is not retried before
// RefetchInterval, then recovers.
func TestJWKSOutage(t *testing.T) {
	for _, c := range []struct {
		name      string
		breakJWKS func(*jwksServer)
	}{
		{"503", func(s *jwksServer) { s.fail(http.StatusServiceUnavailable) }},
		{"401", func(s *jwksServer) { s.fail(http.StatusUnauthorized) }},
		{"HTML", func(s *jwksServer) { s.setRaw("<html>captive portal</html>") }},
		{"not a JWK Set", func(s *jwksServer) { s.setRaw(`{"nokeys":true}`) }},
		{"too large", func(s *jwksServer) { s.setRaw(`{"keys":[],"pad":"` + strings.Repeat("x", webhook.MaxJWKSBytes) + `"}`) }},
		{"connection refused", func(s *jwksServer) { s.Close() }},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			c.breakJWKS(f.jwks)
			body := eventBody("idem-outage", nil)
			expect(t, f.deliver(body), http.StatusServiceUnavailable, wantUnavailable)
			if v := f.lastVerdict(); v != webhook.VerdictJWKSUnavailable {
				t.Errorf("verdict = %q, want %q", v, webhook.VerdictJWKSUnavailable)
			}
			fetches := f.jwks.fetches.Load()
			f.clock.Advance(webhook.DefaultRefetchInterval - time.Second)
			expect(t, f.deliver(body), http.StatusServiceUnavailable, wantUnavailable)
			if n := f.jwks.fetches.Load(); n != fetches {
				t.Errorf("a failed JWKS was asked again within RefetchInterval (%d → %d)", fetches, n)
			}
			if n := f.store.Len(); n != 0 {
				t.Errorf("the store holds %d keys", n)
			}
			if c.name == "connection refused" {
				return
			}
			f.jwks.fail(0)
			f.jwks.setRaw("")
			f.clock.Advance(time.Second)
			expect(t, f.deliver(body), http.StatusOK, wantAccepted)
		})
	}
}

func TestJWKSKeepsOnlyES256SigningKeys(t *testing.T) {
	f := newFixture(t)
	enc := newSigner(t, "enc-key")
	k := enc.jwk()
	k["use"] = "enc"
	rs := newSigner(t, "rs-key")
	r := rs.jwk()
	r["alg"] = "RS256"
	bad := map[string]any{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA", "kid": "bad-key"}
	oct := map[string]any{"kty": "oct", "k": "c2VjcmV0", "kid": "oct-key"}
	f.jwks.addKeys(k, r, bad, oct)
	// MoneyKit's key still works beside keys that do not parse.
	expect(t, f.deliver(eventBody("idem-ok", nil)), http.StatusOK, wantAccepted)
	for _, s := range []signer{enc, rs} {
		f.clock.Advance(webhook.DefaultRefetchInterval)
		body := eventBody("idem-"+s.kid, nil)
		expect(t, f.post(body, s.sign(t, f.claimsFor(body))), http.StatusBadRequest, wantInvalid)
		if v := f.lastVerdict(); v != webhook.VerdictUnknownKID {
			t.Errorf("%s: verdict %q, want %q", s.kid, v, webhook.VerdictUnknownKID)
		}
	}
	// HS256 with the "oct" key's secret names a kid the set has: refused for its alg.
	body := eventBody("idem-oct", nil)
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, f.claimsFor(body))
	tok.Header["kid"] = "oct-key"
	s, _ := tok.SignedString([]byte("secret"))
	expect(t, f.post(body, s), http.StatusBadRequest, wantInvalid)
}

func TestConcurrentDeliveriesShareOneFetch(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			rec := f.deliver(eventBody(fmt.Sprintf("idem-%d", i), nil))
			if rec.Code != http.StatusOK {
				t.Errorf("status %d", rec.Code)
			}
		})
	}
	wg.Wait()
	if n := f.jwks.fetches.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
}

// TestLogsHoldNoSecrets: refusals are logged at warn with a verdict; no
// log line holds the body, the signature, the delivery token or a claim.
func TestLogsHoldNoSecrets(t *testing.T) {
	f := newFixture(t)
	body := eventBody("idem-secret-key-5150", map[string]any{"error_message": "owner Jane Roe"})
	sig := f.signed(body)
	f.deliver(body)
	f.post(body, sig) // duplicate
	f.post(eventBody("idem-secret-key-5150", map[string]any{"link_id": "mk_private_link"}), sig)
	f.post(body, sig[:len(sig)-8]+"AAAAAAAA")
	f.post([]byte(`{"webhook_idempotency_key":"idem-secret-key-5150"}`), f.signed([]byte(`{"webhook_idempotency_key":"idem-secret-key-5150"}`)))
	f.post(body, "")
	f.forgedKID(1)
	f.clock.Advance(time.Hour)
	f.post(body, sig) // stale

	logs := f.log.String()
	parts := strings.Split(sig, ".")
	for _, secret := range []string{sig, parts[0], parts[1], parts[2], "idem-secret-key-5150", "Jane Roe", testLinkID,
		"mk_private_link", "delivery-token-secret-7f3a", bodyHash(body), f.moneyKit.kid, "forged-1"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs hold %q:\n%s", secret, logs)
		}
	}
	warns := 0
	sc := bufio.NewScanner(bytes.NewReader(f.log.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if m["level"] == "warn" {
			warns++
			if m["verdict"] == nil || m["verdict"] == "" || m["reason"] == nil {
				t.Errorf("warning without verdict or reason: %v", m)
			}
		}
	}
	if warns != 6 {
		t.Errorf("%d warnings, want 6 (one per refusal):\n%s", warns, logs)
	}
}
