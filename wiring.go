package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/edge/auth"
	"github.com/mkgraph/mkgraph/internal/edge/ratelimit"
	"github.com/mkgraph/mkgraph/internal/obs/metrics"
	"github.com/mkgraph/mkgraph/internal/obs/reqlog"
	"github.com/mkgraph/mkgraph/internal/obs/tracing"
	"github.com/mkgraph/mkgraph/internal/redisstore"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// services are what the handler is built from.
type services struct {
	client  *upstream.Client
	fetcher loader.Fetcher // the identity cache in front of client, or client
	authn   *auth.Authenticator
	metrics *metrics.Metrics
	redis   *redisstore.Client // nil without MKGRAPH_REDIS_URL
	events  *linkEvents        // refresh, webhook receiver, link event bus (events.go)
}

// wire builds the services the settings describe, in dependency order: the
// upstream (the embedded sandbox when no MoneyKit is configured), tracing,
// metrics, Redis, the MoneyKit client, the identity cache, the
// authenticator. closeAll releases what was built, last first; it is never
// nil, and must be called even when err is not. webhookURL is where the
// embedded sandbox sends its webhooks: the facade's own receiver.
func wire(ctx context.Context, c *config, getenv func(string) string, log zerolog.Logger, webhookURL string) (svc *services, closeAll func(), err error) {
	var closers []func()
	onClose := func(f func()) { closers = append(closers, f) }
	closeAll = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	baseURL, clientID, clientSecret := c.BaseURL, c.ClientID, c.ClientSecret
	embedded := baseURL == ""
	if embedded {
		sbx, stopSandbox, err := startSandbox(sandbox.Options{Latency: c.SandboxLatency, WebhookURL: webhookURL})
		if err != nil {
			return nil, closeAll, err
		}
		onClose(stopSandbox)
		baseURL, clientID, clientSecret = sbx, sandbox.DefaultClientID, sandbox.DefaultClientSecret
		log.Warn().Str("upstream", baseURL).Msg("MONEYKIT_BASE_URL is unset: serving the embedded sandbox's fixture data, not MoneyKit")
	}
	tracingOn, stopTracing, err := tracing.Setup(ctx, getenv)
	if err != nil {
		return nil, closeAll, &configError{fmt.Errorf("OTEL_*: %w", err)}
	}
	onClose(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stopTracing(sctx)
	})
	log.Info().Bool("tracing", tracingOn).Msg("OpenTelemetry tracing (OTEL_EXPORTER_OTLP_ENDPOINT)")

	m := metrics.New()
	namespace := cache.NamespaceFor(baseURL, clientID)
	var rs *redisstore.Client
	var redisKeys [][]byte // identity encryption keys, the first also naming keys
	if c.RedisURL != "" {
		redisKeys = c.RedisKeys
		if redisKeys == nil {
			redisKeys = [][]byte{redisstore.DeriveKey(clientSecret, clientID)}
		}
		rs, err = redisstore.Open(ctx, redisstore.Config{
			URL: c.RedisURL, Prefix: c.RedisPrefix, Timeout: c.RedisTimeout,
			Log: log, OnError: m.RedisError, NameKey: redisstore.NameKey(redisKeys[0]),
		})
		if err != nil {
			return nil, closeAll, &configError{fmt.Errorf("MKGRAPH_REDIS_URL: %w", err)}
		}
		onClose(func() { rs.Close() })
	}
	client, err := upstream.New(upstream.Config{
		BaseURL:      baseURL,
		ClientID:     clientID,
		ClientSecret: clientSecret,
		Timeout:      c.UpstreamTimeout,
		MaxBodyBytes: c.UpstreamMaxBody,
		Observer:     observeUpstream(m),

		WrapTransport:     tracing.Transport,
		Budget:            rateBudget(c, embedded, rs, namespace),
		OnBudgetRefused:   m.BudgetRefused,
		MaxRetryAfterWait: c.MaxRetryWait,
		MaxInFlight:       c.MaxInFlight,
		BreakerCooldown:   c.BreakerCooldown,
	})
	if err != nil {
		return nil, closeAll, &configError{err}
	}

	// Repeat reads are served from the identity cache, keyed by these
	// credentials, behind authorization (the resolvers decide before any
	// loader asks it).
	var fetcher loader.Fetcher = client
	var ic *cache.Cache
	if c.CacheTTL > 0 {
		cc := cache.Config{
			Next:      client.GetIdentity,
			Namespace: namespace,
			MaxBytes:  c.CacheMaxBytes,
			TTL:       c.CacheTTL,
			MaxStale:  c.CacheMaxStale,
			OnResult:  m.Cache,
			// A shared call nobody waits for any more is cancelled; none
			// outlives the longest request.
			FetchTimeout: c.RequestTimeout,
		}
		// With Redis, one replica calls MoneyKit per link while the others
		// wait; should it die, another takes over after the lock's TTL, by
		// default the shared call's own bound (FetchTimeout).
		if rs != nil {
			if cc.Shared, err = redisstore.NewIdentities(rs, redisKeys); err != nil {
				return nil, closeAll, &configError{fmt.Errorf("MKGRAPH_REDIS_ENCRYPTION_KEY: %w", err)}
			}
		}
		ic, err = cache.New(cc)
		if err != nil {
			return nil, closeAll, &configError{err}
		}
		onClose(ic.Close)
		fetcher = ic
	}

	events, err := wireLinkEvents(c, log, baseURL, clientID, namespace, rs, ic, m, onClose)
	if err != nil {
		return nil, closeAll, err
	}
	events.refresh = newRefresher(client, refreshBudget(c, embedded, rs, namespace), m)

	authn, err := newAuthenticator(ctx, c, embedded, log)
	if err != nil {
		return nil, closeAll, err
	}
	onClose(authn.Close)

	return &services{client: client, fetcher: fetcher, authn: authn, metrics: m, redis: rs, events: events}, closeAll, nil
}

