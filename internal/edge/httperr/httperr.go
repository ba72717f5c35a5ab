// Package httperr answers a request with a GraphQL error document before (or
// instead of) execution: body limits, operation limits, authentication,
// CSRF, rate limits. Every such answer has the same shape as the errors of
// an executed query, and its code is recorded for the access log.
package httperr

import (
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/obs/reqlog"
)

// The media types of GraphQL answers (GraphQL over HTTP).
const (
	ContentTypeJSON            = "application/json"
	ContentTypeGraphQLResponse = "application/graphql-response+json"
)

// ResponseType is the media type of every /graphql answer to r:
// application/graphql-response+json when r's Accept accepts it (lists it
// with a q above 0), application/json otherwise (no Accept, */*,
// application/json, or only types the facade does not serve).
func ResponseType(r *http.Request) string {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mediaType, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || mediaType != ContentTypeGraphQLResponse {
				continue
			}
			if q, err := strconv.ParseFloat(params["q"], 64); err == nil && q <= 0 {
				continue
			}
			return ContentTypeGraphQLResponse
		}
	}
	return ContentTypeJSON
}

// Write answers status with e as the only error: its message and
// e.Extensions() (with a Retry-After header when e says when to come back).
// Under application/json the document has "data": null, as before; under
// application/graphql-response+json it has no data entry (nothing was
// executed).
func Write(w http.ResponseWriter, r *http.Request, status int, e *apierr.Error) {
	reqlog.From(r.Context()).AddCode(e.Code)
	if e.HasRetryAfter {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfterSeconds()))
	}
	contentType := ResponseType(r)
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	doc := map[string]any{
		"errors": []any{map[string]any{"message": e.Message, "extensions": e.Extensions()}},
	}
	if contentType == ContentTypeJSON {
		doc["data"] = nil
	}
	json.NewEncoder(w).Encode(doc)
}
