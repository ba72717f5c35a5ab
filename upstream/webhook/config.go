package webhook

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/internal/defaults"
)

// Path is where main mounts the Handler.
const Path = "/webhooks/moneykit"

// Defaults and limits.
const (
	// DefaultJWKSTTL is how long fetched signing keys are used
	// (MKGRAPH_WEBHOOK_JWKS_TTL); MoneyKit asks for at most 24 hours.
	DefaultJWKSTTL = 12 * time.Hour
	// DefaultMaxAge is how far a signature's iat may be from now, either
	// way (MKGRAPH_WEBHOOK_MAX_AGE).
	DefaultMaxAge = 5 * time.Minute
	// DefaultRefetchInterval is the least time between two JWKS refetches
	// caused by unknown kids, and after a failed fetch.
	DefaultRefetchInterval = 30 * time.Second
	// DefaultDedupeTTL is how long an applied idempotency key is
	// remembered: more than MoneyKit's 2 hours of retries.
	DefaultDedupeTTL = 3 * time.Hour
	// DefaultHTTPTimeout bounds one JWKS fetch when Config.HTTPClient has
	// no timeout of its own.
	DefaultHTTPTimeout = 10 * time.Second
	// DefaultApplyTimeout bounds one Config.OnEvent call.
	DefaultApplyTimeout = 30 * time.Second
	// DefaultBusyWait is how long a delivery waits for a concurrent
	// delivery of the same key to finish before answering 503.
	DefaultBusyWait = 5 * time.Second
	// DefaultMaxKeys bounds the in-memory Store (about 120 bytes a key).
	DefaultMaxKeys = 100_000

	// MaxBodyBytes is the largest delivery body read; a larger one is 413.
	MaxBodyBytes = 64 << 10
	// MaxSignatureBytes is the longest MoneyKit-Signature header accepted.
	MaxSignatureBytes = 8 << 10
	// MaxJWKSBytes bounds a JWK Set document.
	MaxJWKSBytes = 1 << 20
	// Bounds on the body's strings.
	MaxIdempotencyKeyLen = 256
	MaxEventNameLen      = 128
	MaxFieldLen          = 128  // product, state, error, timestamps
	MaxErrorMessageLen   = 4096 // error_message
	MaxLinkTags          = 64
	// maxKIDLen bounds a JWT header kid.
	maxKIDLen = 256
	// claimMargin is added to ApplyTimeout for the "in progress" lease, so
	// that the lease outlives the apply it covers.
	claimMargin = 10 * time.Second
)

// Config configures a Handler. BaseURL and ClientID are required.
type Config struct {
	// BaseURL is MoneyKit's (e.g. https://api.moneykit.com, or the
	// embedded sandbox's): the keys are at BaseURL/.well-known/jwks.json.
	BaseURL string
	// ClientID is sent as X-Client-Id with the JWKS request.
	ClientID string
	// HTTPClient fetches the JWKS; nil: a client with DefaultHTTPTimeout.
	// A client without a Timeout gets DefaultHTTPTimeout; redirects are
	// not followed unless it sets CheckRedirect.
	HTTPClient *http.Client
	// JWKSTTL is how long fetched keys are used; 0: DefaultJWKSTTL.
	JWKSTTL time.Duration
	// MaxAge is the tolerance on iat, past and future; 0: DefaultMaxAge.
	MaxAge time.Duration
	// RefetchInterval spaces JWKS refetches for unknown kids and after a
	// failed fetch; 0: DefaultRefetchInterval.
	RefetchInterval time.Duration
	// DedupeTTL is how long an applied key is remembered; 0:
	// DefaultDedupeTTL.
	DedupeTTL time.Duration
	// ApplyTimeout bounds each OnEvent call; 0: DefaultApplyTimeout.
	ApplyTimeout time.Duration
	// BusyWait bounds the wait for a concurrent delivery of the same key;
	// 0: DefaultBusyWait.
	BusyWait time.Duration
	// Now is the clock for iat, key expiry and refetch spacing; nil:
	// time.Now.
	Now func() time.Time
	// Store remembers applied idempotency keys; nil: NewMemoryStore with
	// DefaultMaxKeys and Now.
	Store Store
	// Log receives one warning per refused delivery (its verdict, never
	// its body or signature) and a debug line per accepted one.
	Log zerolog.Logger
	// OnEvent is called once for each new verified event, with a context
	// that outlives the request (MoneyKit hanging up does not cancel it)
	// bounded by ApplyTimeout. An error (or a panic) answers 503 and
	// forgets the key, so MoneyKit's retry calls it again; the error's
	// text is logged, so it must hold no personal data. nil: events are
	// accepted and dropped.
	OnEvent func(ctx context.Context, e Event) error
	// OnVerdict, when set, is told the verdict of every delivery (one of
	// the Verdict… constants), for metrics. It carries no link id.
	OnVerdict func(verdict string)
}

// withDefaults checks cfg and fills its zero settings.
func (cfg Config) withDefaults() (Config, error) {
	u, err := url.Parse(cfg.BaseURL)
	if cfg.BaseURL == "" || err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return cfg, errors.New("webhook: Config.BaseURL must be an absolute http(s) URL")
	}
	if cfg.ClientID == "" {
		return cfg, errors.New("webhook: Config.ClientID is required")
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	set := defaults.Positive[time.Duration]
	set(&cfg.JWKSTTL, DefaultJWKSTTL)
	set(&cfg.MaxAge, DefaultMaxAge)
	set(&cfg.RefetchInterval, DefaultRefetchInterval)
	set(&cfg.DedupeTTL, DefaultDedupeTTL)
	set(&cfg.ApplyTimeout, DefaultApplyTimeout)
	set(&cfg.BusyWait, DefaultBusyWait)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	if hc.Timeout <= 0 {
		hc.Timeout = DefaultHTTPTimeout
	}
	if hc.CheckRedirect == nil {
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	cfg.HTTPClient = &hc
	if cfg.Store == nil {
		cfg.Store = NewMemoryStore(DefaultMaxKeys, cfg.Now)
	}
	if cfg.OnVerdict == nil {
		cfg.OnVerdict = func(string) {}
	}
	return cfg, nil
}
