package sandbox

import "time"

// Credentials the sandbox accepts when Options leaves them empty.
const (
	// DefaultClientID is the client id accepted when Options.ClientID is empty.
	DefaultClientID = "mkgraph_sandbox_client"
	// DefaultClientSecret is the client secret accepted when Options.ClientSecret is empty.
	DefaultClientSecret = "mkgraph_sandbox_secret"
)

// DefaultTokenTTL is the lifetime of issued tokens when Options.TokenTTL is
// 0: MoneyKit's.
const DefaultTokenTTL = 3600 * time.Second

// Options configures a Server. The zero value is ready to use.
type Options struct {
	// ClientID and ClientSecret are the accepted credentials; empty means
	// DefaultClientID and DefaultClientSecret.
	ClientID, ClientSecret string
	// Latency is added before answering every identity call. The wait ends
	// early, with no answer, when the request is cancelled.
	Latency time.Duration
	// TokenTTL is the lifetime (expires_in) of issued tokens; 0 means
	// DefaultTokenTTL.
	TokenTTL time.Duration
	// Now is the clock for token expiry, refresh intervals and the times
	// refreshes and webhooks carry; nil means time.Now. Delays
	// (RefreshDelay, webhook retries) are real time.
	Now func() time.Time

	// RefreshInterval is how soon POST /links/{id}/products may ask for a
	// product of a link again, counted from the last accepted request for
	// it; sooner answers 429 api_error.rate_limit_exceeded with Retry-After
	// in whole seconds. 0 means DefaultRefreshInterval (MoneyKit's own is a
	// day for identity); negative means no limit.
	RefreshInterval time.Duration
	// RefreshDelay is how long an accepted refresh takes to complete: then
	// the products' refreshed_at increase and, for identity, the link's
	// owners gain an email. 0 means DefaultRefreshDelay; negative means at
	// once (still after the 202).
	RefreshDelay time.Duration
	// WebhookURL receives the sandbox's webhooks (link.product_refresh for
	// each refresh, and the test webhooks of POST /webhooks/test/link/{id}),
	// for every link whatever its webhook field says; "" sends none. It
	// must be an absolute http(s) URL: New panics otherwise.
	WebhookURL string
	// WebhookAttempts is how many times a delivery not answered 2xx is
	// tried in all; 0 means DefaultWebhookAttempts.
	WebhookAttempts int
	// WebhookBackoff is the wait before the first retry of a delivery, each
	// later one twice the one before; 0 means DefaultWebhookBackoff.
	WebhookBackoff time.Duration
}
