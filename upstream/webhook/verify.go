package webhook

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Headers MoneyKit sends with a delivery.
const (
	SignatureHeader = "MoneyKit-Signature"
	AttemptHeader   = "MoneyKit-Delivery-Attempt"
)

// Verdicts, told to Config.OnVerdict once per delivery and logged with each
// refusal. The set is fixed (a metrics label), and carries no link id.
const (
	VerdictAccepted           = "accepted"            // 200: verified and applied
	VerdictDuplicate          = "duplicate"           // 200: a key applied before, not applied again
	VerdictMethodNotAllowed   = "method_not_allowed"  // 405
	VerdictTooLarge           = "too_large"           // 413
	VerdictMissingSignature   = "missing_signature"   // 400: no MoneyKit-Signature
	VerdictMalformedSignature = "malformed_signature" // 400: not a JWT, no kid, several headers, too long
	VerdictWrongAlg           = "wrong_alg"           // 400: alg other than ES256 (none, HS256, RS256, …)
	VerdictUnknownKID         = "unknown_kid"         // 400: kid not in MoneyKit's JWK Set, after a refetch
	VerdictInvalidSignature   = "invalid_signature"   // 400: the signature does not verify with the kid's key
	VerdictStale              = "stale"               // 400: iat missing or beyond MaxAge (past or future), exp passed, nbf ahead
	VerdictHashMismatch       = "hash_mismatch"       // 400: request_body_sha256 missing or not the body's
	VerdictBadBody            = "bad_body"            // 400: not a JSON object of the documented shape
	VerdictJWKSUnavailable    = "jwks_unavailable"    // 503: the signing keys could not be fetched
	VerdictApplyFailed        = "apply_failed"        // 503: OnEvent failed; the key is not recorded
	VerdictStoreFailed        = "store_failed"        // 503: the dedupe Store failed
	VerdictBusy               = "busy"                // 503: a concurrent delivery of the key did not finish within BusyWait
)

// Verdicts returns every verdict, for metrics to register their labels.
func Verdicts() []string {
	return []string{
		VerdictAccepted, VerdictDuplicate, VerdictMethodNotAllowed, VerdictTooLarge,
		VerdictMissingSignature, VerdictMalformedSignature, VerdictWrongAlg, VerdictUnknownKID,
		VerdictInvalidSignature, VerdictStale, VerdictHashMismatch, VerdictBadBody,
		VerdictJWKSUnavailable, VerdictApplyFailed, VerdictStoreFailed, VerdictBusy,
	}
}

// Refusal is why a delivery was not accepted: its verdict, the HTTP status
// it is answered with, and a short reason for the log (never the body, the
// signature or a claim's value).
type Refusal struct {
	Verdict string
	Status  int
	Reason  string
}

func (r *Refusal) Error() string { return "webhook refused: " + r.Verdict + ": " + r.Reason }

func refused(verdict, reason string) *Refusal {
	status := http.StatusBadRequest
	switch verdict {
	case VerdictJWKSUnavailable, VerdictApplyFailed, VerdictStoreFailed, VerdictBusy:
		status = http.StatusServiceUnavailable
	case VerdictTooLarge:
		status = http.StatusRequestEntityTooLarge
	case VerdictMethodNotAllowed:
		status = http.StatusMethodNotAllowed
	}
	return &Refusal{Verdict: verdict, Status: status, Reason: reason}
}

// claims are the signature's claims the receiver reads.
type claims struct {
	jwt.RegisteredClaims
	BodySHA256 string `json:"request_body_sha256"`
}

// parser checks the algorithm again (after verify's own header check) and
// leaves the time claims to verify, on Config.Now. With claims validation
// skipped it holds no state, so one serves every goroutine.
var parser = jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}), jwt.WithoutClaimsValidation())

