// Package apierr is the facade's one error vocabulary: the typed error every
// layer returns and every extensions.code a client can see. It imports
// nothing of this module, so the MoneyKit client, the GraphQL layer and the
// HTTP edge all build their errors from it: upstream maps HTTP answers to an
// *Error once, the GraphQL presenter and the pre-execution writer map an
// *Error to extensions once (Extensions).
package apierr

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"
)

// Error codes the facade raises itself, in the upstream's dotted style.
// Upstream error codes (link_error.*, api_error.*) are passed on verbatim.
const (
	CodeInvalidArgument     = "facade.invalid_argument"
	CodeUpstreamUnavailable = "facade.upstream_unavailable"
	CodeUpstreamTimeout     = "facade.upstream_timeout"
	CodeUpstreamBadResponse = "facade.upstream_bad_response"
	CodeInternal            = "facade.internal"
	CodeQueryTooComplex     = "facade.query_too_complex"
	CodeQueryTooLarge       = "facade.query_too_large"
	CodeBadRequest          = "facade.bad_request"

	// Codes of the facade's protections (answered before execution or at a
	// field's path).
	CodeUnauthenticated          = "facade.unauthenticated"
	CodeForbidden                = "facade.forbidden"
	CodeQueryTooDeep             = "facade.query_too_deep"
	CodeTooManyAliases           = "facade.too_many_aliases"
	CodeTooManyDirectives        = "facade.too_many_directives"
	CodeTooManyRootFields        = "facade.too_many_root_fields"
	CodeTooManyRepeats           = "facade.too_many_repeats"
	CodeTooManyTokens            = "facade.too_many_tokens"
	CodeBatchingDisabled         = "facade.batching_disabled"
	CodeCSRFRefused              = "facade.csrf_refused"
	CodePersistedQueryNotAllowed = "facade.persisted_query_not_allowed"
	CodeCallerRateLimited        = "facade.rate_limit_exceeded"
	CodeIntrospectionDisabled    = "facade.introspection_disabled"
	CodeTooManyLinkIDs           = "facade.too_many_link_ids"
	// CodePersistedQueryHashMismatch: an automatic persisted query whose
	// sha256Hash is not the hash of the query sent with it (a client bug a
	// client must tell from PERSISTED_QUERY_NOT_FOUND, which asks it to send
	// the query).
	CodePersistedQueryHashMismatch = "facade.persisted_query_hash_mismatch"

	// CodePersistedQueryNotFound is gqlgen's (and Apollo's) code for an
	// automatic persisted query sent by hash alone whose hash is unknown:
	// the client sends it again with its query.
	CodePersistedQueryNotFound = "PERSISTED_QUERY_NOT_FOUND"
	// CodeGraphQLParseFailed and CodeGraphQLValidationFailed are gqlgen's
	// codes for a document that does not parse or does not validate
	// (variable coercion included).
	CodeGraphQLParseFailed      = "GRAPHQL_PARSE_FAILED"
	CodeGraphQLValidationFailed = "GRAPHQL_VALIDATION_FAILED"

	// CodeRateLimitExceeded is MoneyKit's own code for a 429.
	CodeRateLimitExceeded = "api_error.rate_limit_exceeded"
	// CodeExpiredAccessToken is MoneyKit's code for a token that must be renewed.
	CodeExpiredAccessToken = "api_error.auth.expired_access_token"
	// CodeUnauthorized is MoneyKit's code for bad client credentials.
	CodeUnauthorized = "api_error.auth.unauthorized"
)

// messages are the fixed texts of the facade's own failure codes, so that no
// internal detail (addresses, raw bodies, Go errors) ever reaches a client.
var messages = map[string]string{
	CodeInvalidArgument:     "Invalid argument.",
	CodeUpstreamUnavailable: "The MoneyKit API is unavailable; try again later.",
	CodeUpstreamTimeout:     "The MoneyKit API did not answer in time; try again later.",
	CodeUpstreamBadResponse: "The MoneyKit API sent a response the facade cannot read.",
	CodeInternal:            "Internal error.",
}

// Error is the one error type of the facade: an upstream refusal (Status and
// the upstream's Code) or a failure the facade detected on the way (a
// facade.* Code). Err holds the underlying cause for server logs; it is never
// shown to clients.
type Error struct {
	Status           int           // upstream HTTP status; 0 when no answer was read
	Code             string        // upstream error_code verbatim, or a facade.* code
	Message          string        // safe to show to clients
	DocumentationURL string        // upstream documentation_url
	LinkErrorCode    string        // upstream link_error_code (422)
	RetryAfter       time.Duration // when to come back (a 429's Retry-After, a local budget)
	HasRetryAfter    bool          // RetryAfter is known
	RetryAfterSlack  time.Duration // how much later than RetryAfter the wait may really end: 1 s for an HTTP-date, whose resolution is a second
	Err              error         // cause, for logs only
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Code)
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may succeed.
func (e *Error) Temporary() bool {
	switch e.Code {
	case CodeUpstreamUnavailable, CodeUpstreamTimeout, CodeRateLimitExceeded:
		return true
	}
	return false
}

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up, as
// extensions.retryAfter and the Retry-After header give it.
func (e *Error) RetryAfterSeconds() int { return int(math.Ceil(e.RetryAfter.Seconds())) }

// Extensions is the contract of error extensions: code always; status when
// an upstream answer was read; documentationUrl when given; linkErrorCode on
// a 422; retryAfter (whole seconds, rounded up) when the error says when to
// come back.
func (e *Error) Extensions() map[string]any {
	ext := map[string]any{"code": e.Code}
	if e.Status != 0 {
		ext["status"] = e.Status
	}
	if e.DocumentationURL != "" {
		ext["documentationUrl"] = e.DocumentationURL
	}
	if e.Status == http.StatusUnprocessableEntity && e.LinkErrorCode != "" {
		ext["linkErrorCode"] = e.LinkErrorCode
	}
	if e.HasRetryAfter {
		ext["retryAfter"] = e.RetryAfterSeconds()
	}
	return ext
}

// New returns an error of one of the facade's failure codes with its fixed
// message.
func New(code string, status int, cause error) *Error {
	return &Error{Status: status, Code: code, Message: messages[code], Err: cause}
}

// InvalidArgument returns a facade.invalid_argument error with a message
// that is safe to show (it must not echo hostile input at length).
func InvalidArgument(msg string) *Error {
	return &Error{Code: CodeInvalidArgument, Message: msg}
}

// TooComplex returns a facade.query_too_complex error: the request asks for
// more than one request may cost.
func TooComplex(msg string) *Error {
	return &Error{Code: CodeQueryTooComplex, Message: msg}
}

// AsError returns err as an *Error, turning context errors into timeouts and
// anything else into facade.internal.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return New(CodeUpstreamTimeout, 0, err)
	}
	return New(CodeInternal, 0, err)
}
