package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/mkgraph/mkgraph/graph/limits"
	"github.com/mkgraph/mkgraph/internal/apierr"
)

// operationLimits holds every operation to the operation limits
// (graph/limits) and, on a WebSocket, charges each subscribe message to
// its caller's rate limit, before gqlgen parses anything. HTTP requests
// cross the limits and rate-limit middleware first, which marks them
// (limits.Checked): they are not checked or charged again. A WebSocket's
// subscribe messages cross no middleware (the upgrade request, which
// carries no operation, did), so this is where they are held to both.
//
// It runs first among the parameter mutators, before the persisted query
// extensions, so that it sees what the HTTP middleware sees: the query as
// sent (none for a hash, whose text was checked when it was registered).
type operationLimits struct {
	guard *limits.Guard
	// charge takes one request from the WebSocket caller's rate limit; it
	// returns the refusal (facade.rate_limit_exceeded), or nil.
	charge func(ctx context.Context) error
}

func init() {
	// A WebSocket subscribe refused by these gets an "error" message for
	// its id, as one that fails validation does (gqlgen answers errors of
	// the user kind with "next", then "complete"). The HTTP transports do
	// not read the kind: their statuses are requestStatus's.
	for _, code := range []string{
		apierr.CodeQueryTooLarge, apierr.CodeTooManyTokens, apierr.CodeQueryTooDeep,
		apierr.CodeTooManyAliases, apierr.CodeTooManyDirectives, apierr.CodeTooManyRootFields,
		apierr.CodeTooManyRepeats, apierr.CodeCallerRateLimited,
	} {
		errcode.RegisterErrorType(code, errcode.KindProtocol)
	}
}

func (operationLimits) ExtensionName() string                   { return "OperationLimits" }
func (operationLimits) Validate(graphql.ExecutableSchema) error { return nil }

func (l operationLimits) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	c := streamConnFrom(ctx)
	ws := c != nil && c.ws
	if !ws && limits.Checked(ctx) {
		return nil // the HTTP middleware checked it, and charged it
	}
	if l.guard != nil && p.Query != "" {
		if e := l.guard.Check(p.Query, p.OperationName); e != nil {
			return presentError(ctx, e)
		}
	}
	if ws && l.charge != nil {
		if err := l.charge(ctx); err != nil {
			return presentError(ctx, err)
		}
	}
	return nil
}
