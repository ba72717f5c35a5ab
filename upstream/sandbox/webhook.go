package sandbox

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Paths of the webhook routes.
const (
	// JWKSPath serves the public keys that sign webhooks.
	JWKSPath = "/.well-known/jwks.json"
	// TestWebhookPrefix starts POST /webhooks/test/link/{id}.
	TestWebhookPrefix = "/webhooks/test/link/"
)

// Webhook header names, as MoneyKit sends them.
const (
	HeaderSignature       = "MoneyKit-Signature"
	HeaderDeliveryToken   = "MoneyKit-Delivery-Token"
	HeaderDeliveryAttempt = "MoneyKit-Delivery-Attempt"
)

// Webhook events the sandbox sends.
const (
	EventProductRefresh               = "link.product_refresh"
	EventStateChanged                 = "link.state_changed"
	EventTransactionsUpdatesAvailable = "transactions.updates_available"
)

// Webhook versions the sandbox writes.
const (
	WebhookMajorVersion = 1
	WebhookMinorVersion = 1
)

// Defaults of the webhook settings in Options.
const (
	// DefaultWebhookAttempts is how many times a delivery is tried when
	// Options.WebhookAttempts is 0.
	DefaultWebhookAttempts = 4
	// DefaultWebhookBackoff is the wait before the first retry when
	// Options.WebhookBackoff is 0; each later wait doubles.
	DefaultWebhookBackoff = 500 * time.Millisecond
	// webhookTimeout bounds one delivery attempt.
	webhookTimeout = 5 * time.Second
	// webhookQueue bounds the deliveries waiting to be sent; more are dropped.
	webhookQueue = 1024
	// maxDeliveryLog bounds what WebhookDeliveries remembers.
	maxDeliveryLog = 1000
)

// signingKey is one ES256 key pair the sandbox signs webhooks with.
type signingKey struct {
	kid string
	key *ecdsa.PrivateKey
}

// newSigningKey returns a fresh P-256 key named kid.
func newSigningKey(n int) signingKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	b := make([]byte, 4)
	rand.Read(b)
	return signingKey{kid: fmt.Sprintf("mkgraph-sandbox-%d-%s", n, hex.EncodeToString(b)), key: key}
}

// webhooks is a Server's webhook machinery: its keys, its delivery queue
// and worker, its lifecycle and counters.
type webhooks struct {
	url       string // Options.WebhookURL; "" sends nothing
	attempts  int
	backoff   time.Duration
	client    *http.Client
	closeIdle func()

	mu        sync.Mutex
	keys      []signingKey // current first, then the one it replaced
	rotations int
	closed    bool
	started   bool // the delivery worker runs
	timers    map[*timerEntry]struct{}
	queue     chan delivery
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	sent      int // attempts made
	delivered int // deliveries answered 2xx
	dropped   int
	log       []WebhookDelivery
}

type timerEntry struct{ t *time.Timer }

// delivery is one webhook to send: the exact body, and the token naming it
// across its attempts.
type delivery struct {
	body  []byte
	token string
}

// WebhookDelivery is one attempt the sandbox made to deliver a webhook, for
// tests (WebhookDeliveries).
type WebhookDelivery struct {
	Body    []byte // the exact body sent
	Attempt int    // MoneyKit-Delivery-Attempt, from 1
	Status  int    // the receiver's HTTP status; 0 when there was no answer
}

