package webhook

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// The answers' bodies.
const (
	bodyAccepted    = `{"status":"accepted"}`
	bodyInvalid     = `{"error_code":"facade.webhook_invalid"}`     // apierr.CodeWebhookInvalid
	bodyUnavailable = `{"error_code":"facade.webhook_unavailable"}` // apierr.CodeWebhookUnavailable
)

// Polling of a Busy key: from busyPollMin doubling to busyPollMax.
const (
	busyPollMin = 10 * time.Millisecond
	busyPollMax = 200 * time.Millisecond
)

// Handler is the receiver of POST /webhooks/moneykit (Path).
type Handler struct {
	cfg  Config
	keys *keySet
}

// New returns a Handler for cfg. It makes no request: the keys are fetched
// with the first delivery.
func New(cfg Config) (*Handler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg, keys: newKeySet(cfg)}, nil
}

// ServeHTTP answers one delivery (see the package documentation).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.refuse(w, r, refused(VerdictMethodNotAllowed, "method "+strconv.Quote(limit(r.Method, 16))))
		return
	}
	if r.ContentLength > MaxBodyBytes {
		h.refuse(w, r, refused(VerdictTooLarge, fmt.Sprintf("Content-Length over %d bytes", MaxBodyBytes)))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.refuse(w, r, refused(VerdictTooLarge, fmt.Sprintf("body over %d bytes", MaxBodyBytes)))
		} else {
			h.refuse(w, r, refused(VerdictBadBody, "the body could not be read"))
		}
		return
	}
	sigs := r.Header.Values(SignatureHeader)
	if len(sigs) > 1 {
		h.refuse(w, r, refused(VerdictMalformedSignature, "several "+SignatureHeader+" headers"))
		return
	}
	var sig string
	if len(sigs) == 1 {
		sig = sigs[0]
	}
	e, err := h.Verify(r.Context(), sig, body)
	if err != nil {
		h.refuse(w, r, err.(*Refusal))
		return
	}
	h.apply(w, r, e)
}

// apply claims e's key, calls OnEvent, and confirms (or releases) the key.
func (h *Handler) apply(w http.ResponseWriter, r *http.Request, e Event) {
	// The store's records must not be cut short by MoneyKit hanging up.
	ctx := context.WithoutCancel(r.Context())
	token := rand.Text()
	lease := h.cfg.ApplyTimeout + claimMargin
	giveUp := time.Now().Add(h.cfg.BusyWait)
	poll := busyPollMin
	for claimed := false; !claimed; {
		state, err := h.cfg.Store.Claim(ctx, e.IdempotencyKey, token, lease)
		if err != nil {
			h.refuse(w, r, refused(VerdictStoreFailed, "the dedupe store failed: "+err.Error()))
			return
		}
		switch state {
		case Done:
			h.accept(w, r, e, VerdictDuplicate)
			return
		case Claimed:
			claimed = true
		default: // Busy: wait for the other delivery's outcome
			wait := min(poll, time.Until(giveUp))
			if wait <= 0 {
				h.refuse(w, r, refused(VerdictBusy, "another delivery of this key is still being applied"))
				return
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				h.refuse(w, r, refused(VerdictBusy, "the request ended while another delivery of this key was applied"))
				return
			}
			poll = min(2*poll, busyPollMax)
		}
	}
	if err := h.onEvent(ctx, e); err != nil {
		if rerr := h.cfg.Store.Release(ctx, e.IdempotencyKey, token); rerr != nil {
			h.cfg.Log.Warn().Str("error", rerr.Error()).Msg("webhook: releasing an idempotency key failed; it is held until its lease ends")
		}
		h.refuse(w, r, refused(VerdictApplyFailed, "OnEvent failed: "+err.Error()))
		return
	}
	if err := h.cfg.Store.Confirm(ctx, e.IdempotencyKey, token, h.cfg.DedupeTTL); err != nil {
		// Applied: 200 all the same. A later duplicate may apply it again.
		h.cfg.Log.Warn().Str("error", err.Error()).Msg("webhook: recording an applied idempotency key failed")
	}
	h.accept(w, r, e, VerdictAccepted)
}

// onEvent calls Config.OnEvent within ApplyTimeout, turning a panic into an
// error.
func (h *Handler) onEvent(ctx context.Context, e Event) (err error) {
	if h.cfg.OnEvent == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.ApplyTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return h.cfg.OnEvent(ctx, e)
}

func (h *Handler) accept(w http.ResponseWriter, r *http.Request, e Event, verdict string) {
	h.cfg.OnVerdict(verdict)
	h.cfg.Log.Debug().Str("verdict", verdict).Str("kind", string(e.Kind)).Int("attempt", attempt(r)).
		Msg("webhook accepted")
	write(w, http.StatusOK, bodyAccepted)
}

// refuse answers a refusal and logs it at warn level: its verdict and
// reason, never the body, the signature or the delivery token.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, ref *Refusal) {
	h.cfg.OnVerdict(ref.Verdict)
	h.cfg.Log.Warn().Str("verdict", ref.Verdict).Str("reason", ref.Reason).Int("status", ref.Status).
		Int("attempt", attempt(r)).Msg("webhook refused")
	body := bodyInvalid
	if ref.Status >= 500 {
		body = bodyUnavailable
	}
	write(w, ref.Status, body)
}

func write(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// attempt is MoneyKit-Delivery-Attempt as a small number (0: absent or not
// one).
func attempt(r *http.Request) int {
	n, err := strconv.Atoi(limit(r.Header.Get(AttemptHeader), 6))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func limit(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
