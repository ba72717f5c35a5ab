package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
	"github.com/mkgraph/mkgraph/upstream/webhook"
)

// hookBody is a MoneyKit webhook body: a link.product_refresh of product in
// state, or another event when product is "".
func hookBody(linkID, key, event, product, state string) []byte {
	b := map[string]any{
		"webhook_major_version": 1, "webhook_minor_version": 0,
		"webhook_idempotency_key": key, "webhook_timestamp": time.Now().UTC().Format(time.RFC3339),
		"link_id": linkID, "link_tags": []string{}, "webhook_event": event,
	}
	if product != "" {
		b["product"] = product
	}
	if state != "" {
		b["state"] = state
	}
	out, err := json.Marshal(b)
	if err != nil {
		panic(err)
	}
	return out
}

// identityCompleted is the webhook saying linkID's identity data is fresh.
func identityCompleted(linkID, key string) []byte {
	return hookBody(linkID, key, "link.product_refresh", "identity", "completed")
}

// postWebhook POSTs body to the facade's receiver with the signature sig
// ("" for none).
func postWebhook(t *testing.T, c *http.Client, baseURL string, body []byte, sig string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, baseURL+webhook.Path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set("MoneyKit-Signature", sig)
	}
	return do(t, c, req)
}

// metric returns the value of the series line (name and labels as
// Prometheus writes them) on an admin listener's /metrics, 0 when absent.
func metric(t *testing.T, c *http.Client, adminAddr, series string) float64 {
	t.Helper()
	r := get(t, c, "http://"+adminAddr+"/metrics")
	for _, line := range strings.Split(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.Fields(v)[0], 64)
			if err != nil {
				t.Fatalf("metric %s: %q", series, line)
			}
			return f
		}
	}
	return 0
}

