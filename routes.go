package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"

	"github.com/mkgraph/mkgraph/graph"
	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/edge"
	"github.com/mkgraph/mkgraph/internal/edge/auth"
	"github.com/mkgraph/mkgraph/internal/edge/httperr"
	"github.com/mkgraph/mkgraph/internal/edge/ratelimit"
	"github.com/mkgraph/mkgraph/internal/graphiql"
	"github.com/mkgraph/mkgraph/internal/obs/label"
	"github.com/mkgraph/mkgraph/internal/obs/metrics"
	"github.com/mkgraph/mkgraph/internal/obs/reqlog"
	"github.com/mkgraph/mkgraph/internal/obs/tracing"
	"github.com/mkgraph/mkgraph/internal/redisstore"
	"github.com/mkgraph/mkgraph/upstream/cache"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
	"github.com/mkgraph/mkgraph/upstream/webhook"
)

// newHandler wires the routes and the middleware chain. ready reports why
// the server should not get traffic (shutting down, credentials refused).
//
// With rs (Redis), replicas share the APQ store and the per-caller limits;
// without it both are this process's own. ev (nil in some tests: no
// webhook route, no refreshes or subscriptions) is events.go's.
func newHandler(c *config, log zerolog.Logger, client loader.Fetcher, ready func() error, authn *auth.Authenticator, m *metrics.Metrics, rs *redisstore.Client, ev *linkEvents) (http.Handler, error) {
	cors, err := corsPolicy(c)
	if err != nil {
		return nil, err
	}
	log.Info().Strs("origins", cors.Origins).Bool("localhost_any_port", cors.LocalhostAnyPort).
		Strs("headers", cors.Headers).Dur("max_age", cors.MaxAge).Msg("CORS: browser origins allowed to call (besides same-origin pages)")
	var persisted *graph.PersistedQueries
	if c.PersistedFile != "" {
		if persisted, err = graph.LoadPersistedQueries(c.PersistedFile, c.PersistedOnly); err != nil {
			return nil, fmt.Errorf("MKGRAPH_PERSISTED_QUERIES_FILE: %w", err)
		}
	} else if c.PersistedOnly {
		return nil, errors.New("MKGRAPH_PERSISTED_QUERIES_ONLY needs MKGRAPH_PERSISTED_QUERIES_FILE")
	}
	prod := c.production()
	loaders := loader.NewFactory(loader.Config{
		Fetcher:             client,
		Concurrency:         c.UpstreamConcurrency,
		Wait:                c.LoaderWait,
		MaxLinks:            c.MaxLinksPerRequest,
		MaxAccounts:         c.MaxAccountsPerRequest,
		MaxAccountsInFlight: cmp.Or(c.MaxAccountsInFlight, -1),
		OnBatch:             m.LoaderBatch,
		// The identity cache serves one answer to many requests: its model
		// is built once, not per request.
		ShareModels: servesShared(client),
	})
	m.Gauge("mkgraph_large_answer_accounts_in_flight", "Accounts of large answers (100+ per link) being built now (bounded by MKGRAPH_MAX_ACCOUNTS_IN_FLIGHT).",
		func() float64 { a, _ := loaders.Gate(); return float64(a) })
	m.Gauge("mkgraph_large_answers_waiting", "Requests waiting for room to build a large answer.",
		func() float64 { _, w := loaders.Gate(); return float64(w) })
	if rs != nil {
		m.Gauge("mkgraph_redis_down", "1 while Redis fails (its last operation or background PING, every 5 s, failed, or the breaker is open): this replica is on its in-memory state.",
			func() float64 {
				if rs.Down() {
					return 1
				}
				return 0
			})
	}
	// Subscriptions: WebSockets authenticate in connection_init with the
	// same authenticator, open only from allowed origins.
	subs := graph.NewSubscriptions(graph.SubscriptionConfig{
		Authenticate: func(ctx context.Context, h http.Header) (context.Context, error) {
			caller, err := authn.AuthenticateHeaders(ctx, h)
			if err != nil {
				return ctx, err
			}
			return auth.NewContext(ctx, caller), nil
		},
		AllowOrigin: cors.AllowsOrigin,
		// Anonymous callers (MKGRAPH_AUTH=none, the sandbox) are not one
		// caller: they share only the replica-wide bounds.
		CallerKey: func(ctx context.Context) string {
			if c := auth.FromContext(ctx); c != nil && c.Kind != auth.KindAnonymous {
				return c.ID()
			}
			return ""
		},
		KeyHeader: authn.KeyHeader(),
	})
	m.Subscriptions(subs)
	users := callerLimiter(rs, m, auth.KindUser.String(), c.UserRateLimit, c.UserRateBurst)
	backends := callerLimiter(rs, m, auth.KindBackend.String(), c.BackendRateLimit, c.BackendRateBurst)
	// One guard for the limits middleware and graph's own check of the
	// operations no middleware sees (WebSocket subscribe messages).
	guard := c.Limits.Guard()
	gql := graph.NewHandler(graph.HandlerConfig{
		Limits:             guard,
		Expires:            callerExpires,
		RateLimit:          chargeSubscribe(users, backends),
		MaxLinkIDs:         c.MaxLinkIDs,
		MaxComplexity:      c.MaxComplexity,
		Executor:           c.Executor,
		MaxTokens:          2 * c.Limits.MaxTokens, // gqlgen counts comments too; the limits middleware has already refused real excess
		Introspection:      c.Introspection.or(!prod),
		Suggestions:        c.Suggestions.or(!prod),
		Authorize:          authorize,
		APQCacheSize:       c.APQCacheSize,
		APQCache:           apqCache(c, rs),
		Persisted:          persisted,
		ResponseExtensions: staleExtensions,
		Refresh:            ev.refreshFunc(),
		Events:             ev.eventBus(),
		Loaders:            loaders,
		Subscriptions:      subs,
	})
	fail := func(w http.ResponseWriter, r *http.Request, e *apierr.Error) {
		httperr.Write(w, r, http.StatusUnauthorized, e)
	}

	mux := http.NewServeMux()
	// The GraphQL chain, outermost first: cheap refusals before costly work,
	// the caller known before anything is loaded. The operation limits come
	// after the caller is known and charged: they decode the whole body
	// (the decoding the POST transport then runs), which an anonymous
	// caller must not be able to make the server do without limit.
	httpChain := edge.Chain(gql,
		edge.GraphQLHeaders,
		edge.CSRF,
		edge.BodyLimit(c.MaxBodyBytes),
		authn.Middleware(fail),
		ratelimit.Middleware(users, callerKey(auth.KindUser)),
		ratelimit.Middleware(backends, callerKey(auth.KindBackend)),
		guard.Middleware,
		graph.StreamContext, // lets an SSE subscription outlive the timeout, not its client
		edge.Timeout(c.RequestTimeout),
		withServed,
		loaders.Middleware,
	)
	// A WebSocket upgrade carries no credentials (its connection_init does)
	// and lives past any request timeout; its Origin is checked by graph,
	// which serves only subscriptions over it, and holds each subscribe
	// message to the operation limits and the caller's rate limit.
	wsChain := edge.Chain(gql, edge.GraphQLHeaders, edge.CSRF, withServed, loaders.Middleware)
	mux.Handle("/graphql", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if edge.IsWebSocketUpgrade(r) {
			wsChain.ServeHTTP(w, r)
			return
		}
		httpChain.ServeHTTP(w, r)
	}))
	// The schema as SDL, for codegen, whenever introspection is allowed.
	mux.Handle("GET "+graph.SchemaPath, graph.SchemaHandler(c.Introspection.or(!prod)))
	if c.GraphiQL.or(!prod) {
		// GraphiQL from the binary (internal/graphiql): the page, and the
		// bundle under /graphiql/, both under GraphiQL's own CSP.
		gi, err := graphiql.New(graphiqlOptions(c))
		if err != nil {
			return nil, err
		}
		mux.Handle("GET /{$}", edge.GraphiQL(gi.Page()))
		mux.Handle("GET "+graphiqlPrefix, edge.GraphiQL(gi.Assets()))
	}
	// MoneyKit's webhooks (upstream/webhook), outside the GraphQL chain:
	// no CSRF rule (MoneyKit is no browser), no caller auth (the signature
	// is the auth), the receiver's own 64 KiB body limit and its own
	// answers (405 for another method); behind the outer chain's request
	// id, access log, recover and security headers.
	if ev != nil {
		mux.Handle(webhook.Path, ev.receiver)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /readyz", readyHandler(ready))

	// The chain, outermost first: every request gets a server span, a logger, an id, a
	// summary record, one access log line, panic recovery, safe headers and
	// CORS (preflights are answered here, before CSRF and auth).
	return withShutdown{Handler: edge.Chain(mux,
		tracing.Server(label.Route, label.Other), // continues the caller's trace; nothing when tracing is off
		hlog.NewHandler(log),
		edge.RequestID,
		reqlog.Middleware,
		m.Middleware,
		hlog.AccessHandler(edge.AccessLog),
		edge.Recover,
		edge.SecurityHeaders,
		cors.Middleware,
	), shutdownHook: subs.Shutdown}, nil
}

