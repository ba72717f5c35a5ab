package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

// tokenResponse is the body of a successful POST /auth/token.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// Token lifetimes: assumed when the upstream omits expires_in, and the most
// the facade believes.
const (
	defaultTokenTTL = 5 * time.Minute
	maxTokenTTL     = 24 * time.Hour
)

// fetchToken asks the upstream for a client-credentials token.
func (c *Client) fetchToken(ctx context.Context) (string, time.Duration, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.cfg.ClientID},
		"client_secret": {c.cfg.ClientSecret},
	}
	var tr tokenResponse
	err := c.do(ctx, EndpointToken, http.MethodPost, "/auth/token", strings.NewReader(form.Encode()), func(h http.Header) {
		h.Set("Content-Type", "application/x-www-form-urlencoded")
	}, func(body []byte) error {
		if err := json.Unmarshal(body, &tr); err != nil {
			return err
		}
		if tr.AccessToken == "" {
			return errors.New("token response without access_token")
		}
		return nil
	})
	if err != nil {
		return "", 0, err
	}
	ttl := defaultTokenTTL
	if tr.ExpiresIn > 0 {
		// Capped, so a huge expires_in cannot overflow into the past.
		ttl = time.Duration(min(tr.ExpiresIn, int64(maxTokenTTL/time.Second))) * time.Second
	}
	return tr.AccessToken, ttl, nil
}

// tokenSource caches one access token and fetches a new one shortly before it
// expires. However many callers need a token at once, one fetch runs; the
// others wait for it, each bounded by its own context.
type tokenSource struct {
	fetch func(context.Context) (token string, ttl time.Duration, err error)
	now   func() time.Time

	mu       sync.Mutex
	token    string
	renewAt  time.Time
	inflight *tokenFetch
	// refused is the upstream's refusal of the credentials. It holds until a
	// token fetch succeeds (so readiness does not flap); within refusedUntil
	// it is answered to every caller without asking again: wrong credentials
	// stay wrong, and asking in a loop would be a storm.
	refused      error
	refusedUntil time.Time
}

// refusalHold is how long refused credentials are not tried again.
const refusalHold = 30 * time.Second

// Refused returns the upstream's last refusal of the client credentials,
// until a token fetch succeeds; else nil.
func (ts *tokenSource) Refused() error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.refused
}

// MarkRefused records a refusal of the credentials seen on a call (a 401
// api_error.auth.unauthorized answer to a request with a token), and drops
// the token.
func (ts *tokenSource) MarkRefused(err error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.refused, ts.refusedUntil = err, ts.now().Add(refusalHold)
	ts.token = ""
}

type tokenFetch struct {
	done  chan struct{}
	token string
	err   error
}

// Token returns a valid access token.
func (ts *tokenSource) Token(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", apierr.New(apierr.CodeUpstreamTimeout, 0, fmt.Errorf("waiting for a token: %w", context.Cause(ctx)))
	}
	ts.mu.Lock()
	if ts.token != "" && ts.now().Before(ts.renewAt) {
		tok := ts.token
		ts.mu.Unlock()
		return tok, nil
	}
	if ts.refused != nil && ts.now().Before(ts.refusedUntil) {
		err := ts.refused
		ts.mu.Unlock()
		return "", err
	}
	f := ts.inflight
	leader := f == nil
	if leader {
		f = &tokenFetch{done: make(chan struct{})}
		ts.inflight = f
	}
	ts.mu.Unlock()

	if leader {
		// The fetch serves every waiter, so it must not die with the
		// leader's request, nor hold the leader past its own deadline: it
		// runs on its own goroutine, bounded by the per-attempt timeout.
		go ts.run(context.WithoutCancel(ctx), f)
	}
	select {
	case <-f.done:
		return f.token, f.err
	case <-ctx.Done():
		return "", apierr.New(apierr.CodeUpstreamTimeout, 0, fmt.Errorf("waiting for a token: %w", context.Cause(ctx)))
	}
}

func (ts *tokenSource) run(ctx context.Context, f *tokenFetch) {
	tok, ttl, err := ts.fetch(ctx)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	f.token, f.err = tok, err
	switch {
	case err == nil:
		ts.token = tok
		ts.renewAt = ts.now().Add(ttl - renewMargin(ttl))
		ts.refused = nil
	case apierr.AsError(err).Code == apierr.CodeUnauthorized:
		ts.refused, ts.refusedUntil = err, ts.now().Add(refusalHold)
	}
	ts.inflight = nil
	close(f.done)
}

// Invalidate forgets tok if it is still the cached token, so that the next
// Token call fetches a new one.
func (ts *tokenSource) Invalidate(tok string) {
	ts.mu.Lock()
	if ts.token == tok {
		ts.token = ""
	}
	ts.mu.Unlock()
}

// renewMargin is how long before expiry a token is renewed: a tenth of its
// lifetime, at most a minute.
func renewMargin(ttl time.Duration) time.Duration {
	return min(ttl/10, time.Minute)
}
