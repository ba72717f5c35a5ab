package upstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

// maxMessageLen bounds an upstream error message passed on to clients.
const maxMessageLen = 1024

// errorBody is MoneyKit's error JSON.
type errorBody struct {
	ErrorCode        string `json:"error_code"`
	ErrorMessage     string `json:"error_message"`
	DocumentationURL string `json:"documentation_url"`
	LinkErrorCode    string `json:"link_error_code"`
}

// responseError turns a non-2xx answer into an *apierr.Error: the one place where
// HTTP statuses become error codes. 5xx is always facade.upstream_unavailable
// (the upstream's body is neither shown nor logged: it may echo anything); a 4xx without MoneyKit's
// error JSON is facade.upstream_bad_response.
func responseError(status int, header http.Header, body []byte, now time.Time) *apierr.Error {
	if status >= 500 {
		return apierr.New(apierr.CodeUpstreamUnavailable, status, fmt.Errorf("upstream HTTP %d", status))
	}
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.ErrorCode == "" {
		if err == nil {
			err = errors.New("error body without error_code")
		}
		return apierr.New(apierr.CodeUpstreamBadResponse, status, fmt.Errorf("upstream HTTP %d: %w", status, err))
	}
	e := &apierr.Error{
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
		v := header.Get("Retry-After")
		e.RetryAfter, e.HasRetryAfter = ParseRetryAfter(v, now)
		if e.HasRetryAfter && !isDeltaSeconds(v) {
			e.RetryAfterSlack = time.Second
		}
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

// isDeltaSeconds reports whether a Retry-After value is a number of seconds
// rather than an HTTP-date.
func isDeltaSeconds(v string) bool {
	_, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	return err == nil
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
