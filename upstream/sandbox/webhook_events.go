package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"slices"
	"time"
)

// Webhook bodies. Every event starts with webhookCommon.
type (
	webhookCommon struct {
		MajorVersion   int      `json:"webhook_major_version"`
		MinorVersion   int      `json:"webhook_minor_version"`
		IdempotencyKey string   `json:"webhook_idempotency_key"`
		Timestamp      string   `json:"webhook_timestamp"`
		LinkID         string   `json:"link_id"`
		LinkTags       []string `json:"link_tags"`
		Event          string   `json:"webhook_event"`
	}
	productRefreshBody struct {
		webhookCommon
		Product        string  `json:"product"`
		State          string  `json:"state"`
		StateChangedAt string  `json:"state_changed_at"`
		ErrorMessage   *string `json:"error_message"`
	}
	stateChangedBody struct {
		webhookCommon
		State        string  `json:"state"`
		Error        *string `json:"error"`
		ErrorMessage *string `json:"error_message"`
	}
	updatesAvailableBody struct {
		webhookCommon
		HasHistory bool `json:"has_history"`
	}
)

// common returns the start of a webhook for linkID; key "" gets a new
// idempotency key.
func common(event, linkID string, tags []string, key string, at time.Time) webhookCommon {
	if key == "" {
		key = "whk_" + randomHex(12)
	}
	return webhookCommon{
		MajorVersion: WebhookMajorVersion, MinorVersion: WebhookMinorVersion,
		IdempotencyKey: key, Timestamp: formatTime(at),
		LinkID: linkID, LinkTags: tags, Event: event,
	}
}

// productRefreshWebhook is the body of a link.product_refresh webhook.
func productRefreshWebhook(linkID string, tags []string, product, state string, at time.Time) []byte {
	return mustJSON(productRefreshBody{
		webhookCommon: common(EventProductRefresh, linkID, tags, "", at),
		Product:       product, State: state, StateChangedAt: formatTime(at),
	})
}

// testWebhookRequest is the body of POST /webhooks/test/link/{id}.
type testWebhookRequest struct {
	Event          string `json:"webhook_event"`
	IdempotencyKey string `json:"webhook_idempotency_key"`
}

// testWebhookAnswer is the answer of POST /webhooks/test/link/{id}.
type testWebhookAnswer struct {
	Event          string `json:"webhook_event"`
	IdempotencyKey string `json:"webhook_idempotency_key"`
	LinkID         string `json:"link_id"`
}

// serveTestWebhook answers POST /webhooks/test/link/{id}: 202, and the
// webhook asked for goes to Options.WebhookURL, with the idempotency key
// given (a new one when empty), so that a receiver's dedupe can be tested.
func (s *Server) serveTestWebhook(w http.ResponseWriter, r *http.Request, linkID string) {
	if !s.admitLinkPost(w, r, linkID) {
		return
	}
	var req testWebhookRequest
	if failure := decodeBody(r, &req); failure != nil {
		failure.write(w)
		return
	}
	if !slices.Contains([]string{EventProductRefresh, EventStateChanged, EventTransactionsUpdatesAvailable}, req.Event) {
		badRequest("webhook_event must be one of " + EventProductRefresh + ", " + EventStateChanged + ", " + EventTransactionsUpdatesAvailable + ".").write(w)
		return
	}
	if s.hooks.url == "" {
		badRequest("The sandbox has no webhook URL (Options.WebhookURL): there is nowhere to send a test webhook.").write(w)
		return
	}
	now := s.now()
	s.mu.Lock()
	st := s.stateLocked(linkID)
	tags := st.linkTags()
	state, _ := st.link()["state"].(string)
	s.mu.Unlock()
	c := common(req.Event, linkID, tags, req.IdempotencyKey, now)
	var body []byte
	switch req.Event {
	case EventProductRefresh:
		body = mustJSON(productRefreshBody{webhookCommon: c, Product: "identity", State: "completed", StateChangedAt: formatTime(now)})
	case EventStateChanged:
		body = mustJSON(stateChangedBody{webhookCommon: c, State: state})
	default: // EventTransactionsUpdatesAvailable
		body = mustJSON(updatesAvailableBody{webhookCommon: c, HasHistory: true})
	}
	s.sendWebhook(body)
	jsonReply(http.StatusAccepted, mustJSON(testWebhookAnswer{Event: req.Event, IdempotencyKey: c.IdempotencyKey, LinkID: linkID})).write(w)
}

// randomHex returns 2n random hex characters.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
