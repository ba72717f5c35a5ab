package upstream_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestGetIdentityPathEscaping(t *testing.T) {
	tests := []struct {
		id       string
		wantPath string // escaped path the server must see
	}{
		{"mk_eqkWN34UEoa2NxyALG8pcV", "/links/mk_eqkWN34UEoa2NxyALG8pcV/identity"},
		{"a/b", "/links/a%2Fb/identity"},
		{"../auth/token", "/links/..%2Fauth%2Ftoken/identity"},
		{"./x", "/links/.%2Fx/identity"},
		{"x?y=1", "/links/x%3Fy=1/identity"},
		{"x#y", "/links/x%23y/identity"},
		{"%2e%2e", "/links/%252e%252e/identity"},
		{"%2F", "/links/%252F/identity"},
		{"mk_ü", "/links/mk_%C3%BC/identity"},
		{"a b", "/links/a%20b/identity"},
		{"a;b", "/links/a%3Bb/identity"},
		{`a\b`, "/links/a%5Cb/identity"},
		{"...", "/links/.../identity"},
		// Ids ValidateLinkID refuses, should a caller skip it: still one
		// segment, escaped.
		{"mk_a\nb", "/links/mk_a%0Ab/identity"},
		{"mk_\x00", "/links/mk_%00/identity"},
		{"mk_\x7f", "/links/mk_%7F/identity"},
		{"mk_\u0085", "/links/mk_%C2%85/identity"},
		{"mk_\xff", "/links/mk_%FF/identity"},
		{"../../x\r\n", "/links/..%2F..%2Fx%0D%0A/identity"},
		{strings.Repeat("a", upstream.MaxLinkIDLen+1), "/links/" + strings.Repeat("a", upstream.MaxLinkIDLen+1) + "/identity"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			f := newFakeUpstream(t, fakeOptions{})
			c := MustNewClient(t, f.URL, upstream.Config{})
			if _, err := c.GetIdentity(t.Context(), tt.id); err != nil {
				t.Fatalf("GetIdentity(ctx, %q): %v, want nil", tt.id, err)
			}
			var identity []recordedRequest
			for _, r := range f.Requests() {
				if r.EscapedPath != "/auth/token" {
					identity = append(identity, r)
				}
			}
			if len(identity) != 1 {
				t.Fatalf("GetIdentity(ctx, %q) made %d identity requests, want 1: %+v", tt.id, len(identity), identity)
			}
			r := identity[0]
			if r.EscapedPath != tt.wantPath || r.RawQuery != "" || r.Method != http.MethodGet {
				t.Errorf("GetIdentity(ctx, %q) requested %s %s?%s, want GET %s with no query", tt.id, r.Method, r.EscapedPath, r.RawQuery, tt.wantPath)
			}
			// The {id} is exactly one segment and unescapes to the id.
			segment, ok := strings.CutPrefix(r.EscapedPath, "/links/")
			segment, ok2 := strings.CutSuffix(segment, "/identity")
			got, err := url.PathUnescape(segment)
			if !ok || !ok2 || strings.Contains(segment, "/") || err != nil || got != tt.id {
				t.Errorf("GetIdentity(ctx, %q): path segment %q unescapes to %q (%v), want one segment holding the id", tt.id, segment, got, err)
			}
		})
	}
}