// withShutdown is the server's handler with what http.Server.Shutdown must
// also end: the subscriptions' WebSockets (hijacked, so not closed by it)
// and SSE streams. server.go registers Shutdown with RegisterOnShutdown.
type withShutdown struct {
	http.Handler
	shutdownHook func()
}

// Shutdown ends the subscriptions (WebSockets closed with 1012).
func (h withShutdown) Shutdown() { h.shutdownHook() }

// corsPolicy is the CORS policy of the settings. On the embedded sandbox
// (which production refuses) any http://localhost or http://127.0.0.1 port
// may call too, so that a frontend dev server works without settings; with
// a real MoneyKit only the listed origins may.
func corsPolicy(c *config) (*edge.CORSPolicy, error) {
	maxAge := c.CORSMaxAge
	if maxAge == 0 {
		maxAge = -1 // MKGRAPH_CORS_MAX_AGE=0s: preflights not cached
	}
	return edge.NewCORS(edge.CORSConfig{
		Origins:          splitList(c.CORSOrigins),
		Headers:          splitList(c.CORSHeaders),
		MaxAge:           maxAge,
		LocalhostAnyPort: c.BaseURL == "" && !c.production(),
	})
}

// readyHandler answers /readyz: 200 "ready" while ready reports nothing,
// else 503 with the reason.
func readyHandler(ready func() error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := ready(); err != nil {
			// The reason is an error code or a fixed text, never a secret.
			http.Error(w, "not ready: "+apierr.AsError(err).Code, http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
}

// graphiqlPrefix is the path of GraphiQL's bundle.
const graphiqlPrefix = "/graphiql/"

// graphiqlOptions configures GraphiQL's default tab: over the embedded
// sandbox, an example on its seed link with the sandbox's link ids listed
// (the magic fault ids left out: they hang or drip); in JWT mode, an
// Authorization header to fill in.
func graphiqlOptions(c *config) graphiql.Options {
	o := graphiql.Options{Endpoint: "/graphql", Prefix: graphiqlPrefix, JWT: c.Auth == "jwt", Subscriptions: "/graphql"}
	if c.BaseURL == "" {
		for _, l := range sandbox.Links() {
			if !l.Fault {
				o.SandboxLinks = append(o.SandboxLinks, graphiql.Link{ID: l.ID, About: l.Description})
			}
		}
	}
	return o
}

// adminHandler serves what operators need and the public must not reach:
// Prometheus metrics, the same /readyz as the main listener (for probes
// kept off the public port), and pprof when enabled.
func adminHandler(c *config, m *metrics.Metrics, ready func() error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("GET /readyz", readyHandler(ready))
	mux.Handle("GET /metrics", m.Handler())
	if c.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// servesShared reports whether f is the identity cache, which hands the
// same answer to every request that reads a link while it is fresh.
func servesShared(f loader.Fetcher) bool {
	_, ok := f.(*cache.Cache)
	return ok
}
