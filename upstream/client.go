// Package upstream is the MoneyKit REST client: token handling, the Get
// Identity and product refresh calls, exact decoding and one typed error for
// everything that can go wrong on the way. It knows nothing of GraphQL.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Version is the MoneyKit API version the facade speaks, sent as MoneyKit-Version.
const Version = "2023-02-18"

// Endpoint names passed to Observer.
const (
	EndpointToken    = "auth_token"
	EndpointIdentity = "identity"
)

// Call describes one HTTP exchange with the upstream, for metrics and logs.
// It never holds identity data or credentials.
type Call struct {
	Endpoint string        // EndpointToken, EndpointIdentity or EndpointRefresh
	Status   int           // HTTP status; 0 when no answer was read
	Code     string        // error code when the call failed, else ""
	Duration time.Duration // until the body was read
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

// Ready reports whether the client can work: not while the upstream refuses
// its credentials (api_error.auth.unauthorized), so /readyz can say so.
func (c *Client) Ready() error { return c.tokens.Refused() }
