package upstream

import (
	"context"
	"net/http"
	"time"

	"github.com/mkgraph/mkgraph/internal/defaults"
)

// Defaults for Config.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultMaxBodyBytes = 8 << 20
)

// Config configures a Client.
type Config struct {
	BaseURL      string        // e.g. https://api.moneykit.com
	ClientID     string        // MONEYKIT_CLIENT_ID
	ClientSecret string        // MONEYKIT_CLIENT_SECRET
	HTTPClient   *http.Client  // nil: a dedicated client with a tuned transport; redirects are never followed unless it sets CheckRedirect
	Timeout      time.Duration // per HTTP attempt; 0: DefaultTimeout
	MaxBodyBytes int64         // larger bodies are refused; 0: DefaultMaxBodyBytes
	// Observer, when set, is called once per HTTP exchange, after its body
	// is decoded, with (the values of) the context of the request that
	// caused it.
	Observer func(context.Context, Call)
	// OnBudgetRefused, when set, is told each call Budget refused, by
	// scope (ScopeLink or ScopeApp), for metrics.
	OnBudgetRefused func(scope string)
	// Now is the clock for token expiry and Retry-After dates; nil: time.Now.
	Now func() time.Time

	// Resilience (each 0: its Default…). GETs are retried at most
	// MaxRetries times: after a 429 whose Retry-After is at most
	// MaxRetryAfterWait, or after a connection failure, 502, 503 or 504 with
	// exponential backoff (RetryBaseDelay doubling up to RetryMaxDelay, full
	// jitter), never past the caller's deadline, and retries may add at most
	// RetryBudgetRatio extra calls. At most MaxInFlight calls run at once; a
	// call waits at most InFlightWait for a slot. When at least
	// BreakerFailureRatio of at least BreakerMinCalls calls within
	// BreakerWindow failed, the client fails fast for BreakerCooldown.
	MaxRetries          int
	RetryBaseDelay      time.Duration
	RetryMaxDelay       time.Duration
	MaxRetryAfterWait   time.Duration
	RetryBudgetRatio    float64
	MaxInFlight         int
	InFlightWait        time.Duration
	BreakerMinCalls     int
	BreakerFailureRatio float64
	BreakerWindow       time.Duration
	BreakerCooldown     time.Duration
	// Rand returns jitter in [0, 1); nil: math/rand/v2.
	Rand func() float64
	// WrapTransport, when set and HTTPClient is nil, wraps the client's own
	// transport (tracing uses it to add spans and trace context).
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// Budget, when set, is asked before every identity call (retries
	// included); a refusal is answered as api_error.rate_limit_exceeded with
	// the budget's retryAfter, without calling the upstream. RefreshProducts
	// does not ask it: MoneyKit limits refreshes apart from reads.
	Budget RateBudget
}

// withDefaults fills the zero settings.
func (cfg Config) withDefaults() Config {
	set := defaults.Positive[time.Duration]
	set(&cfg.Timeout, DefaultTimeout)
	set(&cfg.RetryBaseDelay, DefaultRetryBaseDelay)
	set(&cfg.RetryMaxDelay, DefaultRetryMaxDelay)
	set(&cfg.MaxRetryAfterWait, DefaultMaxRetryAfterWait)
	set(&cfg.InFlightWait, DefaultInFlightWait)
	set(&cfg.BreakerCooldown, DefaultBreakerCooldown)
	set(&cfg.BreakerWindow, DefaultBreakerWindow)
	defaults.Positive(&cfg.MaxBodyBytes, DefaultMaxBodyBytes)
	if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	} else if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	}
	defaults.Positive(&cfg.RetryBudgetRatio, DefaultRetryBudgetRatio)
	defaults.Positive(&cfg.MaxInFlight, DefaultMaxInFlight)
	defaults.Positive(&cfg.BreakerMinCalls, DefaultBreakerMinCalls)
	if cfg.BreakerFailureRatio <= 0 || cfg.BreakerFailureRatio > 1 {
		cfg.BreakerFailureRatio = DefaultBreakerFailureRatio
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = defaultRand
	}
	return cfg
}
