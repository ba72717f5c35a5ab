package redisstore

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/upstream/webhook"
)

func claimOK(t *testing.T, s webhook.Store, key, token string, lease time.Duration, want webhook.ClaimState) {
	t.Helper()
	got, err := s.Claim(context.Background(), key, token, lease)
	if err != nil || got != want {
		t.Fatalf("Claim(%s, %s) = %v, %v; want %v", key, token, got, err, want)
	}
}

// TestWebhookDedupeSharedByReplicas: a key claimed on one replica is busy
// on another, free again once released, done everywhere once confirmed.
func TestWebhookDedupeSharedByReplicas(t *testing.T) {
	e := newEnv(t)
	a := NewWebhookDedupe(e.open(t), testNamespace)
	b := NewWebhookDedupe(e.open(t), testNamespace)
	ctx := context.Background()
	claimOK(t, a, "evt-1", "ta", time.Minute, webhook.Claimed)
	claimOK(t, b, "evt-1", "tb", time.Minute, webhook.Busy)
	claimOK(t, a, "evt-1", "ta", time.Minute, webhook.Claimed) // its holder may claim again
	b.Release(ctx, "evt-1", "tb")                              // not b's: changes nothing
	claimOK(t, b, "evt-1", "tb", time.Minute, webhook.Busy)
	a.Release(ctx, "evt-1", "ta") // the apply failed
	claimOK(t, b, "evt-1", "tb", time.Minute, webhook.Claimed)
	b.Confirm(ctx, "evt-1", "tb", time.Hour)
	claimOK(t, a, "evt-1", "tc", time.Minute, webhook.Done)
	a.Release(ctx, "evt-1", "tb") // a done key is never released
	claimOK(t, a, "evt-1", "td", time.Minute, webhook.Done)
	e.errs.check(t)
}

// TestWebhookDedupeTTLs: the claim lives for its lease (so a replica that
// died mid-apply does not hold a key for ever), the confirmation for the
// dedupe TTL.
func TestWebhookDedupeTTLs(t *testing.T) {
	e := newEnv(t)
	d := NewWebhookDedupe(e.open(t), testNamespace)
	ctx := context.Background()
	claimOK(t, d, "evt-ttl", "t1", 40*time.Second, webhook.Claimed)
	keys := e.keys(t)
	if len(keys) != 1 || !strings.HasPrefix(keys[0], e.prefix+"webhook:") {
		t.Fatalf("keys %v, want one under %swebhook:", keys, e.prefix)
	}
	pttl := e.rdb.PTTL(ctx, keys[0]).Val()
	within(t, "claim PTTL", pttl, 39*time.Second, 40*time.Second)
	d.Confirm(ctx, "evt-ttl", "t1", webhook.DefaultDedupeTTL)
	pttl = e.rdb.PTTL(ctx, keys[0]).Val()
	within(t, "confirmed PTTL", pttl, webhook.DefaultDedupeTTL-time.Second, webhook.DefaultDedupeTTL)

	claimOK(t, d, "evt-lease", "t1", 50*time.Millisecond, webhook.Claimed)
	other := NewWebhookDedupe(e.open(t), testNamespace)
	claimOK(t, other, "evt-lease", "t2", time.Minute, webhook.Busy)
	time.Sleep(100 * time.Millisecond)
	claimOK(t, other, "evt-lease", "t2", time.Minute, webhook.Claimed)
}

// TestWebhookDedupeKeyNames: Redis holds an HMAC of the idempotency key,
// not the key; two MoneyKit apps do not share keys.
func TestWebhookDedupeKeyNames(t *testing.T) {
	e := newEnv(t)
	c := mustOpen(t, Config{URL: e.url, Prefix: e.prefix, NameKey: NameKey(testKey(3))})
	d := NewWebhookDedupe(c, testNamespace)
	ctx := context.Background()
	claimOK(t, d, "idem-guessable-42", "t1", time.Minute, webhook.Claimed)
	d.Confirm(ctx, "idem-guessable-42", "t1", time.Hour)
	for _, k := range e.keys(t) {
		if strings.Contains(k, "idem-guessable") || strings.Contains(k, hashName(testNamespace, "idem-guessable-42")) {
			t.Errorf("key %q names the idempotency key", k)
		}
		v := e.rdb.Get(ctx, k).Val()
		if strings.Contains(v, "idem") {
			t.Errorf("value %q holds the idempotency key", v)
		}
	}
	otherApp := NewWebhookDedupe(c, "another-app")
	claimOK(t, otherApp, "idem-guessable-42", "t2", time.Minute, webhook.Claimed)
}

