// Package upstream is the MoneyKit REST client: token handling, the Get
// Identity call, exact decoding and one typed error for everything that can
// go wrong on the way. It knows nothing of GraphQL.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sony/gobreaker/v2"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

// Version is the MoneyKit API version the facade speaks, sent as MoneyKit-Version.
const Version = "2023-02-18"

// Endpoint names passed to Observer.
const (
	EndpointToken    = "auth_token"
	EndpointIdentity = "identity"
)

// MaxLinkIDLen is the longest link id the client sends upstream.
const MaxLinkIDLen = 128

// Defaults for Config.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultMaxBodyBytes = 8 << 20
)

// Call describes one HTTP exchange with the upstream, for metrics and logs.
// It never holds identity data or credentials.
type Call struct {
	Endpoint string        // EndpointToken or EndpointIdentity
	Status   int           // HTTP status; 0 when no answer was read
	Code     string        // error code when the call failed, else ""
	Duration time.Duration // until the body was read
}

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
	// the budget's retryAfter, without calling the upstream.
	Budget RateBudget
}

// withDefaults fills the zero settings.
func (cfg Config) withDefaults() Config {
	set := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	set(&cfg.Timeout, DefaultTimeout)
	set(&cfg.RetryBaseDelay, DefaultRetryBaseDelay)
	set(&cfg.RetryMaxDelay, DefaultRetryMaxDelay)
	set(&cfg.MaxRetryAfterWait, DefaultMaxRetryAfterWait)
	set(&cfg.InFlightWait, DefaultInFlightWait)
	set(&cfg.BreakerCooldown, DefaultBreakerCooldown)
	set(&cfg.BreakerWindow, DefaultBreakerWindow)
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	} else if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	}
	if cfg.RetryBudgetRatio <= 0 {
		cfg.RetryBudgetRatio = DefaultRetryBudgetRatio
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.BreakerMinCalls <= 0 {
		cfg.BreakerMinCalls = DefaultBreakerMinCalls
	}
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

// Client calls the MoneyKit API. It is safe for concurrent use.
type Client struct {
	base     string
	cfg      Config
	http     *http.Client
	tokens   *tokenSource
	budget   *retryBudget
	inFlight chan struct{}
	breaker  *gobreaker.CircuitBreaker[struct{}]
}

// New returns a Client, or an error when the configuration cannot work.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, fmt.Errorf("base URL %q: want an absolute http(s) URL without query", RedactURL(cfg.BaseURL))
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("upstream: client id and client secret are required")
	}
	cfg = cfg.withDefaults()
	hc := cfg.HTTPClient
	if hc == nil {
		var rt http.RoundTripper = newTransport()
		if cfg.WrapTransport != nil {
			rt = cfg.WrapTransport(rt)
		}
		hc = &http.Client{Transport: rt}
	}
	if hc.CheckRedirect == nil {
		// Never follow redirects: net/http would forward X-Client-Secret to
		// wherever a redirect points. A 3xx is a bad response instead.
		c := *hc
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		hc = &c
	}
	c := &Client{
		base:     strings.TrimRight(u.String(), "/"),
		cfg:      cfg,
		http:     hc,
		budget:   newRetryBudget(cfg.RetryBudgetRatio),
		inFlight: make(chan struct{}, cfg.MaxInFlight),
		breaker:  newBreaker(cfg),
	}
	c.tokens = &tokenSource{fetch: c.fetchToken, now: cfg.Now}
	return c, nil
}

// newTransport is http.DefaultTransport's setup with more idle connections
// per host: every call goes to the same host.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 128
	t.IdleConnTimeout = 90 * time.Second
	t.ResponseHeaderTimeout = 0 // the per-attempt context bounds the whole exchange
	return t
}

// RedactURL returns raw with any password masked, for logs and errors; a
// value that does not parse as a URL is withheld entirely, since it may hold
// a password in a form url.Parse cannot find.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparseable URL]"
	}
	if u.User != nil {
		// A user name alone may be the secret (redis://token@host).
		u.User = url.UserPassword("xxxxx", "xxxxx")
	}
	return u.String()
}

