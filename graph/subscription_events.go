package graph

import (
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream/cache"
)

// eventScope holds, for one subscription, the loaders of the event being
// answered: fresh for each event (no event reads another's answer), shared
// by the selections of one event, given back once its answer is built.
type eventScope struct {
	mu  sync.Mutex
	cur *loader.Loaders
}

type eventScopeKey struct{}

// withEventLoaders returns ctx with the current event's loaders, made from
// f when the event has none yet. Outside a subscription it returns ctx.
func withEventLoaders(ctx context.Context, f *loader.Factory) context.Context {
	s, _ := ctx.Value(eventScopeKey{}).(*eventScope)
	if s == nil || f == nil {
		return ctx
	}
	s.mu.Lock()
	if s.cur == nil {
		s.cur = f.New()
	}
	l := s.cur
	s.mu.Unlock()
	return loader.NewContext(ctx, l)
}

// releaseEvent gives back the loaders of the event just answered.
func releaseEvent(ctx context.Context) {
	s, _ := ctx.Value(eventScopeKey{}).(*eventScope)
	if s == nil {
		return
	}
	s.mu.Lock()
	l := s.cur
	s.cur = nil
	s.mu.Unlock()
	if l != nil {
		l.Release()
	}
}

// subscriptionOperations gives each subscription its event scope and each
// of its events a fresh cache.Served (read by the response extensions), and
// refuses queries and mutations over a WebSocket: those are HTTP's, under
// its CSRF rules, rate limits and timeouts.
func subscriptionOperations(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation == nil {
		return next(ctx)
	}
	if oc.Operation.Operation == ast.Subscription {
		events := next(context.WithValue(ctx, eventScopeKey{}, &eventScope{}))
		return func(ctx context.Context) *graphql.Response {
			// Each event its own record of how its answers were served:
			// one served stale marks that event's extensions only, not the
			// later events of this subscription nor the other
			// subscriptions of the connection (whose request, the upgrade
			// or the SSE stream, has one record for all).
			ctx, _ = cache.WithServed(ctx)
			return events(ctx)
		}
	}
	if c := streamConnFrom(ctx); c != nil && c.ws {
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{{
			Message:    "Only subscriptions are served over WebSocket: send queries and mutations with POST.",
			Extensions: map[string]any{"code": apierr.CodeBadRequest},
		}}})
	}
	return next(ctx)
}
