package graph

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream"
)

// TestExtensions pins the contract of error extensions: linkErrorCode only
// on a 422, retryAfter on any 429 that said when (0 included), status only
// when an upstream answer was read.
func TestExtensions(t *testing.T) {
	tests := []struct {
		name string
		in   upstream.Error
		want map[string]any
	}{
		{"404", upstream.Error{Status: 404, Code: "link_error.not_found", DocumentationURL: "https://d", LinkErrorCode: "odd"},
			map[string]any{"code": "link_error.not_found", "status": 404, "documentationUrl": "https://d"}},
		{"422", upstream.Error{Status: 422, Code: "link_error.bad_state", LinkErrorCode: "auth_expired"},
			map[string]any{"code": "link_error.bad_state", "status": 422, "linkErrorCode": "auth_expired"}},
		{"429 rate limit", upstream.Error{Status: 429, Code: upstream.CodeRateLimitExceeded, RetryAfter: 1500 * time.Millisecond, HasRetryAfter: true},
			map[string]any{"code": upstream.CodeRateLimitExceeded, "status": 429, "retryAfter": 2}},
		{"429 other code", upstream.Error{Status: 429, Code: "api_error.product_refresh_too_soon", RetryAfter: time.Minute, HasRetryAfter: true},
			map[string]any{"code": "api_error.product_refresh_too_soon", "status": 429, "retryAfter": 60}},
		{"429 Retry-After 0", upstream.Error{Status: 429, Code: upstream.CodeRateLimitExceeded, HasRetryAfter: true},
			map[string]any{"code": upstream.CodeRateLimitExceeded, "status": 429, "retryAfter": 0}},
		{"429 without Retry-After", upstream.Error{Status: 429, Code: upstream.CodeRateLimitExceeded},
			map[string]any{"code": upstream.CodeRateLimitExceeded, "status": 429}},
		{"facade error without an answer", upstream.Error{Code: upstream.CodeUpstreamTimeout},
			map[string]any{"code": upstream.CodeUpstreamTimeout}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, extensions(&tt.in)); diff != "" {
			t.Errorf("%s: extensions mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
}