// observeUpstream counts each upstream call for the request's access log
// and the metrics.
func observeUpstream(m *metrics.Metrics) func(context.Context, upstream.Call) {
	return func(ctx context.Context, call upstream.Call) {
		reqlog.From(ctx).AddUpstreamCall()
		m.ObserveUpstream(call)
		if call.Endpoint == upstream.EndpointToken {
			m.TokenRenewed(call.Code == "")
		}
		zerolog.Ctx(ctx).Debug().Str("endpoint", call.Endpoint).Int("status", call.Status).
			Str("code", call.Code).Dur("duration", call.Duration).Msg("upstream call")
	}
}

// rateBudget is the facade's mirror of MoneyKit's identity limits: unset
// budgets are MoneyKit's own with a real upstream, and none with the
// embedded sandbox (which has no limits, and where a developer re-running a
// query should not be refused).
func rateBudget(c *config, embedded bool, rs *redisstore.Client, namespace string) upstream.RateBudget {
	perLink, perApp := c.BudgetPerLink, c.BudgetPerApp
	if perLink < 0 {
		perLink = upstream.IdentityCallsPerLink
		if embedded {
			perLink = 0
		}
	}
	if perApp < 0 {
		perApp = upstream.IdentityCallsPerApp
		if embedded {
			perApp = 0
		}
	}
	switch {
	case perLink == 0 && perApp == 0:
		return nil
	case rs != nil:
		return redisstore.NewBudget(rs, namespace, perLink, perApp, upstream.IdentityLimitWindow)
	}
	return upstream.NewSlidingWindow(perLink, perApp, upstream.IdentityLimitWindow, nil)
}

// callerLimiter limits one kind of caller to perMinute requests a minute,
// with bursts of burst requests (0: 10 s worth, a sixth of perMinute, at
// least 1): in Redis with rs, else in memory. Its refusals are counted as
// mkgraph_rate_budget_refusals_total{scope="caller"}.
func callerLimiter(rs *redisstore.Client, m *metrics.Metrics, kind string, perMinute, burst int) ratelimit.Limiter {
	if burst <= 0 {
		burst = defaultBurst(perMinute)
	}
	var l ratelimit.Limiter = ratelimit.NewMemory(perMinute, burst)
	if rs != nil {
		l = redisstore.NewLimiter(rs, kind, perMinute, burst)
	}
	return countRefusals{l, m}
}

// defaultBurst is the burst of a caller limit of perMinute requests a
// minute when none is set: 10 s worth, at least 1.
func defaultBurst(perMinute int) int { return max(1, perMinute/6) }

// countRefusals counts a Limiter's refusals in the metrics.
type countRefusals struct {
	ratelimit.Limiter
	m *metrics.Metrics
}

