package upstream

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

// retryAfterNow is the fixed clock of the Retry-After fuzz targets.
var retryAfterNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// FuzzParseRetryAfter checks that ParseRetryAfter never panics, never returns
// a negative duration, reads every delta-seconds value that fits in uint32
// exactly, otherwise agrees with http.ParseTime, and that responseError
// reports the same value for a 429.
func FuzzParseRetryAfter(f *testing.F) {
	now := retryAfterNow
	f.Add(now.Add(90 * time.Second).Format(http.TimeFormat))
	f.Add(now.Add(-90 * time.Second).Format(http.TimeFormat))

	f.Fuzz(func(t *testing.T, v string) {
		d, ok := ParseRetryAfter(v, now)
		if !ok && d != 0 {
			t.Errorf("ParseRetryAfter(%q) = %v, false; want 0 when not ok", v, d)
		}
		if ok && d < 0 {
			t.Errorf("ParseRetryAfter(%q) = %v, true; want a duration >= 0", v, d)
		}

		trimmed := strings.TrimSpace(v)
		if n, err := strconv.ParseUint(trimmed, 10, 32); err == nil && allDigits(trimmed) {
			if want := time.Duration(n) * time.Second; !ok || d != want {
				t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, true (delta-seconds)", v, d, ok, want)
			}
		} else if date, err := http.ParseTime(trimmed); err == nil {
			want := max(date.Sub(now), 0)
			if !ok || d != want {
				t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, true (HTTP-date %v)", v, d, ok, want, date)
			}
		} else if ok {
			t.Errorf("ParseRetryAfter(%q) = %v, true; want not ok (neither delta-seconds in uint32 nor an HTTP-date)", v, d)
		}

		// Surrounding whitespace does not matter.
		if d2, ok2 := ParseRetryAfter(" \t"+v+"\t ", now); d2 != d || ok2 != ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v but with surrounding whitespace %v, %v", v, d, ok, d2, ok2)
		}

		// A 429 carries the same value; any other status none.
		header := http.Header{}
		header.Set("Retry-After", v)
		body := []byte(`{"error_code":"api_error.rate_limit_exceeded","error_message":"Rate limit exceeded."}`)
		if e := responseError(http.StatusTooManyRequests, header, body, now); e.RetryAfter != d || e.Code != apierr.CodeRateLimitExceeded {
			t.Errorf("responseError(429, Retry-After %q) = {Code %q, RetryAfter %v}; want {%q, %v}", v, e.Code, e.RetryAfter, apierr.CodeRateLimitExceeded, d)
		}
		if e := responseError(http.StatusServiceUnavailable, header, body, now); e.RetryAfter != 0 {
			t.Errorf("responseError(503, Retry-After %q).RetryAfter = %v, want 0", v, e.RetryAfter)
		}
	})
}

// FuzzRetryAfterDate checks that an HTTP-date k seconds after now (k derived
// from the input, 0..86400) reads back as exactly k seconds, in each of the
// three date forms and as delta-seconds, from clocks whose next day crosses
// a month, a year and a leap day.
func FuzzRetryAfterDate(f *testing.F) {
	nows := []time.Time{
		retryAfterNow,
		time.Date(2024, 12, 31, 12, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 28, 23, 30, 0, 0, time.UTC),
	}
	layouts := []string{
		http.TimeFormat,                  // IMF-fixdate (RFC 1123)
		"Monday, 02-Jan-06 15:04:05 GMT", // obsolete RFC 850
		time.ANSIC,                       // asctime
	}
	f.Fuzz(func(t *testing.T, k uint32) {
		k %= 86400 + 1
		want := time.Duration(k) * time.Second
		for _, now := range nows {
			for _, layout := range layouts {
				v := now.Add(want).Format(layout)
				if d, ok := ParseRetryAfter(v, now); !ok || d != want {
					t.Errorf("ParseRetryAfter(%q, %v) = %v, %v; want %v, true", v, now, d, ok, want)
				}
			}
			v := strconv.FormatUint(uint64(k), 10)
			if d, ok := ParseRetryAfter(v, now); !ok || d != want {
				t.Errorf("ParseRetryAfter(%q, %v) = %v, %v; want %v, true", v, now, d, ok, want)
			}
		}
	})
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}