// TestGetIdentityPathEscapingSandbox sends hostile ids to the sandbox, which
// routes on the escaped path: each must reach the identity route (an unknown
// link there), never the token route or a 404 route error.
func TestGetIdentityPathEscapingSandbox(t *testing.T) {
	sb, srv := MustSandbox(t, sandbox.Options{})
	c := MustNewClient(t, srv.URL, upstream.Config{})
	if _, err := c.GetIdentity(t.Context(), sandbox.LinkSeed); err != nil { // fetches the token
		t.Fatalf("GetIdentity(ctx, %q): %v, want nil", sandbox.LinkSeed, err)
	}
	for _, id := range []string{"a/b", "../auth/token", "..%2Fauth%2Ftoken", "x?y=1", "x#y", "%2e%2e", "mk_ü", "../../links/" + sandbox.LinkSeed} {
		sb.Reset()
		_, err := c.GetIdentity(t.Context(), id)
		e := MustAsError(t, err)
		if e.Code != "link_error.not_found" || e.Status != http.StatusNotFound {
			t.Errorf("GetIdentity(ctx, %q): %v, want link_error.not_found (HTTP 404)", id, err)
		}
		if got := sb.IdentityCallsFor(id); got != 1 {
			t.Errorf("GetIdentity(ctx, %q): the sandbox saw %d identity calls for the id, want 1", id, got)
		}
		if got := sb.TokenCalls(); got != 0 {
			t.Errorf("GetIdentity(ctx, %q): %d token calls, want 0 (token cached)", id, got)
		}
	}
}

func TestValidateLinkID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		ok   bool
	}{
		{"example", "mk_eqkWN34UEoa2NxyALG8pcV", true},
		{"128 bytes", strings.Repeat("a", upstream.MaxLinkIDLen), true},
		{"unicode", "mk_ü", true},
		{"three dots", "...", true},
		{"slash", "a/b", true},
		{"empty", "", false},
		{"129 bytes", strings.Repeat("a", upstream.MaxLinkIDLen+1), false},
		{"129 bytes ending in a 2-byte rune", strings.Repeat("a", upstream.MaxLinkIDLen-1) + "ü", false},
		{"newline", "mk_a\nb", false},
		{"carriage return", "mk_a\r", false},
		{"tab", "mk\ta", false},
		{"NUL", "mk_\x00", false},
		{"DEL", "mk_\x7f", false},
		{"escape", "mk_\x1b[31m", false},
		{"U+0085 NEL", "mk_\u0085", false},
		{"U+009B CSI", "mk_\u009b", false},
		{"invalid UTF-8", "mk_\xff", false},
		{"truncated UTF-8", "mk_\xc3", false},
		{"overlong encoding", "mk_\xc0\xaf", false},
		{"dot", ".", false},
		{"dot dot", "..", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := upstream.ValidateLinkID(tt.id)
			if tt.ok {
				if err != nil {
					t.Errorf("ValidateLinkID(%q): %v, want nil", tt.id, err)
				}
				return
			}
			e := MustAsError(t, err)
			if e.Code != apierr.CodeInvalidArgument || e.Status != 0 {
				t.Errorf("ValidateLinkID(%q): %v, want %s", tt.id, err, apierr.CodeInvalidArgument)
			}
			if len(e.Message) > 100 || (len(tt.id) > 3 && strings.Contains(e.Message, tt.id)) {
				t.Errorf("ValidateLinkID(%q).Message = %q, want a short message that does not echo the id", tt.id, e.Message)
			}
		})
	}
}

// TestGetIdentityDotSegments: GetIdentity does not validate ids (the
// resolvers do, where they enter), but the ids PathEscape would leave as a
// segment a proxy could resolve to another path are refused before any HTTP
// exchange, token included.
func TestGetIdentityDotSegments(t *testing.T) {
	for _, id := range []string{"", ".", ".."} {
		t.Run(id, func(t *testing.T) {
			f := newFakeUpstream(t, fakeOptions{})
			var calls []upstream.Call
			c := MustNewClient(t, f.URL, upstream.Config{Observer: func(_ context.Context, c upstream.Call) { calls = append(calls, c) }})
			_, err := c.GetIdentity(t.Context(), id)
			if e := MustAsError(t, err); e.Code != apierr.CodeInvalidArgument {
				t.Errorf("GetIdentity(ctx, %q): %v, want %s", id, err, apierr.CodeInvalidArgument)
			}
			if n := len(f.Requests()); n != 0 || len(calls) != 0 {
				t.Errorf("GetIdentity(ctx, %q) made %d HTTP requests (%d observed), want 0", id, n, len(calls))
			}
		})
	}
}
