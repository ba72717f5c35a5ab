package sandbox_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

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
