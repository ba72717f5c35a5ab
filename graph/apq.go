package graph

import (
	"context"
	"encoding/json"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

// apq is gqlgen's automatic persisted queries with the facade's codes for
// its refusals, which gqlgen answers without one: a hash that is not the
// query's (facade.persisted_query_hash_mismatch) and an extension that is
// not {"version": 1, "sha256Hash": "…"} (facade.bad_request). An unknown
// hash keeps gqlgen's (and Apollo's) PERSISTED_QUERY_NOT_FOUND and
// "PersistedQueryNotFound", which clients look for.
type apq struct {
	extension.AutomaticPersistedQuery
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = apq{}

// MutateOperationParameters implements graphql.OperationParameterMutator.
func (a apq) MutateOperationParameters(ctx context.Context, raw *graphql.RawParams) *gqlerror.Error {
	if ext, present := raw.Extensions["persistedQuery"]; present && ext != nil {
		// gqlgen's decoding is lenient (a number for the hash passes as
		// text); the facade takes only what the protocol says.
		m, _ := ext.(map[string]any)
		_, isString := m["sha256Hash"].(string)
		if !isString || !isOne(m["version"]) {
			return &gqlerror.Error{Message: msgBadAPQ, Extensions: map[string]any{"code": apierr.CodeBadRequest}}
		}
	}
	err := a.AutomaticPersistedQuery.MutateOperationParameters(ctx, raw)
	if err == nil {
		return nil
	}
	if code, _ := err.Extensions["code"].(string); code != "" {
		return err // PERSISTED_QUERY_NOT_FOUND
	}
	if err.Message == "provided APQ hash does not match query" {
		return &gqlerror.Error{Message: msgAPQHashMismatch,
			Extensions: map[string]any{"code": apierr.CodePersistedQueryHashMismatch}}
	}
	// "invalid APQ extension data", "unsupported APQ version".
	return &gqlerror.Error{Message: msgBadAPQ, Extensions: map[string]any{"code": apierr.CodeBadRequest}}
}

// isOne reports whether v is the JSON number 1, however it was decoded.
func isOne(v any) bool {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return err == nil && f == 1
	case float64:
		return n == 1
	case int:
		return n == 1
	case int64:
		return n == 1
	}
	return false
}