// ValidateLinkID refuses ids that cannot be MoneyKit link ids before any call:
// empty, longer than MaxLinkIDLen bytes, not UTF-8, control characters, or a
// dot segment that a proxy could resolve to another path.
func ValidateLinkID(id string) error {
	switch {
	case id == "":
		return apierr.InvalidArgument("A link id must not be empty.")
	case len(id) > MaxLinkIDLen:
		return apierr.InvalidArgument(fmt.Sprintf("A link id must be at most %d bytes.", MaxLinkIDLen))
	case !utf8.ValidString(id):
		return apierr.InvalidArgument("A link id must be valid UTF-8.")
	case id == "." || id == "..":
		return apierr.InvalidArgument("A link id must not be a dot segment.")
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return apierr.InvalidArgument("A link id must not contain control characters.")
		}
	}
	return nil
}

// identityPath is the path of GET /links/{id}/identity, with linkID as
// exactly one segment whatever it holds: url.PathEscape escapes '/', '?',
// '#', '%', control bytes and invalid UTF-8, and the segments it leaves
// alone that a proxy could resolve to another path (empty, "." and "..")
// are refused before any call.
func identityPath(linkID string) (string, error) {
	segment := url.PathEscape(linkID)
	if segment == "" || segment == "." || segment == ".." {
		return "", apierr.InvalidArgument("A link id must not be empty or a dot segment.")
	}
	return "/links/" + segment + "/identity", nil
}

// GetIdentity calls GET /links/{id}/identity without account_ids: the caller
// filters accounts, so one answer serves every selection. The id is not
// validated again (ValidateLinkID is the caller's, where the id enters), but
// it always stays one path segment (identityPath).
//
// Errors are *apierr.Error: the upstream's codes (link_error.not_found,
// link_error.forbidden_action, link_error.deleted, link_error.bad_state,
// link_error.unauthorized_access, api_error.rate_limit_exceeded,
// api_error.auth.*) or facade.invalid_argument, facade.upstream_unavailable,
// facade.upstream_timeout, facade.upstream_bad_response.
func (c *Client) GetIdentity(ctx context.Context, linkID string) (*Identity, error) {
	path, err := identityPath(linkID)
	if err != nil {
		return nil, err
	}
	var id *Identity
	err = c.authorizedGet(ctx, EndpointIdentity, linkID, path, func(body []byte) (err error) {
		id, err = DecodeIdentity(body)
		return err
	})
	if err != nil {
		return nil, err
	}
	return id, nil
}

// reserve takes one call from the rate budget, if there is one.
func (c *Client) reserve(ctx context.Context, linkID string) error {
	if c.cfg.Budget == nil {
		return nil
	}
	wait, refusedBy, err := c.cfg.Budget.Reserve(ctx, linkID)
	switch {
	case err != nil:
		// A budget that cannot answer must not stop every call: the
		// upstream still enforces its limits.
		return nil
	case refusedBy != "":
		if c.cfg.OnBudgetRefused != nil {
			c.cfg.OnBudgetRefused(refusedBy)
		}
		return &apierr.Error{
			Status:        http.StatusTooManyRequests,
			Code:          apierr.CodeRateLimitExceeded,
			Message:       "Rate limit exceeded: MoneyKit allows only a few identity calls per link and per app each minute. Retry after the time in extensions.retryAfter.",
			RetryAfter:    wait,
			HasRetryAfter: true,
			Err:           errLocalBudget,
		}
	}
	return nil
}

// Ready reports whether the client can work: not while the upstream refuses
// its credentials (api_error.auth.unauthorized), so /readyz can say so.
func (c *Client) Ready() error { return c.tokens.Refused() }

// authorizedGet GETs path with a bearer token and decodes the answer,
// retrying as retryDelay allows within the retry budget. The breaker sees
// the outcome of the whole call, retries included: one unlucky link does
// not count three times.
func (c *Client) authorizedGet(ctx context.Context, endpoint, linkID, path string, decode func([]byte) error) error {
	c.budget.deposit()
	return c.throughBreaker(func() error {
		for attempt := 0; ; attempt++ {
			err := c.attempt(ctx, endpoint, linkID, path, decode)
			if err == nil {
				return nil
			}
			wait, retry := c.retryDelay(ctx, attempt, err)
			if !retry || !c.budget.withdraw() || !sleepCtx(ctx, wait) {
				return err
			}
		}
	})
}