// Verify checks one delivery: signature (the MoneyKit-Signature header's
// value) against MoneyKit's keys, its time claims and body hash, then the
// body, and returns its event. It records nothing (the Handler dedupes
// after it). Its errors are *Refusal.
func (h *Handler) Verify(ctx context.Context, signature string, body []byte) (Event, error) {
	if signature == "" {
		return Event{}, refused(VerdictMissingSignature, "no "+SignatureHeader+" header")
	}
	if len(signature) > MaxSignatureBytes {
		return Event{}, refused(VerdictMalformedSignature, "the signature is too long")
	}
	alg, kid, ok := peekHeader(signature)
	switch {
	case !ok:
		return Event{}, refused(VerdictMalformedSignature, "the signature is not a JWT with a kid")
	case alg != jwt.SigningMethodES256.Alg():
		return Event{}, refused(VerdictWrongAlg, "the signature's alg is not ES256")
	}
	key, err := h.keys.key(ctx, kid)
	if err != nil {
		var ue *unavailableError
		if errors.As(err, &ue) {
			return Event{}, refused(VerdictJWKSUnavailable, ue.reason)
		}
		return Event{}, refused(VerdictUnknownKID, "the kid is not in MoneyKit's JWK Set")
	}
	var c claims
	if _, err := parser.ParseWithClaims(signature, &c, func(*jwt.Token) (any, error) { return key, nil }); err != nil {
		if errors.Is(err, jwt.ErrTokenMalformed) {
			return Event{}, refused(VerdictMalformedSignature, "the signature is not a well-formed JWT")
		}
		return Event{}, refused(VerdictInvalidSignature, "the signature does not verify with the kid's key")
	}
	now, maxAge := h.cfg.Now(), h.cfg.MaxAge
	switch {
	case c.IssuedAt == nil:
		return Event{}, refused(VerdictStale, "the signature has no iat")
	case now.Sub(c.IssuedAt.Time) > maxAge:
		return Event{}, refused(VerdictStale, "iat is older than the maximum age")
	case c.IssuedAt.Time.Sub(now) > maxAge:
		return Event{}, refused(VerdictStale, "iat is in the future")
	case c.ExpiresAt != nil && now.Sub(c.ExpiresAt.Time) > maxAge:
		return Event{}, refused(VerdictStale, "exp has passed")
	case c.NotBefore != nil && c.NotBefore.Time.Sub(now) > maxAge:
		return Event{}, refused(VerdictStale, "nbf is in the future")
	}
	var want [sha256.Size]byte
	if len(c.BodySHA256) != 2*sha256.Size {
		return Event{}, refused(VerdictHashMismatch, "request_body_sha256 is missing or not a SHA-256")
	}
	if _, err := hex.Decode(want[:], []byte(c.BodySHA256)); err != nil {
		return Event{}, refused(VerdictHashMismatch, "request_body_sha256 is not hex")
	}
	got := sha256.Sum256(body)
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return Event{}, refused(VerdictHashMismatch, "request_body_sha256 is not the body's")
	}
	e, err := parseEvent(body)
	if err != nil {
		return Event{}, refused(VerdictBadBody, err.Error())
	}
	return e, nil
}

// peekHeader returns the alg and kid of a compact JWS, before any key is
// looked up: ok is false unless it has three segments and a header that is
// a JSON object with a string alg and a non-empty string kid.
func peekHeader(token string) (alg, kid string, ok bool) {
	head, rest, found := strings.Cut(token, ".")
	if !found || strings.Count(rest, ".") != 1 {
		return "", "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", "", false
	}
	var h struct {
		Alg *string `json:"alg"`
		Kid *string `json:"kid"`
	}
	if json.Unmarshal(raw, &h) != nil || h.Alg == nil {
		return "", "", false
	}
	if *h.Alg != jwt.SigningMethodES256.Alg() {
		return *h.Alg, "", true // refused for its alg, whatever its kid
	}
	if h.Kid == nil || *h.Kid == "" || len(*h.Kid) > maxKIDLen {
		return "", "", false
	}
	return *h.Alg, *h.Kid, true
}
