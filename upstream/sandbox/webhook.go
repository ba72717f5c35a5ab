package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
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