// attempt is one try of a GET: an in-flight slot, the rate budget, a token,
// the exchange, and one renewal of the token if the upstream says it expired.
func (c *Client) attempt(ctx context.Context, endpoint, linkID, path string, decode func([]byte) error) error {
	release, err := c.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	for renewed := false; ; renewed = true {
		tok, err := c.tokens.Token(ctx)
		if err != nil {
			return fmt.Errorf("%w: %w", errNoRetry, err) // retries are for GETs, not the token POST
		}
		// Every identity call counts against MoneyKit's limits, the
		// retry after a renewal too.
		if err := c.reserve(ctx, linkID); err != nil {
			return err
		}
		err = c.do(ctx, endpoint, http.MethodGet, path, nil, func(h http.Header) {
			h.Set("Authorization", "Bearer "+tok)
			h.Set("X-Client-Id", c.cfg.ClientID)
			h.Set("X-Client-Secret", c.cfg.ClientSecret)
		}, decode)
		var e *apierr.Error
		switch {
		case !errors.As(err, &e):
		case !renewed && e.Code == apierr.CodeExpiredAccessToken:
			c.tokens.Invalidate(tok)
			continue
		case e.Code == apierr.CodeUnauthorized:
			c.tokens.MarkRefused(err)
		}
		return err
	}
}

// do makes one HTTP exchange and hands the body of a 2xx JSON answer to
// decode; a decode error is facade.upstream_bad_response. It returns an
// *apierr.Error, and is the only place that reads upstream responses, so that the
// Observer sees each exchange's final outcome.
func (c *Client) do(ctx context.Context, endpoint, method, path string, body io.Reader, setHeaders func(http.Header), decode func([]byte) error) (err error) {
	start := time.Now()
	status := 0
	defer func() {
		if c.cfg.Observer != nil {
			call := Call{Endpoint: endpoint, Status: status, Duration: time.Since(start)}
			if err != nil {
				call.Code = apierr.AsError(err).Code
			}
			c.cfg.Observer(ctx, call)
		}
	}()

	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, method, c.base+path, body)
	if err != nil {
		return apierr.New(apierr.CodeInternal, 0, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("MoneyKit-Version", Version)
	req.Header.Set("User-Agent", "mkgraph")
	setHeaders(req.Header)

	resp, err := c.http.Do(req)
	if err != nil {
		return transportError(ctx, actx, err)
	}
	defer resp.Body.Close()
	status = resp.StatusCode

	if resp.ContentLength > c.cfg.MaxBodyBytes {
		return apierr.New(apierr.CodeUpstreamBadResponse, status, fmt.Errorf("body of %d bytes is larger than %d", resp.ContentLength, c.cfg.MaxBodyBytes))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxBodyBytes+1))
	if err != nil {
		if e := transportError(ctx, actx, err); e.Code == apierr.CodeUpstreamTimeout {
			return e
		}
		return apierr.New(apierr.CodeUpstreamBadResponse, status, fmt.Errorf("read body: %w", err))
	}
	if int64(len(data)) > c.cfg.MaxBodyBytes {
		return apierr.New(apierr.CodeUpstreamBadResponse, status, fmt.Errorf("body larger than %d bytes", c.cfg.MaxBodyBytes))
	}
	if status < 200 || status > 299 {
		return responseError(status, resp.Header, data, c.cfg.Now())
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return apierr.New(apierr.CodeUpstreamBadResponse, status, fmt.Errorf("content type %.60q is not JSON", ct))
	}
	if err := decode(data); err != nil {
		return apierr.New(apierr.CodeUpstreamBadResponse, status, err)
	}
	return nil
}

// transportError classifies a failure to get an answer: a deadline (the
// caller's or the per-attempt one) or a network timeout is
// facade.upstream_timeout; anything else (refused, reset, DNS) is
// facade.upstream_unavailable.
func transportError(ctx, actx context.Context, err error) *apierr.Error {
	// *url.Error quotes the request URL, which holds the link id: keep only
	// the cause, for logs.
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case ctx.Err() != nil:
		return apierr.New(apierr.CodeUpstreamTimeout, 0, fmt.Errorf("%w: %w", errCallerGone, context.Cause(ctx)))
	case actx.Err() != nil, errors.As(err, &ne) && ne.Timeout():
		return apierr.New(apierr.CodeUpstreamTimeout, 0, err)
	default:
		return apierr.New(apierr.CodeUpstreamUnavailable, 0, err)
	}
}