func newWebhooks(opts Options) *webhooks {
	if opts.WebhookURL != "" {
		u, err := url.Parse(opts.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			panic(fmt.Sprintf("sandbox: Options.WebhookURL %q is not an absolute http(s) URL", opts.WebhookURL))
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	ctx, cancel := context.WithCancel(context.Background())
	return &webhooks{
		url:      opts.WebhookURL,
		attempts: cmpOrPositive(opts.WebhookAttempts, DefaultWebhookAttempts),
		backoff:  cmpOrPositiveDuration(opts.WebhookBackoff, DefaultWebhookBackoff),
		// Deliveries go to the configured URL only: redirects are not followed.
		client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		closeIdle: tr.CloseIdleConnections,
		keys:      []signingKey{newSigningKey(1)},
		rotations: 1,
		timers:    make(map[*timerEntry]struct{}),
		queue:     make(chan delivery, webhookQueue),
		ctx:       ctx,
		cancel:    cancel,
	}
}

func cmpOrPositive(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func cmpOrPositiveDuration(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}

// afterFunc runs f after d in a goroutine of its own, unless Close comes
// first; d < 0 runs it at once (still in the background).
func (s *Server) afterFunc(d time.Duration, f func()) {
	h := s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.wg.Add(1)
	e := &timerEntry{}
	h.timers[e] = struct{}{}
	// The lock is held until e.t is set; the function takes it first.
	e.t = time.AfterFunc(max(d, 0), func() {
		defer h.wg.Done()
		h.mu.Lock()
		delete(h.timers, e)
		closed := h.closed
		h.mu.Unlock()
		if !closed {
			f()
		}
	})
}

// sendWebhook queues body for delivery to Options.WebhookURL, if set.
func (s *Server) sendWebhook(body []byte) {
	h := s.hooks
	if h.url == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if !h.started {
		h.started = true
		h.wg.Add(1)
		go s.deliverAll()
	}
	select {
	case h.queue <- delivery{body: body, token: randomHex(16)}:
	default:
		h.dropped++
	}
}

// deliverAll sends queued deliveries one at a time, in order, until Close.
// One at a time keeps a link's pending before its completed.
func (s *Server) deliverAll() {
	h := s.hooks
	defer h.wg.Done()
	for {
		select {
		case <-h.ctx.Done():
			return
		case d := <-h.queue:
			s.deliver(d)
		}
	}
}

// deliver tries d up to the configured number of attempts, waiting
// backoff, then twice that, and so on between them, until one is answered
// 2xx or Close.
func (s *Server) deliver(d delivery) {
	h := s.hooks
	for attempt := 1; attempt <= h.attempts; attempt++ {
		if attempt > 1 && !sleep(h.ctx, h.backoff<<(attempt-2)) {
			return
		}
		status := s.post(d, attempt)
		h.mu.Lock()
		h.sent++
		if len(h.log) < maxDeliveryLog {
			h.log = append(h.log, WebhookDelivery{Body: d.body, Attempt: attempt, Status: status})
		}
		ok := status >= 200 && status <= 299
		if ok {
			h.delivered++
		}
		h.mu.Unlock()
		if ok || h.ctx.Err() != nil {
			return
		}
	}
}

// post makes one delivery attempt and returns the receiver's status, or 0.
func (s *Server) post(d delivery, attempt int) int {
	h := s.hooks
	ctx, cancel := context.WithTimeout(h.ctx, webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(d.body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mkgraph-sandbox")
	req.Header.Set(HeaderSignature, s.SignWebhook(d.body)) // signed again per attempt: a fresh iat
	req.Header.Set(HeaderDeliveryToken, d.token)
	req.Header.Set(HeaderDeliveryAttempt, strconv.Itoa(attempt))
	resp, err := h.client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode
}

// Close stops the background work of refreshes and webhooks: refreshes not
// yet completed never will, deliveries queued or waiting for a retry are
// dropped, and an attempt in flight is cancelled. It waits for all of it to
// end, so that no goroutine outlives it, and is safe to call more than once.
// The Server still answers requests afterwards, but a refresh it accepts
// then never completes and it sends no webhook.
func (s *Server) Close() {
	h := s.hooks
	h.mu.Lock()
	h.closed = true
	for e := range h.timers {
		if e.t.Stop() {
			h.wg.Done() // its function will never run
		}
		delete(h.timers, e)
	}
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
	h.closeIdle()
}

// SignOptions changes what SignWebhookWith signs, for tests that need a
// forged, replayed or foreign signature. The zero value signs as the
// sandbox's deliveries are signed.
type SignOptions struct {
	// IssuedAt is the iat claim; zero means Options.Now.
	IssuedAt time.Time
	// KeyID is the header's kid; "" means the signing key's own (the
	// current key's when Key is nil, else "foreign").
	KeyID string
	// Key signs instead of the current key, e.g. a key that is not in the
	// JWKS.
	Key *ecdsa.PrivateKey
	// BodySHA256 is the request_body_sha256 claim; "" means the hex SHA-256
	// of the body.
	BodySHA256 string
}

// SignWebhook returns the MoneyKit-Signature of body as the sandbox's
// deliveries carry it: an ES256 JWT whose header kid names the current key
// and whose claims are iat (Options.Now) and request_body_sha256 (the hex
// SHA-256 of body). It is a test hook, to sign bodies of a test's own.
func (s *Server) SignWebhook(body []byte) string {
	return s.SignWebhookWith(body, SignOptions{})
}

// SignWebhookWith is SignWebhook with the changes in o. It is a test hook.
func (s *Server) SignWebhookWith(body []byte, o SignOptions) string {
	iat := o.IssuedAt
	if iat.IsZero() {
		iat = s.now()
	}
	hash := o.BodySHA256
	if hash == "" {
		sum := sha256.Sum256(body)
		hash = hex.EncodeToString(sum[:])
	}
	key, kid := o.Key, "foreign"
	if key == nil {
		h := s.hooks
		h.mu.Lock()
		key, kid = h.keys[0].key, h.keys[0].kid
		h.mu.Unlock()
	}
	if o.KeyID != "" {
		kid = o.KeyID
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iat":                 iat.Unix(),
		"request_body_sha256": hash,
	})
	tok.Header["kid"] = kid
	signed, err := tok.SignedString(key)
	if err != nil {
		panic(fmt.Sprintf("sandbox: signing a webhook: %v", err)) // an ECDSA key of the right curve does not fail
	}
	return signed
}

// Rotate makes a new signing key current and returns its kid. The key it
// replaces stays in the JWKS until the next Rotate, so that a delivery
// signed just before (or a receiver's cached JWKS) still verifies; older
// keys leave the JWKS. Like MoneyKit's rotation it is not announced: a
// receiver that meets an unknown kid fetches the JWKS again.
func (s *Server) Rotate() string {
	h := s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rotations++
	k := newSigningKey(h.rotations)
	h.keys = []signingKey{k, h.keys[0]}
	return k.kid
}

// KeyIDs returns the kids the JWKS lists, the current key's first.
func (s *Server) KeyIDs() []string {
	h := s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]string, len(h.keys))
	for i, k := range h.keys {
		ids[i] = k.kid
	}
	return ids
}

// JWKS returns the JSON Web Key Set GET /.well-known/jwks.json serves: the
// public halves of the current and the previous signing keys, each kty EC,
// crv P-256, alg ES256, use sig, with its kid.
func (s *Server) JWKS() []byte {
	h := s.hooks
	h.mu.Lock()
	keys := slices.Clone(h.keys)
	h.mu.Unlock()
	set := jwkset.JWKSMarshal{Keys: make([]jwkset.JWKMarshal, 0, len(keys))}
	for _, k := range keys {
		j, err := jwkset.NewJWKFromKey(&k.key.PublicKey, jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.AlgES256, USE: jwkset.UseSig},
		})
		if err != nil {
			panic(fmt.Sprintf("sandbox: JWK of %s: %v", k.kid, err))
		}
		set.Keys = append(set.Keys, j.Marshal())
	}
	return mustJSON(set)
}

