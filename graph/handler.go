package graph

import (
	"context"
	"fmt"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/mkgraph/mkgraph/graph/limits"
	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/linkevents"
	"github.com/mkgraph/mkgraph/internal/obs/reqlog"
	"github.com/mkgraph/mkgraph/internal/obs/tracing"
	"github.com/mkgraph/mkgraph/upstream"
)

// Defaults for HandlerConfig.
const (
	DefaultMaxLinkIDs    = 100
	DefaultMaxComplexity = 20000
)

// Cost model of the complexity limit: a link costs an upstream call on top
// of its fields, and a link's accounts are assumed to be this many when the
// query does not narrow them (most links have a handful; the account budget
// of the loaders bounds the rest at run time).
const (
	linkCost        = 10
	assumedAccounts = 10
)

// HandlerConfig configures the GraphQL handler.
type HandlerConfig struct {
	MaxLinkIDs    int  // longest links(ids:) list; 0: DefaultMaxLinkIDs
	MaxComplexity int  // most an operation may cost; 0: DefaultMaxComplexity
	MaxTokens     int  // parser token limit (the limits middleware refuses earlier); 0: none
	Introspection bool // allow __schema and __type queries
	Suggestions   bool // "Did you mean …" in validation errors
	// Authorize decides, before any loader, cache or upstream call, whether
	// the request's caller may read a link; it returns facade.forbidden
	// otherwise. nil: every link.
	Authorize func(ctx context.Context, linkID string) error
	// APQCacheSize bounds the automatic persisted query cache (query texts,
	// never data); 0: APQ off.
	APQCacheSize int
	// APQCache, when set with APQCacheSize > 0, is the APQ store instead of
	// an in-memory LRU of APQCacheSize (a store shared by replicas).
	APQCache graphql.Cache[string]
	// Persisted, when set, serves the operations of a manifest by hash and,
	// in allowlist mode, accepts nothing else.
	Persisted *PersistedQueries
	// ResponseExtensions, when set, adds top-level response extensions (the
	// identity cache says there when an answer is stale, and how old).
	ResponseExtensions func(ctx context.Context) map[string]any
	// Refresh asks MoneyKit to refresh a link's identity data (the
	// refreshIdentity mutation), after the caller was authorized and within
	// the facade's refresh budget; it returns the link as MoneyKit answered.
	// nil: the mutation answers facade.upstream_unavailable.
	Refresh func(ctx context.Context, linkID string) (*upstream.Link, error)
	// Events delivers the link events of linkEvents subscriptions (webhooks
	// verified by this or another replica). nil: subscriptions are refused.
	Events linkevents.Bus
	// Loaders makes fresh per-event loaders for what a subscription event
	// selects (its link), so no event reads another's cached answer.
	Loaders *loader.Factory
	// Limits, when set, holds every operation to the operation limits
	// before it is parsed, unless the request crossed the same Guard's
	// Middleware: WebSocket subscribe messages cross none.
	Limits *limits.Guard
	// RateLimit, when set, charges each WebSocket subscribe message to its
	// caller's rate limit (HTTP requests are charged by middleware): it
	// returns the refusal (facade.rate_limit_exceeded with retryAfter),
	// answered with an "error" message for that subscription.
	RateLimit func(ctx context.Context) error
	// Expires, when set, is when the credential of ctx's caller expires
	// (zero: never). A WebSocket is closed with 4401 then, and an SSE
	// stream ends with facade.unauthenticated; Authorize must refuse such
	// a caller too (new subscriptions, events' links).
	Expires func(ctx context.Context) time.Time
	// Executor runs read operations: ExecutorPlan (the default, also for
	// "") or ExecutorGQLgen. The plan runs no field middleware
	// (AroundFields, AroundRootFields): none is registered, and one added
	// later needs ExecutorGQLgen or its own place in package plan.
	Executor string
	// Subscriptions bounds and wires subscriptions (WebSocket and SSE);
	// its Shutdown ends them on server shutdown. nil: the defaults, no
	// credential checks on WebSockets, no cross-origin WebSockets.
	Subscriptions *Subscriptions
}

