package graph

import (
	"context"
	"errors"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/rs/zerolog"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/obs/reqlog"
)

// gqlgenComplexityCode is the code gqlgen's complexity limit sets; the
// facade answers facade.query_too_complex instead, like its own budgets.
const gqlgenComplexityCode = "COMPLEXITY_LIMIT_EXCEEDED"

// presentError is the one place where errors become GraphQL errors. Typed
// upstream and facade errors get their code, status and details in
// extensions; gqlgen's own parse and validation errors pass unchanged; any
// other error is facade.internal with a fixed message, logged server side.
func presentError(ctx context.Context, err error) *gqlerror.Error {
	var path ast.Path
	var locations []gqlerror.Location
	gqlErr, isGQL := errors.AsType[*gqlerror.Error](err)
	if isGQL {
		if gqlErr.Err == nil {
			// gqlgen's own error (parse, validation, null bubbling).
			code, _ := gqlErr.Extensions["code"].(string)
			if code == gqlgenComplexityCode {
				code = apierr.CodeQueryTooComplex
				gqlErr.Extensions["code"] = code
			}
			reqlog.From(ctx).AddCode(code)
			return gqlErr
		}
		path, locations = gqlErr.Path, gqlErr.Locations
	}

	e, ok := errors.AsType[*apierr.Error](err)
	if !ok {
		e = apierr.AsError(err)
	}
	logCause(ctx, e, err, ok)
	reqlog.From(ctx).AddCode(e.Code)
	if path == nil {
		path = graphql.GetPath(ctx)
	}
	return &gqlerror.Error{
		Message:    e.Message,
		Path:       path,
		Locations:  locations,
		Extensions: e.Extensions(),
		Err:        err,
	}
}

// logCause logs what clients are not told: internal errors at error level,
// the cause of an upstream failure (a status, a decoder or network error,
// never a body) at warn, so operators can see why the upstream failed.
func logCause(ctx context.Context, e *apierr.Error, err error, typed bool) {
	var ev *zerolog.Event
	switch {
	case e.Code == apierr.CodeInternal:
		ev = zerolog.Ctx(ctx).Error()
	case strings.HasPrefix(e.Code, "facade.upstream_"):
		ev = zerolog.Ctx(ctx).Warn().Int("status", e.Status)
	default:
		return
	}
	ev = ev.Str("code", e.Code)
	if e.Err != nil {
		ev = ev.Str("error", e.Err.Error())
	} else if !typed {
		ev = ev.Str("error", err.Error())
	}
	ev.Msg("request failed")
}

// addIndexErrors reports errs[i] at index i of the current list field, so
// that one failing entry of links(ids:) is null with its own error while the
// others are answered.
func addIndexErrors(ctx context.Context, errs []error) {
	fc := graphql.GetFieldContext(ctx)
	for i, err := range errs {
		if err == nil {
			continue
		}
		ge := &gqlerror.Error{Err: err, Message: err.Error(), Path: append(fc.Path(), ast.PathIndex(i))}
		if pos := fc.Field.Position; pos != nil {
			ge.Locations = []gqlerror.Location{{Line: pos.Line, Column: pos.Column}}
		}
		graphql.AddError(ctx, ge)
	}
}

// errPanic is what a client sees of a panic: nothing but the code.
var errPanic = &apierr.Error{Code: apierr.CodeInternal, Message: "Internal error."}

// recoverPanic logs a resolver panic and returns a fixed error.
func recoverPanic(ctx context.Context, p any) error {
	reqlog.LogPanic(zerolog.Ctx(ctx), p, "panic in resolver")
	return errPanic
}