// serveJWKS answers GET /.well-known/jwks.json: no token, but X-Client-Id
// must be the sandbox's client id.
func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		errIdentityMethod.write(w)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Client-Id")), s.clientID) != 1 {
		errUnauthorized.write(w)
		return
	}
	rp := jsonReply(http.StatusOK, s.JWKS())
	rp.header.Set("Cache-Control", "max-age=3600")
	rp.write(w)
}

// WebhooksSent returns how many delivery attempts the sandbox has made,
// retries included, since New or Reset. It is a test hook.
func (s *Server) WebhooksSent() int {
	h := s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sent
}

// WebhooksDelivered returns how many deliveries a receiver answered 2xx
// since New or Reset. It is a test hook.
func (s *Server) WebhooksDelivered() int {
	h := s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.delivered
}

// WebhookDeliveries returns the delivery attempts made since New or Reset
// (at most the first 1,000), in order. It is a test hook.
func (s *Server) WebhookDeliveries() []WebhookDelivery {
	h := s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.log)
}

// resetLocked zeroes the webhook counters; h.mu is held.
func (h *webhooks) resetLocked() {
	h.sent, h.delivered, h.dropped = 0, 0, 0
	h.log = nil
}

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
	if r.Method != http.MethodPost {
		errPostMethod.write(w)
		return
	}
	if failure := s.authorize(r); failure != nil {
		failure.write(w)
		return
	}
	if ok, failure := refreshable(linkID); !ok {
		failure.write(w)
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
