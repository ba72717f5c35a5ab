package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
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

	// CodeRateLimitExceeded is MoneyKit's own code for a 429.
	CodeRateLimitExceeded = "api_error.rate_limit_exceeded"
	// CodeExpiredAccessToken is MoneyKit's code for a token that must be renewed.
	CodeExpiredAccessToken = "api_error.auth.expired_access_token"
	// CodeUnauthorized is MoneyKit's code for bad client credentials.
	CodeUnauthorized = "api_error.auth.unauthorized"
)

// Messages for the facade's own codes. They are fixed so that no internal
// detail (addresses, raw bodies, Go errors) ever reaches a client.
var facadeMessages = map[string]string{
	CodeInvalidArgument:     "Invalid argument.",
	CodeUpstreamUnavailable: "The MoneyKit API is unavailable; try again later.",
	CodeUpstreamTimeout:     "The MoneyKit API did not answer in time; try again later.",
	CodeUpstreamBadResponse: "The MoneyKit API sent a response the facade cannot read.",
	CodeInternal:            "Internal error.",
}

// maxMessageLen bounds an upstream error message passed on to clients.
const maxMessageLen = 1024

// Error is the one error type of this package: an upstream refusal (Status and
// the upstream's Code) or a failure the facade detected on the way (a
// facade.* Code). Err holds the underlying cause for server logs; it is never
// shown to clients.
type Error struct {
	Status           int           // upstream HTTP status; 0 when no answer was read
	Code             string        // upstream error_code verbatim, or a facade.* code
	Message          string        // safe to show to clients
	DocumentationURL string        // upstream documentation_url
	LinkErrorCode    string        // upstream link_error_code (422)
	RetryAfter       time.Duration // from Retry-After (429)
	HasRetryAfter    bool          // Retry-After was present and readable
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

// newError returns a facade error with its fixed message.
func newError(code string, status int, cause error) *Error {
	return &Error{Status: status, Code: code, Message: facadeMessages[code], Err: cause}
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
		return newError(CodeUpstreamTimeout, 0, err)
	}
	return newError(CodeInternal, 0, err)
}

// errorBody is MoneyKit's error JSON.
type errorBody struct {
	ErrorCode        string `json:"error_code"`
	ErrorMessage     string `json:"error_message"`
	DocumentationURL string `json:"documentation_url"`
	LinkErrorCode    string `json:"link_error_code"`
}

// responseError turns a non-2xx answer into an *Error: the one place where
// HTTP statuses become error codes. 5xx is always facade.upstream_unavailable
// (the upstream's body is neither shown nor logged: it may echo anything); a 4xx without MoneyKit's
// error JSON is facade.upstream_bad_response.
func responseError(status int, header http.Header, body []byte, now time.Time) *Error {
	if status >= 500 {
		return newError(CodeUpstreamUnavailable, status, fmt.Errorf("upstream HTTP %d", status))
	}
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.ErrorCode == "" {
		if err == nil {
			err = errors.New("error body without error_code")
		}
		return newError(CodeUpstreamBadResponse, status, fmt.Errorf("upstream HTTP %d: %w", status, err))
	}
	e := &Error{
		Status:           status,
		Code:             eb.ErrorCode,
		Message:          truncate(eb.ErrorMessage, maxMessageLen),
		DocumentationURL: truncate(eb.DocumentationURL, maxMessageLen),
		LinkErrorCode:    truncate(eb.LinkErrorCode, maxMessageLen),
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	if status == http.StatusTooManyRequests {
		e.RetryAfter, e.HasRetryAfter = ParseRetryAfter(header.Get("Retry-After"), now)
	}
	return e
}

// ParseRetryAfter reads a Retry-After value: delta-seconds or an HTTP-date.
// A date in the past is zero. ok is false when the value is absent or unreadable.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	if d = t.Sub(now); d < 0 {
		d = 0
	}
	return d, true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