func (c countRefusals) Allow(ctx context.Context, key string) (time.Duration, bool, error) {
	d, ok, err := c.Limiter.Allow(ctx, key)
	if err == nil && !ok {
		c.m.BudgetRefused(metrics.ScopeCaller)
	}
	return d, ok, err
}

// apqCache is the automatic persisted query store shared through Redis, or
// nil (gqlgen's in-memory LRU) without it or with APQ off.
func apqCache(c *config, rs *redisstore.Client) graphql.Cache[string] {
	if rs == nil || c.APQCacheSize == 0 {
		return nil
	}
	return redisstore.NewAPQ(rs, c.APQCacheSize, redisstore.DefaultAPQTTL)
}

// withServed lets the identity cache record, per request, which answers it
// served stale.
func withServed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, _ := cache.WithServed(r.Context())
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// staleExtensions tells the frontend, in the response's top-level
// extensions, that some identity data is older than the cache's TTL, because
// the upstream failed or refused: {"identityCache": {"stale": true,
// "ageSeconds": N}}, so it can show "as of …".
func staleExtensions(ctx context.Context) map[string]any {
	age, stale := cache.ServedFrom(ctx).AnyStale()
	if !stale {
		return nil
	}
	return map[string]any{"identityCache": map[string]any{"stale": true, "ageSeconds": int(age.Seconds())}}
}

// errForbidden answers a link the caller may not read. It does not say
// whether the link exists.
var errForbidden = &apierr.Error{Code: apierr.CodeForbidden, Message: "You may not read this link."}

// errExpired answers a caller whose token expired after it was
// authenticated: a WebSocket or SSE stream it opened, or a long request.
var errExpired = &apierr.Error{Code: apierr.CodeUnauthenticated, Message: "Token expired."}

// authorize lets the request's caller read only its own links, and only
// until its credential expires.
func authorize(ctx context.Context, linkID string) error {
	c := auth.FromContext(ctx)
	if c != nil && c.Expired(time.Now()) {
		return errExpired
	}
	if c.MayRead(linkID) {
		return nil
	}
	return errForbidden
}

// callerExpires is when the credential of ctx's caller expires; zero:
// never (API keys, auth off).
func callerExpires(ctx context.Context) time.Time {
	if c := auth.FromContext(ctx); c != nil {
		return c.Expires
	}
	return time.Time{}
}

// callerKey keys per-caller rate limits: callers of kind k by their id;
// others ("" ) are not limited by that limiter.
func callerKey(k auth.Kind) func(*http.Request) string {
	return func(r *http.Request) string { return callerKeyOf(r.Context(), k) }
}

// callerKeyOf is callerKey's key for the caller of ctx.
func callerKeyOf(ctx context.Context, k auth.Kind) string {
	if c := auth.FromContext(ctx); c != nil && c.Kind == k {
		return c.ID()
	}
	return ""
}

// chargeSubscribe charges a WebSocket subscribe message to its caller's
// limiter (users' or backends'), keyed as callerKey keys HTTP requests, so
// that a socket is no way around the per-caller rate limits.
func chargeSubscribe(users, backends ratelimit.Limiter) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if e := ratelimit.Charge(ctx, users, callerKeyOf(ctx, auth.KindUser)); e != nil {
			return e
		}
		if e := ratelimit.Charge(ctx, backends, callerKeyOf(ctx, auth.KindBackend)); e != nil {
			return e
		}
		return nil
	}
}

// newAuthenticator builds the authenticator the settings describe; auth off
// with a real upstream is allowed only explicitly, and said loudly.
func newAuthenticator(ctx context.Context, c *config, embedded bool, log zerolog.Logger) (*auth.Authenticator, error) {
	if c.Auth == "none" && !embedded {
		log.Error().Str("MKGRAPH_AUTH", "none").Msg("AUTHENTICATION IS OFF with a real MoneyKit upstream: any caller can read any link's identity data")
	}
	a, err := auth.New(ctx, auth.Config{
		Mode:         c.Auth,
		HS256Secret:  []byte(c.JWTSecret),
		JWKSURL:      c.JWKSURL,
		JWKSFile:     c.JWKSFile,
		Issuer:       c.JWTIssuer,
		Audience:     c.JWTAudience,
		LinksClaim:   c.JWTLinksClaim,
		Leeway:       c.JWTLeeway,
		BackendScope: c.JWTBackendScope,
		APIKeysFile:  c.APIKeysFile,
	})
	if err != nil {
		return nil, &configError{err}
	}
	return a, nil
}
