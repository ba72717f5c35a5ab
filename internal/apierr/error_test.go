package apierr_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

func TestErrorString(t *testing.T) {
	const msgTimeout = "The MoneyKit API did not answer in time; try again later."
	tests := []struct {
		err  *apierr.Error
		want string
	}{
		{&apierr.Error{Status: 410, Code: "link_error.deleted", Message: "This link was deleted at some earlier time."},
			"link_error.deleted (HTTP 410): This link was deleted at some earlier time."},
		{&apierr.Error{Code: apierr.CodeUpstreamTimeout, Message: msgTimeout, Err: context.DeadlineExceeded},
			"facade.upstream_timeout: " + msgTimeout + ": context deadline exceeded"},
		{&apierr.Error{Code: "x"}, "x"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("(%#v).Error() = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestErrorTemporary(t *testing.T) {
	for code, want := range map[string]bool{
		apierr.CodeUpstreamUnavailable: true,
		apierr.CodeUpstreamTimeout:     true,
		apierr.CodeRateLimitExceeded:   true,
		apierr.CodeUpstreamBadResponse: false,
		apierr.CodeInvalidArgument:     false,
		apierr.CodeInternal:            false,
		apierr.CodeExpiredAccessToken:  false,
		"link_error.not_found":         false,
	} {
		if got := (&apierr.Error{Code: code}).Temporary(); got != want {
			t.Errorf("Error{Code: %q}.Temporary() = %v, want %v", code, got, want)
		}
	}
}

func TestAsError(t *testing.T) {
	orig := &apierr.Error{Status: 404, Code: "link_error.not_found"}
	if got := apierr.AsError(fmt.Errorf("GetIdentity(%q): %w", "x", orig)); got != orig {
		t.Errorf("AsError(wrapped *Error) = %v, want the same *Error", got)
	}
	for _, tt := range []struct {
		err  error
		want string
	}{
		{context.Canceled, apierr.CodeUpstreamTimeout},
		{fmt.Errorf("wait: %w", context.DeadlineExceeded), apierr.CodeUpstreamTimeout},
		{errors.New("boom"), apierr.CodeInternal},
	} {
		got := apierr.AsError(tt.err)
		if got.Code != tt.want || !errors.Is(got, tt.err) {
			t.Errorf("AsError(%v) = %v, want code %s wrapping the cause", tt.err, got, tt.want)
		}
		if strings.Contains(got.Message, tt.err.Error()) {
			t.Errorf("AsError(%v).Message = %q, want a fixed message", tt.err, got.Message)
		}
	}
}

func TestInvalidArgument(t *testing.T) {
	e := apierr.InvalidArgument("A link id must not be empty.")
	if e.Code != apierr.CodeInvalidArgument || e.Message != "A link id must not be empty." || e.Status != 0 || e.Temporary() {
		t.Errorf("InvalidArgument(...) = %#v, want code %s with the message", e, apierr.CodeInvalidArgument)
	}
}
