package graph_test

import (
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestHostileLinkIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		id    string
		code  string
		calls int // upstream calls for id
	}{
		{"129 bytes", strings.Repeat("a", 129), apierr.CodeInvalidArgument, 0},
		{"129 bytes of runes", strings.Repeat("€", 43), apierr.CodeInvalidArgument, 0},
		{"newline", "mk_a\nb", apierr.CodeInvalidArgument, 0},
		{"tab", "mk_a\tb", apierr.CodeInvalidArgument, 0},
		{"dot dot", "..", apierr.CodeInvalidArgument, 0},
		{"dot", ".", apierr.CodeInvalidArgument, 0},
		{"empty", "", apierr.CodeInvalidArgument, 0},
		{"128 bytes", strings.Repeat("a", 128), "link_error.not_found", 1},
		{"slash", "a/b", "link_error.not_found", 1},
		{"traversal", "../" + sandbox.LinkSeed, "link_error.not_found", 1},
		{"query smuggling", sandbox.LinkSeed + "?account_ids=x", "link_error.not_found", 1},
		{"fragment", sandbox.LinkSeed + "#x", "link_error.not_found", 1},
		{"percent", "%2e%2e", "link_error.not_found", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, testOptions{})
			for _, q := range []string{
				`query($id: ID!) { link(id: $id) { id } }`,
				`query($id: ID!) { links(ids: [$id]) { id } }`,
			} {
				ts.sbx.Reset()
				resp, body := ts.MustQuery(t, q, map[string]any{"id": tt.id})
				if len(resp.Errors) != 1 {
					t.Fatalf("%s: errors = %s, want one", q, body)
				}
				if got := resp.Errors[0].Extensions["code"]; got != tt.code {
					t.Errorf("%s: code = %v, want %s", q, got, tt.code)
				}
				if got := ts.sbx.IdentityCallsFor(tt.id); got != tt.calls {
					t.Errorf("%s: upstream calls for the id = %d, want %d", q, got, tt.calls)
				}
				if got := ts.sbx.IdentityCalls(); got != tt.calls {
					t.Errorf("%s: upstream calls = %d, want %d", q, got, tt.calls)
				}
				if tt.calls > 0 && ts.sbx.LastIdentityQuery(tt.id).Has("account_ids") {
					t.Errorf("%s: the id reached the upstream's query string", q)
				}
				// The message must not echo the hostile id back at length.
				if len(tt.id) > 100 && strings.Contains(resp.Errors[0].Message, tt.id) {
					t.Errorf("%s: message echoes the id: %q", q, resp.Errors[0].Message)
				}
			}
		})
	}
}