// NewHandler returns the GraphQL HTTP handler. It expects the request context
// to carry the per-request loaders (loader.Factory.Middleware) and a zerolog
// logger; a reqlog.Record, when present, is filled in.
func NewHandler(cfg HandlerConfig) *handler.Server {
	if cfg.MaxLinkIDs <= 0 {
		cfg.MaxLinkIDs = DefaultMaxLinkIDs
	}
	if cfg.MaxComplexity <= 0 {
		cfg.MaxComplexity = DefaultMaxComplexity
	}
	authorize := cfg.Authorize
	if authorize == nil {
		authorize = func(context.Context, string) error { return nil }
	}
	subs := cfg.Subscriptions
	if subs == nil {
		subs = NewSubscriptions(SubscriptionConfig{})
	}
	resolver := &Resolver{maxLinkIDs: cfg.MaxLinkIDs, authorize: authorize,
		refresh: cfg.Refresh, events: cfg.Events, loaders: cfg.Loaders, subs: subs}
	var es graphql.ExecutableSchema = NewExecutableSchema(Config{Resolvers: resolver, Complexity: complexity()})
	if cfg.Executor != ExecutorGQLgen {
		es = newPlanSchema(es, resolver) // executor.go
	}
	srv := handler.New(es)
	srv.AddTransport(transport.Options{})
	srv.AddTransport(newWSTransport(subs, cfg.Expires)) // transport_ws.go: subscriptions over WebSocket
	srv.AddTransport(getTransport{})
	srv.AddTransport(postTransport{subs: subs})
	srv.AddTransport(unsupportedTransport{}) // last: it takes whatever the others do not
	srv.SetValidationRulesFn(validationRules)
	// Parsed documents are far larger than their text and the cache is
	// bounded by entries: keep it small (a frontend has few operations).
	srv.SetQueryCache(lru.New[*ast.QueryDocument](256))
	srv.SetDisableSuggestion(!cfg.Suggestions)
	if cfg.MaxTokens > 0 {
		srv.SetParserTokenLimit(cfg.MaxTokens)
	}
	// First of the parameter mutators: before the persisted query
	// extensions fill in a query from its hash.
	srv.Use(operationLimits{guard: cfg.Limits, charge: cfg.RateLimit})
	if cfg.Introspection {
		srv.Use(extension.Introspection{})
	} else {
		srv.Use(noIntrospection{})
	}
	srv.Use(linkIDsLimit{max: cfg.MaxLinkIDs})
	if cfg.Persisted != nil {
		srv.Use(cfg.Persisted) // before APQ: manifest hashes need no registration
	}
	if cfg.APQCacheSize > 0 {
		var store graphql.Cache[string] = lru.New[string](cfg.APQCacheSize)
		if cfg.APQCache != nil {
			store = cfg.APQCache
		}
		srv.Use(apq{extension.AutomaticPersistedQuery{Cache: store}})
	}
	srv.Use(newComplexityLimit(cfg.MaxComplexity)) // complexity.go
	srv.AroundOperations(tracing.Operation)        // a span per operation; free when tracing is off
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		oc := graphql.GetOperationContext(ctx)
		name := oc.OperationName
		if name == "" && oc.Operation != nil {
			name = oc.Operation.Name
		}
		reqlog.From(ctx).SetOperation(name)
		if oc.Operation != nil && oc.Operation.Operation == ast.Subscription {
			return next(ctx) // a stream: nil is its end, not an expiry
		}
		return answerExpired(next(ctx))
	})
	srv.AroundOperations(subscriptionOperations)
	if cfg.Expires != nil {
		srv.AroundOperations(streamExpiry(cfg.Expires)) // transport_sse.go
	}
	if f := cfg.ResponseExtensions; f != nil {
		srv.AroundResponses(func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
			resp := next(ctx)
			if resp == nil {
				return nil
			}
			for k, v := range f(ctx) {
				if resp.Extensions == nil {
					resp.Extensions = map[string]any{}
				}
				resp.Extensions[k] = v
			}
			return resp
		})
	}
	srv.AroundResponses(func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		resp := next(ctx)
		if resp != nil {
			sortErrors(resp.Errors) // executor.go
		}
		return resp
	})
	// The answer is built: what remains is writing its bytes, which a slow
	// reader may stretch to the write timeout. Room for large answers is
	// given back now, so that such a reader holds no other request back.
	// With @defer, only after the last part: deferred fragments build
	// theirs while the earlier parts are written.
	srv.AroundResponses(func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		resp := next(ctx)
		if resp == nil || resp.HasNext == nil || !*resp.HasNext {
			loader.ReleaseLarge(ctx)
			releaseEvent(ctx) // a subscription event's own loaders
		}
		return resp
	})
	srv.SetErrorPresenter(presentError)
	srv.SetRecoverFunc(recoverPanic)
	return srv
}

