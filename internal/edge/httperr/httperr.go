// Package httperr answers a request with a GraphQL error document before (or
// instead of) execution: body limits, operation limits, authentication,
// CSRF, rate limits. Every such answer has the same shape as the errors of
// an executed query, and its code is recorded for the access log.
package httperr

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/obs/reqlog"
)

// Write answers status with e as the only error: its message and
// e.Extensions() (with a Retry-After header when e says when to come back).
func Write(w http.ResponseWriter, r *http.Request, status int, e *apierr.Error) {
	reqlog.From(r.Context()).AddCode(e.Code)
	if e.HasRetryAfter {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfterSeconds()))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"errors": []any{map[string]any{"message": e.Message, "extensions": e.Extensions()}},
		"data":   nil,
	})
}
