// Package httperr answers a request with a GraphQL error document before (or
// instead of) execution: body limits, operation limits, authentication,
// CSRF, rate limits. Every such answer has the same shape as the errors of
// an executed query, and its code is recorded for the access log.
package httperr

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"

	"github.com/mkgraph/mkgraph/graph/reqlog"
	"github.com/mkgraph/mkgraph/upstream"
)

// Write answers status with e as the only error: message, and extensions
// with the code (and retryAfter, with a Retry-After header, when e says when
// to come back).
func Write(w http.ResponseWriter, r *http.Request, status int, e *upstream.Error) {
	reqlog.From(r.Context()).AddCode(e.Code)
	ext := map[string]any{"code": e.Code}
	if e.HasRetryAfter {
		secs := int(math.Ceil(e.RetryAfter.Seconds()))
		ext["retryAfter"] = secs
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"errors": []any{map[string]any{"message": e.Message, "extensions": ext}},
		"data":   nil,
	})
}
