package main

import (
	"cmp"
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
	"github.com/mkgraph/mkgraph/internal/obs/metrics"
	"github.com/mkgraph/mkgraph/internal/obs/reqlog"
	"github.com/mkgraph/mkgraph/internal/redisstore"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// newHandler wires the routes and the middleware chain. ready reports why
// the server should not get traffic (shutting down, credentials refused).
//
// With rs (Redis), replicas share the APQ store and the per-caller limits;
// without it both are this process's own.
func newHandler(c *config, log zerolog.Logger, client loader.Fetcher, ready func() error, authn *auth.Authenticator, m *metrics.Metrics, rs *redisstore.Client) (http.Handler, error) {
	cors, err := edge.CORS(splitList(c.CORSOrigins))
	if err != nil {
		return nil, err
	}
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
	})
	m.Gauge("mkgraph_large_answer_accounts_in_flight", "Accounts of large answers (100+ per link) being built now (bounded by MKGRAPH_MAX_ACCOUNTS_IN_FLIGHT).",
		func() float64 { a, _ := loaders.Gate(); return float64(a) })
	m.Gauge("mkgraph_large_answers_waiting", "Requests waiting for room to build a large answer.",
		func() float64 { _, w := loaders.Gate(); return float64(w) })
	if rs != nil {
		m.Gauge("mkgraph_redis_down", "1 while the Redis breaker is open (repeated failures): this replica is on its in-memory state.",
			func() float64 {
				if rs.Down() {
					return 1
				}
				return 0
			})
	}
	gql := graph.NewHandler(graph.HandlerConfig{
		MaxLinkIDs:         c.MaxLinkIDs,
		MaxComplexity:      c.MaxComplexity,
		MaxTokens:          2 * c.Limits.MaxTokens, // gqlgen counts comments too; the limits middleware has already refused real excess
		Introspection:      c.Introspection.or(!prod),
		Suggestions:        c.Suggestions.or(!prod),
		Authorize:          authorize,
		APQCacheSize:       c.APQCacheSize,
		APQCache:           apqCache(c, rs),
		Persisted:          persisted,
		ResponseExtensions: staleExtensions,
	})
	fail := func(w http.ResponseWriter, r *http.Request, e *apierr.Error) {
		httperr.Write(w, r, http.StatusUnauthorized, e)
	}
	users := callerLimiter(rs, m, auth.KindUser.String(), c.UserRateLimit)
	backends := callerLimiter(rs, m, auth.KindBackend.String(), c.BackendRateLimit)

	mux := http.NewServeMux()
	// The GraphQL chain, outermost first: cheap refusals before costly work,
	// the caller known before anything is loaded.
	mux.Handle("/graphql", edge.Chain(gql,
		edge.GraphQLHeaders,
		edge.CSRF,
		edge.BodyLimit(c.MaxBodyBytes),
		c.Limits.Middleware,
		authn.Middleware(fail),
		ratelimit.Middleware(users, callerKey(auth.KindUser)),
		ratelimit.Middleware(backends, callerKey(auth.KindBackend)),
		edge.Timeout(c.RequestTimeout),
		withServed,
		loaders.Middleware,
	))
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
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := ready(); err != nil {
			// The reason is an error code or a fixed text, never a secret.
			http.Error(w, "not ready: "+apierr.AsError(err).Code, http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})

	// The chain, outermost first: every request gets a logger, an id, a
	// summary record, one access log line, panic recovery, safe headers and
	// CORS (preflights are answered here, before CSRF and auth).
	return edge.Chain(mux,
		hlog.NewHandler(log),
		edge.RequestID,
		reqlog.Middleware,
		m.Middleware,
		hlog.AccessHandler(edge.AccessLog),
		edge.Recover,
		edge.SecurityHeaders,
		cors,
	), nil
}

// graphiqlPrefix is the path of GraphiQL's bundle.
const graphiqlPrefix = "/graphiql/"

// graphiqlOptions configures GraphiQL's default tab: over the embedded
// sandbox, an example on its seed link with the sandbox's link ids listed
// (the magic fault ids left out: they hang or drip); in JWT mode, an
// Authorization header to fill in.
func graphiqlOptions(c *config) graphiql.Options {
	o := graphiql.Options{Endpoint: "/graphql", Prefix: graphiqlPrefix, JWT: c.Auth == "jwt"}
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
// Prometheus metrics, and pprof when enabled.
func adminHandler(c *config, m *metrics.Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
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