// noIntrospection refuses, before execution, an operation that asks for the
// schema when introspection is off: gqlgen would otherwise run it and answer
// a bare "introspection disabled" error at the field.
type noIntrospection struct{}

func (noIntrospection) ExtensionName() string                   { return "NoIntrospection" }
func (noIntrospection) Validate(graphql.ExecutableSchema) error { return nil }
func (noIntrospection) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	var found bool
	eachRootField(oc, func(f *ast.Field) { found = found || f.Name == "__schema" || f.Name == "__type" })
	if found {
		return &gqlerror.Error{
			Message:    "Introspection is disabled on this server.",
			Extensions: map[string]any{"code": apierr.CodeIntrospectionDisabled},
		}
	}
	return nil
}

// linkIDsLimit refuses, before execution, a links(ids:) longer than max,
// literal or through a variable.
type linkIDsLimit struct{ max int }

func (linkIDsLimit) ExtensionName() string                   { return "LinkIDsLimit" }
func (linkIDsLimit) Validate(graphql.ExecutableSchema) error { return nil }
func (l linkIDsLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	var over bool
	eachRootField(oc, func(f *ast.Field) {
		if f.Name == "links" {
			ids, _ := f.ArgumentMap(oc.Variables)["ids"].([]any)
			over = over || len(ids) > l.max
		}
	})
	if over {
		return &gqlerror.Error{
			Message:    fmt.Sprintf("links(ids:) takes at most %d ids.", l.max),
			Extensions: map[string]any{"code": apierr.CodeTooManyLinkIDs},
		}
	}
	return nil
}

// eachRootField calls fn for each field of the operation's root selection,
// through fragments (a depth bound stops fragment cycles, which validation
// has already refused).
func eachRootField(oc *graphql.OperationContext, fn func(*ast.Field)) {
	if oc.Operation == nil {
		return
	}
	var walk func(set ast.SelectionSet, depth int)
	walk = func(set ast.SelectionSet, depth int) {
		if depth > 16 {
			return
		}
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				fn(s)
			case *ast.InlineFragment:
				walk(s.SelectionSet, depth+1)
			case *ast.FragmentSpread:
				if f := oc.Doc.Fragments.ForName(s.Name); f != nil {
					walk(f.SelectionSet, depth+1)
				}
			}
		}
	}
	walk(oc.Operation.SelectionSet, 0)
}

// complexity prices the fields whose cost is not one: links (an upstream
// call each) and lists of accounts.
func complexity() ComplexityRoot {
	var c ComplexityRoot
	c.Query.Link = func(child int, _ string) int { return linkCost + child }
	c.Query.Links = func(child int, ids []string) int { return len(ids) * (linkCost + child) }
	c.Link.Accounts = func(child int, ids []string) int {
		if ids != nil {
			return len(ids) * child
		}
		return assumedAccounts * child
	}
	return c
}

// answerExpired makes sure a query whose context ended before execution still
// gets an error: gqlgen's handler returns no response at all then (its
// end-of-stream signal), which the transports would write as a bare null.
func answerExpired(h graphql.ResponseHandler) graphql.ResponseHandler {
	return func(ctx context.Context) *graphql.Response {
		resp := h(ctx)
		if resp == nil && ctx.Err() != nil {
			return &graphql.Response{Errors: gqlerror.List{presentError(ctx, apierr.AsError(ctx.Err()))}}
		}
		return resp
	}
}
