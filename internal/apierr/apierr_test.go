package apierr_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

// TestExtensions pins the contract of error extensions, the same for
// executed operations and pre-execution refusals: linkErrorCode only on a
// 422, retryAfter on any error that said when (0 included), status only when
// an upstream answer was read.
func TestExtensions(t *testing.T) {
	tests := []struct {
		name string
		in   apierr.Error
		want map[string]any
	}{
		{"404", apierr.Error{Status: 404, Code: "link_error.not_found", DocumentationURL: "https://d", LinkErrorCode: "odd"},
			map[string]any{"code": "link_error.not_found", "status": 404, "documentationUrl": "https://d"}},
		{"422", apierr.Error{Status: 422, Code: "link_error.bad_state", LinkErrorCode: "auth_expired"},
			map[string]any{"code": "link_error.bad_state", "status": 422, "linkErrorCode": "auth_expired"}},
		{"429 rate limit", apierr.Error{Status: 429, Code: apierr.CodeRateLimitExceeded, RetryAfter: 1500 * time.Millisecond, HasRetryAfter: true},
			map[string]any{"code": apierr.CodeRateLimitExceeded, "status": 429, "retryAfter": 2}},
		{"429 other code", apierr.Error{Status: 429, Code: "api_error.product_refresh_too_soon", RetryAfter: time.Minute, HasRetryAfter: true},
			map[string]any{"code": "api_error.product_refresh_too_soon", "status": 429, "retryAfter": 60}},
		{"429 Retry-After 0", apierr.Error{Status: 429, Code: apierr.CodeRateLimitExceeded, HasRetryAfter: true},
			map[string]any{"code": apierr.CodeRateLimitExceeded, "status": 429, "retryAfter": 0}},
		{"429 without Retry-After", apierr.Error{Status: 429, Code: apierr.CodeRateLimitExceeded},
			map[string]any{"code": apierr.CodeRateLimitExceeded, "status": 429}},
		{"caller limit (no upstream answer)", apierr.Error{Code: apierr.CodeCallerRateLimited, RetryAfter: 3 * time.Second, HasRetryAfter: true},
			map[string]any{"code": apierr.CodeCallerRateLimited, "retryAfter": 3}},
		{"facade error without an answer", apierr.Error{Code: apierr.CodeUpstreamTimeout},
			map[string]any{"code": apierr.CodeUpstreamTimeout}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tt.in.Extensions()); diff != "" {
			t.Errorf("%s: extensions mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
}
