package upstream_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
)

// secretBody is a marker that must never reach an error's text or message.
const secretBody = "SECRET-UPSTREAM-BODY stack trace at db.internal:5432"

func TestGetIdentityErrors(t *testing.T) {
	clock := newFakeClock()
	apiError := func(status int, code, message, docs, linkErrorCode string, header ...string) func(http.ResponseWriter, *http.Request, int) {
		return func(w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, status, apiErrorJSON(code, message, docs, linkErrorCode), header...)
		}
	}
	raw := func(status int, contentType, body string) func(http.ResponseWriter, *http.Request, int) {
		return func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
			w.Write([]byte(body))
		}
	}
	const rateLimitMsg = "Rate limit exceeded. Use the value of the Retry-After header as guidance for when to retry the request."
	// 1201 bytes: byte 1024 is inside an "é", so the cut must step back to 1023.
	long := "a" + strings.Repeat("é", 600)

	tests := []struct {
		name              string
		identity          func(http.ResponseWriter, *http.Request, int)
		cfg               upstream.Config
		want              apierr.Error
		wantIdentityCalls int
		wantTokenCalls    int
	}{
		{
			name:     "401 expired token twice",
			identity: apiError(401, "api_error.auth.expired_access_token", "Access token expired", docsAuth, ""),
			want: apierr.Error{Status: 401, Code: apierr.CodeExpiredAccessToken, Message: "Access token expired",
				DocumentationURL: docsAuth},
			wantIdentityCalls: 2, wantTokenCalls: 2,
		},
		{
			name:     "401 unauthorized",
			identity: apiError(401, "api_error.auth.unauthorized", "Invalid client credentials.", docsAuth, ""),
			want: apierr.Error{Status: 401, Code: apierr.CodeUnauthorized, Message: "Invalid client credentials.",
				DocumentationURL: docsAuth},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
		{
			name:     "401 unauthorized link access",
			identity: apiError(401, "link_error.unauthorized_access", "Unauthorized link access.", docsLinkErrors, ""),
			want: apierr.Error{Status: 401, Code: "link_error.unauthorized_access", Message: "Unauthorized link access.",
				DocumentationURL: docsLinkErrors},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
		{
			name:     "403 forbidden",
			identity: apiError(403, "link_error.forbidden_action", "Accounts access not permitted", docsLinkErrors, ""),
			want: apierr.Error{Status: 403, Code: "link_error.forbidden_action", Message: "Accounts access not permitted",
				DocumentationURL: docsLinkErrors},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
		{
			name:     "404 not found",
			identity: apiError(404, "link_error.not_found", "Link not found.", docsLinkErrors, ""),
			want: apierr.Error{Status: 404, Code: "link_error.not_found", Message: "Link not found.",
				DocumentationURL: docsLinkErrors},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
		{
			name:     "410 deleted",
			identity: apiError(410, "link_error.deleted", "This link was deleted at some earlier time.", docsLinkErrors, ""),
			want: apierr.Error{Status: 410, Code: "link_error.deleted", Message: "This link was deleted at some earlier time.",
				DocumentationURL: docsLinkErrors},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
		{
			name:     "422 bad state",
			identity: apiError(422, "link_error.bad_state", "The link must be reconnected.", docsLinkErrors, "auth_expired"),
			want: apierr.Error{Status: 422, Code: "link_error.bad_state", Message: "The link must be reconnected.",
				DocumentationURL: docsLinkErrors, LinkErrorCode: "auth_expired"},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
		{
			name:     "429 Retry-After seconds",
			identity: apiError(429, "api_error.rate_limit_exceeded", rateLimitMsg, docsRateLimits, "", "Retry-After", "30"),
			want: apierr.Error{Status: 429, Code: apierr.CodeRateLimitExceeded, Message: rateLimitMsg,
				DocumentationURL: docsRateLimits, RetryAfter: 30 * time.Second, HasRetryAfter: true},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
		{
			name: "429 Retry-After HTTP-date",
			identity: apiError(429, "api_error.rate_limit_exceeded", rateLimitMsg, docsRateLimits, "",
				"Retry-After", clock.Now().Add(20*time.Second).Format(http.TimeFormat)),
			cfg: upstream.Config{Now: clock.Now},
			want: apierr.Error{Status: 429, Code: apierr.CodeRateLimitExceeded, Message: rateLimitMsg,
				DocumentationURL: docsRateLimits, RetryAfter: 20 * time.Second, HasRetryAfter: true, RetryAfterSlack: time.Second},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
		{
			name: "429 Retry-After date in the past",
			identity: apiError(429, "api_error.rate_limit_exceeded", rateLimitMsg, docsRateLimits, "",
				"Retry-After", clock.Now().Add(-time.Hour).Format(http.TimeFormat)),
			cfg: upstream.Config{Now: clock.Now, RetryBaseDelay: time.Millisecond},
			want: apierr.Error{Status: 429, Code: apierr.CodeRateLimitExceeded, Message: rateLimitMsg,
				DocumentationURL: docsRateLimits, HasRetryAfter: true, RetryAfterSlack: time.Second},
			wantIdentityCalls: 3, wantTokenCalls: 1, // retried twice
		},
		{
			name:     "429 without Retry-After",
			identity: apiError(429, "api_error.rate_limit_exceeded", rateLimitMsg, docsRateLimits, ""),
			want: apierr.Error{Status: 429, Code: apierr.CodeRateLimitExceeded, Message: rateLimitMsg,
				DocumentationURL: docsRateLimits},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
		{
			name:     "429 garbage Retry-After",
			identity: apiError(429, "api_error.rate_limit_exceeded", rateLimitMsg, docsRateLimits, "", "Retry-After", "soon"),
			want: apierr.Error{Status: 429, Code: apierr.CodeRateLimitExceeded, Message: rateLimitMsg,
				DocumentationURL: docsRateLimits},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
		{
			name:              "Retry-After ignored outside 429",
			identity:          apiError(404, "link_error.not_found", "Link not found.", docsLinkErrors, "", "Retry-After", "30"),
			want:              apierr.Error{Status: 404, Code: "link_error.not_found", Message: "Link not found.", DocumentationURL: docsLinkErrors},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
		{
			name:              "4xx without error_message",
			identity:          apiError(404, "link_error.not_found", "", "", ""),
			want:              apierr.Error{Status: 404, Code: "link_error.not_found", Message: "Not Found"},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
		{
			name:              "500 JSON",
			identity:          apiError(500, "api_error.internal", secretBody, secretBody, secretBody),
			want:              apierr.Error{Status: 500, Code: apierr.CodeUpstreamUnavailable, Message: msgUnavailable},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
		{
			name:              "502 HTML",
			identity:          raw(502, "text/html", "<html><body>"+secretBody+"</body></html>"),
			want:              apierr.Error{Status: 502, Code: apierr.CodeUpstreamUnavailable, Message: msgUnavailable},
			cfg:               upstream.Config{RetryBaseDelay: time.Millisecond},
			wantIdentityCalls: 3, wantTokenCalls: 1, // retried twice
		},
		{
			name:              "503 HTML",
			identity:          raw(503, "text/html", "<html><body>"+secretBody+"</body></html>"),
			want:              apierr.Error{Status: 503, Code: apierr.CodeUpstreamUnavailable, Message: msgUnavailable},
			cfg:               upstream.Config{RetryBaseDelay: time.Millisecond},
			wantIdentityCalls: 3, wantTokenCalls: 1, // retried twice
		},
		{
			name:              "504 empty",
			identity:          raw(504, "text/plain", ""),
			want:              apierr.Error{Status: 504, Code: apierr.CodeUpstreamUnavailable, Message: msgUnavailable},
			cfg:               upstream.Config{RetryBaseDelay: time.Millisecond},
			wantIdentityCalls: 3, wantTokenCalls: 1, // retried twice
		},
		{
			name:              "400 HTML",
			identity:          raw(400, "text/html", "<html><body>"+secretBody+"</body></html>"),
			want:              apierr.Error{Status: 400, Code: apierr.CodeUpstreamBadResponse, Message: msgBadResponse},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
		{
			name:              "404 JSON without error_code",
			identity:          raw(404, "application/json", `{"detail":"`+secretBody+`"}`),
			want:              apierr.Error{Status: 404, Code: apierr.CodeUpstreamBadResponse, Message: msgBadResponse},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
		{
			name:              "200 text/html",
			identity:          raw(200, "text/html; charset=utf-8", minimalIdentity),
			want:              apierr.Error{Status: 200, Code: apierr.CodeUpstreamBadResponse, Message: msgBadResponse},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
		{
			name:              "200 truncated JSON",
			identity:          raw(200, "application/json", minimalIdentity[:len(minimalIdentity)-5]),
			want:              apierr.Error{Status: 200, Code: apierr.CodeUpstreamBadResponse, Message: msgBadResponse},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
		{
			name:              "200 without link_id",
			identity:          raw(200, "application/json", `{"accounts":[]}`),
			want:              apierr.Error{Status: 200, Code: apierr.CodeUpstreamBadResponse, Message: msgBadResponse},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
		{
			name:              "200 larger than MaxBodyBytes",
			identity:          raw(200, "application/json", paddedIdentity(1025)),
			cfg:               upstream.Config{MaxBodyBytes: 1024},
			want:              apierr.Error{Status: 200, Code: apierr.CodeUpstreamBadResponse, Message: msgBadResponse},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
		{
			name:              "404 larger than MaxBodyBytes",
			identity:          raw(404, "application/json", apiErrorJSON("link_error.not_found", strings.Repeat("x", 2048), "", "")),
			cfg:               upstream.Config{MaxBodyBytes: 1024},
			want:              apierr.Error{Status: 404, Code: apierr.CodeUpstreamBadResponse, Message: msgBadResponse},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
		{
			name:     "long message is truncated on a rune boundary",
			identity: apiError(403, "link_error.forbidden_action", long, long, long),
			want: apierr.Error{Status: 403, Code: "link_error.forbidden_action", Message: long[:1023] + "…",
				DocumentationURL: long[:1023] + "…", LinkErrorCode: long[:1023] + "…"},
			wantIdentityCalls: 1, wantTokenCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeUpstream(t, fakeOptions{identity: tt.identity})
			c := MustNewClient(t, f.URL, tt.cfg)
			id, err := c.GetIdentity(t.Context(), "mk_test")
			if err == nil {
				t.Fatalf("GetIdentity(ctx, %q) = %+v, nil; want error %s", "mk_test", id, tt.want.Code)
			}
			e := MustAsError(t, err)
			if diff := cmp.Diff(tt.want, errorFields(e)); diff != "" {
				t.Errorf("GetIdentity(ctx, %q) error mismatch (-want +got):\n%s", "mk_test", diff)
			}
			if strings.Contains(e.Error(), "SECRET") || strings.Contains(e.Message, "SECRET") {
				t.Errorf("GetIdentity(ctx, %q) error %q (message %q) holds the upstream body", "mk_test", e.Error(), e.Message)
			}
			if !utf8.ValidString(e.Message) || !utf8.ValidString(e.Error()) {
				t.Errorf("GetIdentity(ctx, %q) error %q is not valid UTF-8", "mk_test", e.Error())
			}
			gotIdentity, gotToken := f.Counts()
			if gotIdentity != tt.wantIdentityCalls || gotToken != tt.wantTokenCalls {
				t.Errorf("GetIdentity(ctx, %q): %d identity and %d token calls, want %d and %d",
					"mk_test", gotIdentity, gotToken, tt.wantIdentityCalls, tt.wantTokenCalls)
			}
		})
	}
}

// paddedIdentity is a valid identity answer of exactly n bytes.
func paddedIdentity(n int) string {
	const head, tail = `{"accounts":[],"link":{"link_id":"mk_test","webhook":"`, `"}}`
	return head + strings.Repeat("w", n-len(head)-len(tail)) + tail
}

func TestGetIdentityBodyAtLimit(t *testing.T) {
	body := paddedIdentity(1024)
	f := newFakeUpstream(t, fakeOptions{identity: func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, http.StatusOK, body)
	}})
	c := MustNewClient(t, f.URL, upstream.Config{MaxBodyBytes: int64(len(body))})
	if _, err := c.GetIdentity(t.Context(), "mk_test"); err != nil {
		t.Errorf("GetIdentity(ctx, %q) with a body of exactly MaxBodyBytes: %v, want nil", "mk_test", err)
	}
}

func TestGetIdentityAcceptedContentTypes(t *testing.T) {
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON", "application/vnd.moneykit+json", ""} {
		// A 2xx without a Content-Type is not MoneyKit's answer (a proxy's
		// blank page, a misrouted request): refused like a wrong type.
		wantOK := ct != ""
		t.Run(ct, func(t *testing.T) {
			f := newFakeUpstream(t, fakeOptions{identity: func(w http.ResponseWriter, r *http.Request, n int) {
				if ct == "" {
					w.Header()["Content-Type"] = nil // no sniffing: no header at all
				} else {
					w.Header().Set("Content-Type", ct)
				}
				w.Write([]byte(minimalIdentity))
			}})
			c := MustNewClient(t, f.URL, upstream.Config{})
			_, err := c.GetIdentity(t.Context(), "mk_test")
			if wantOK && err != nil {
				t.Errorf("GetIdentity(ctx, %q) with Content-Type %q: %v, want nil", "mk_test", ct, err)
			}
			if !wantOK && (err == nil || MustAsError(t, err).Code != apierr.CodeUpstreamBadResponse) {
				t.Errorf("GetIdentity(ctx, %q) without a Content-Type: %v, want %s", "mk_test", err, apierr.CodeUpstreamBadResponse)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"30", 30 * time.Second, true},
		{" 30 ", 30 * time.Second, true},
		{"0", 0, true},
		{"86400", 24 * time.Hour, true},
		{now.Add(20 * time.Second).Format(http.TimeFormat), 20 * time.Second, true},
		{"Wed, 01 May 2024 12:01:00 GMT", time.Minute, true},
		{"Wednesday, 01-May-24 12:00:20 GMT", 20 * time.Second, true}, // RFC 850
		{"Wed May  1 12:00:20 2024", 20 * time.Second, true},          // ANSI C asctime
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{now.Format(http.TimeFormat), 0, true},
		{"", 0, false},
		{"   ", 0, false},
		{"soon", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"30s", 0, false},
		{"2024-05-01T12:00:20Z", 0, false},
	}
	for _, tt := range tests {
		got, ok := upstream.ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseRetryAfter(%q, %v) = %v, %v; want %v, %v", tt.in, now, got, ok, tt.want, tt.wantOK)
		}
	}
}