// sandboxRefresh asks the sandbox at baseURL to refresh linkID's identity
// and waits until it completed (the sandbox's data changed).
func sandboxRefresh(t *testing.T, sbx *sandbox.Server, baseURL, linkID string) {
	t.Helper()
	before := sbx.IdentityRefreshes(linkID)
	client, err := upstream.New(upstream.Config{BaseURL: baseURL, ClientID: sandbox.DefaultClientID, ClientSecret: sandbox.DefaultClientSecret, HTTPClient: newClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.RefreshProducts(t.Context(), linkID, []string{upstream.ProductIdentity}); err != nil {
		t.Fatalf("sandbox refresh: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for sbx.IdentityRefreshes(linkID) == before {
		if time.Now().After(deadline) {
			t.Fatal("the sandbox refresh did not complete within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// emailsQuery reads a link's owners' emails.
func emailsQuery(linkID string) gqlRequest {
	return gqlRequest{Query: `{ link(id: "` + linkID + `") { accounts { owners { emails { address } } } } }`}
}

// externalSandbox starts a sandbox of the test's own (so that the test can
// sign webhooks with its key) and returns it with the facade settings that
// point at it. Refreshes complete at once and may be asked for at any
// rate; it sends no webhooks itself.
func externalSandbox(t *testing.T) (*sandbox.Server, string, map[string]string) {
	t.Helper()
	sbx := sandbox.New(sandbox.Options{RefreshDelay: -1, RefreshInterval: -1})
	t.Cleanup(sbx.Close)
	u := startUpstream(t, sbx)
	return sbx, u, map[string]string{
		"MONEYKIT_BASE_URL":      u,
		"MONEYKIT_CLIENT_ID":     sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET": sandbox.DefaultClientSecret,
		"MKGRAPH_ADMIN_ADDR":     "127.0.0.1:0",
		// Tests change the sandbox's data faster than MoneyKit allows.
		"MKGRAPH_IDENTITY_BUDGET_PER_LINK": "0",
	}
}

// TestWebhookInvalidatesAndPublishes: a verified completed identity refresh
// drops the facade's cached answer, so the next read costs an upstream call
// and shows the refreshed data, and is published; a pending refresh and a
// repeated delivery change nothing of the cache.
func TestWebhookInvalidatesAndPublishes(t *testing.T) {
	sbx, sbxURL, env := externalSandbox(t)
	baseURL, logs, _ := startServer(t, env)
	admin := adminAddrOf(t, logs)
	c := newClient(t)
	link := sandbox.LinkCopyPrefix + "hook1"
	read := func() string {
		t.Helper()
		r := postGraphQL(t, c, baseURL, emailsQuery(link))
		if g := decodeGQL(t, r); r.status != 200 || len(g.Errors) > 0 {
			t.Fatalf("read: HTTP %d %s", r.status, r.body)
		}
		return string(r.body)
	}
	first := read()
	read()
	if n := sbx.IdentityCallsFor(link); n != 1 {
		t.Fatalf("two reads cost %d upstream calls, want 1", n)
	}
	sandboxRefresh(t, sbx, sbxURL, link)
	if got := read(); got != first || sbx.IdentityCallsFor(link) != 1 {
		t.Fatalf("before any webhook the cached answer should stand (calls %d)", sbx.IdentityCallsFor(link))
	}

	// Pending: published, no invalidation.
	pending := hookBody(link, "key-pending", "link.product_refresh", "identity", "pending")
	if r := postWebhook(t, c, baseURL, pending, sbx.SignWebhook(pending)); r.status != 200 {
		t.Fatalf("pending webhook: HTTP %d %s", r.status, r.body)
	}
	read()
	if n := sbx.IdentityCallsFor(link); n != 1 {
		t.Errorf("after a pending webhook a read cost an upstream call (%d calls)", n)
	}

	// Completed: the next read is fresh.
	done := identityCompleted(link, "key-done")
	if r := postWebhook(t, c, baseURL, done, sbx.SignWebhook(done)); r.status != 200 || string(r.body) != `{"status":"accepted"}` {
		t.Fatalf("completed webhook: HTTP %d %s", r.status, r.body)
	}
	if got := read(); !strings.Contains(got, "refreshed-1@example.com") {
		t.Errorf("after the completed webhook the answer lacks the refreshed email: %s", got)
	}
	if n := sbx.IdentityCallsFor(link); n != 2 {
		t.Errorf("%d upstream calls, want 2 (one after the invalidation)", n)
	}

	// MoneyKit's retry of the same delivery: answered 200, not applied again.
	if r := postWebhook(t, c, baseURL, done, sbx.SignWebhook(done)); r.status != 200 {
		t.Fatalf("repeated webhook: HTTP %d", r.status)
	}
	read()
	if n := sbx.IdentityCallsFor(link); n != 2 {
		t.Errorf("a repeated delivery invalidated again (%d calls)", n)
	}

	// A state change invalidates too.
	state := hookBody(link, "key-state", "link.state_changed", "", "error")
	if r := postWebhook(t, c, baseURL, state, sbx.SignWebhook(state)); r.status != 200 {
		t.Fatalf("state webhook: HTTP %d", r.status)
	}
	read()
	if n := sbx.IdentityCallsFor(link); n != 3 {
		t.Errorf("after link.state_changed: %d calls, want 3", n)
	}

	for series, want := range map[string]float64{
		`mkgraph_webhook_deliveries_total{verdict="accepted"}`:                              3,
		`mkgraph_webhook_deliveries_total{verdict="duplicate"}`:                             1,
		`mkgraph_link_events_published_total{kind="PRODUCT_REFRESH"}`:                       2,
		`mkgraph_link_events_published_total{kind="STATE_CHANGED"}`:                         1,
		`mkgraph_link_events_delivered_total{origin="webhook"}`:                             3,
		`mkgraph_identity_cache_invalidations_total{origin="webhook"}`:                      2,
		`mkgraph_http_requests_total{operation="",route="/webhooks/moneykit",status="200"}`: 4,
	} {
		if got := metric(t, c, admin, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

// TestWebhookRefusals: forged, replayed, future, wrong-alg, unknown-kid,
// hash-mismatched, unsigned, oversized and non-POST deliveries to the
// running server are refused and change nothing: the cache stays warm,
// nothing is published, and the idempotency key they carried is not
// recorded, so the genuine delivery after them still applies.
func TestWebhookRefusals(t *testing.T) {
	sbx, _, env := externalSandbox(t)
	baseURL, logs, _ := startServer(t, env)
	admin := adminAddrOf(t, logs)
	c := newClient(t)
	link := sandbox.LinkCopyPrefix + "hostile"
	postGraphQL(t, c, baseURL, emailsQuery(link))
	const key = "the-genuine-key"
	body := identityCompleted(link, key)
	foreign, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kid := sbx.KeyIDs()[0]
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iat": time.Now().Unix(), "request_body_sha256": "x"})
	hs.Header["kid"] = kid
	hsSig, err := hs.SignedString([]byte("a shared secret of at least 32 bytes!!"))
	if err != nil {
		t.Fatal(err)
	}
	big := identityCompleted(link, key)
	big = append(big[:len(big)-1], []byte(`,"pad":"`+strings.Repeat("x", webhook.MaxBodyBytes)+`"}`)...)

	for _, tt := range []struct {
		name, verdict string
		body          []byte
		sig           string
		status        int
	}{
		{"forged (foreign key, real kid)", webhook.VerdictInvalidSignature, body, sbx.SignWebhookWith(body, sandbox.SignOptions{Key: foreign, KeyID: kid}), 400},
		{"replayed (iat 10 min ago)", webhook.VerdictStale, body, sbx.SignWebhookWith(body, sandbox.SignOptions{IssuedAt: time.Now().Add(-10 * time.Minute)}), 400},
		{"future iat", webhook.VerdictStale, body, sbx.SignWebhookWith(body, sandbox.SignOptions{IssuedAt: time.Now().Add(10 * time.Minute)}), 400},
		{"wrong alg (HS256)", webhook.VerdictWrongAlg, body, hsSig, 400},
		{"unknown kid", webhook.VerdictUnknownKID, body, sbx.SignWebhookWith(body, sandbox.SignOptions{Key: foreign, KeyID: "mk-no-such-kid"}), 400},
		{"hash mismatch", webhook.VerdictHashMismatch, body, sbx.SignWebhookWith(body, sandbox.SignOptions{BodySHA256: strings.Repeat("0", 64)}), 400},
		{"signature of another body", webhook.VerdictHashMismatch, body, sbx.SignWebhook(identityCompleted(link, "other")), 400},
		{"unsigned", webhook.VerdictMissingSignature, body, "", 400},
		{"oversized", webhook.VerdictTooLarge, big, sbx.SignWebhook(big), 413},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := postWebhook(t, c, baseURL, tt.body, tt.sig)
			if r.status != tt.status || string(r.body) != `{"error_code":"facade.webhook_invalid"}` {
				t.Errorf("HTTP %d %s, want %d facade.webhook_invalid", r.status, r.body, tt.status)
			}
			if got := metric(t, c, admin, `mkgraph_webhook_deliveries_total{verdict="`+tt.verdict+`"}`); got < 1 {
				t.Errorf("verdict %s not counted", tt.verdict)
			}
		})
	}
	get := do(t, c, must(http.NewRequest(http.MethodGet, baseURL+webhook.Path, nil)))
	if get.status != http.StatusMethodNotAllowed || get.header.Get("Allow") != http.MethodPost {
		t.Errorf("GET: HTTP %d Allow %q, want 405 POST", get.status, get.header.Get("Allow"))
	}

	postGraphQL(t, c, baseURL, emailsQuery(link))
	if n := sbx.IdentityCallsFor(link); n != 1 {
		t.Errorf("after the refused deliveries a read cost an upstream call (%d calls): the cache was dropped", n)
	}
	if got := metric(t, c, admin, `mkgraph_link_events_published_total{kind="PRODUCT_REFRESH"}`); got != 0 {
		t.Errorf("%v events published from refused deliveries", got)
	}
	// The genuine delivery, with the key the forgeries carried, applies.
	if r := postWebhook(t, c, baseURL, body, sbx.SignWebhook(body)); r.status != 200 {
		t.Fatalf("genuine delivery after the forgeries: HTTP %d %s", r.status, r.body)
	}
	if got := metric(t, c, admin, `mkgraph_webhook_deliveries_total{verdict="accepted"}`); got != 1 {
		t.Errorf("accepted = %v, want 1 (not a duplicate)", got)
	}
	postGraphQL(t, c, baseURL, emailsQuery(link))
	if n := sbx.IdentityCallsFor(link); n != 2 {
		t.Errorf("after the genuine delivery: %d calls, want 2", n)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestWebhookLogsHoldNoIdentity: at debug level, the log of webhook traffic
// (accepted, refused, and the reads around them) holds no identity value,
// no signature and no idempotency key.
func TestWebhookLogsHoldNoIdentity(t *testing.T) {
	sbx, sbxURL, env := externalSandbox(t)
	env["MKGRAPH_LOG_LEVEL"] = "debug"
	baseURL, logs, stop := startServer(t, env)
	c := newClient(t)
	link := sandbox.LinkHousehold
	r := postGraphQL(t, c, baseURL, gqlRequest{Query: `{ link(id: "` + link + `") { ` + linkAllFields + ` } }`})
	sandboxRefresh(t, sbx, sbxURL, link)
	const key = "idem-key-5fd1c0ffee"
	body := identityCompleted(link, key)
	sig := sbx.SignWebhook(body)
	postWebhook(t, c, baseURL, body, sbx.SignWebhookWith(body, sandbox.SignOptions{BodySHA256: strings.Repeat("0", 64)}))
	postWebhook(t, c, baseURL, body, sig)
	r2 := postGraphQL(t, c, baseURL, gqlRequest{Query: `{ link(id: "` + link + `") { ` + linkAllFields + ` } }`})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	pii := map[string]bool{}
	for _, b := range [][]byte{r.body, r2.body} {
		var data any
		if err := json.Unmarshal(b, &data); err != nil {
			t.Fatal(err)
		}
		collectPII(data, "", pii)
	}
	if !pii["refreshed-1@example.com"] {
		t.Fatalf("the read after the webhook did not show the refreshed data: %s", r2.body)
	}
	secrets := []string{key, sig, strings.SplitN(sig, ".", 3)[2]}
	for _, s := range logStrings(logs) {
		for v := range pii {
			if len(v) >= 4 && strings.Contains(s, v) {
				t.Errorf("log holds identity value %q: %q", v, s)
			}
		}
		for _, v := range secrets {
			if strings.Contains(s, v) {
				t.Errorf("log holds a webhook secret or key: %q", s)
			}
		}
	}
	if !strings.Contains(logs.String(), `"verdict":"hash_mismatch"`) {
		t.Errorf("the refused delivery was not logged with its verdict")
	}
}