// TestWebhookDedupeConcurrentClaims: of many deliveries of one key on three
// replicas at once, exactly one claims it.
func TestWebhookDedupeConcurrentClaims(t *testing.T) {
	e := newEnv(t)
	var stores []*WebhookDedupe
	for range 3 {
		stores = append(stores, NewWebhookDedupe(e.open(t), testNamespace))
	}
	var claimed atomic.Int32
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			st, err := stores[i%3].Claim(context.Background(), "evt-race", fmt.Sprint("t", i), time.Minute)
			if err != nil {
				t.Error(err)
			}
			if st == webhook.Claimed {
				claimed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := claimed.Load(); n != 1 {
		t.Errorf("%d claims succeeded, want 1", n)
	}
}

// TestWebhookDedupeFallsBack: with Redis down the replica dedupes on its
// own, reporting OpWebhook, and never fails.
func TestWebhookDedupeFallsBack(t *testing.T) {
	d := openDead(t, "")
	s := NewWebhookDedupe(d.c, testNamespace)
	ctx := context.Background()
	claimOK(t, s, "evt-down", "t1", time.Minute, webhook.Claimed)
	claimOK(t, s, "evt-down", "t2", time.Minute, webhook.Busy)
	if err := s.Confirm(ctx, "evt-down", "t1", time.Hour); err != nil {
		t.Errorf("Confirm: %v", err)
	}
	claimOK(t, s, "evt-down", "t3", time.Minute, webhook.Done)
	if d.errs.count(OpWebhook) == 0 {
		t.Errorf("no %s fallback reported: %v", OpWebhook, d.errs.all())
	}
}

// TestWebhookReplicasApplyOnce: MoneyKit's delivery reaching two replicas
// (their receivers sharing the dedupe through Redis) at once, and again
// later, is applied once.
func TestWebhookReplicasApplyOnce(t *testing.T) {
	e := newEnv(t)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := priv.PublicKey.Bytes()
	enc := base64.RawURLEncoding.EncodeToString
	jwks, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "EC", "crv": "P-256", "x": enc(pub[1:33]), "y": enc(pub[33:65]), "kid": "k1", "use": "sig", "alg": "ES256",
	}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(jwks) }))
	defer srv.Close()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()

	var applied atomic.Int32
	var replicas []*webhook.Handler
	for range 2 {
		h, err := webhook.New(webhook.Config{
			BaseURL: srv.URL, ClientID: "c", HTTPClient: &http.Client{Transport: tr},
			Store: NewWebhookDedupe(e.open(t), testNamespace), Log: zerolog.Nop(),
			OnEvent: func(context.Context, webhook.Event) error {
				applied.Add(1)
				time.Sleep(20 * time.Millisecond)
				return nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, h)
	}
	body := []byte(`{"webhook_major_version":1,"webhook_idempotency_key":"evt-e2e","link_id":"mk_sandbox_household",` +
		`"webhook_event":"link.product_refresh","product":"identity","state":"completed"}`)
	post := func(h *webhook.Handler) int {
		sum := bodySum(body)
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iat": time.Now().Unix(), "request_body_sha256": sum})
		tok.Header["kid"] = "k1"
		sig, err := tok.SignedString(priv)
		if err != nil {
			t.Error(err)
			return 0
		}
		req := httptest.NewRequest(http.MethodPost, webhook.Path, bytes.NewReader(body))
		req.Header.Set(webhook.SignatureHeader, sig)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if code := post(replicas[i%2]); code != http.StatusOK {
				t.Errorf("status %d, want 200", code)
			}
		})
	}
	wg.Wait()
	if code := post(replicas[1]); code != http.StatusOK {
		t.Errorf("a later retry: status %d", code)
	}
	if n := applied.Load(); n != 1 {
		t.Errorf("applied %d times over two replicas, want 1", n)
	}
	e.errs.check(t)
}

func bodySum(b []byte) string { return sha(string(b)) }
