package graph_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestLinksTooMany(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		max  int
		n    int
	}{
		{"default max 100", 0, 101},
		{"configured max 3", 3, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, testOptions{MaxLinkIDs: tt.max})
			ids := make([]string, tt.n)
			for i := range ids {
				ids[i] = fmt.Sprintf("mk_sandbox_%d", i)
			}
			resp, body := ts.MustQuery(t, `query($ids: [ID!]!) { links(ids: $ids) { id } }`, map[string]any{"ids": ids})
			if len(resp.Errors) != 1 {
				t.Fatalf("errors = %s, want one", body)
			}
			// Refused before execution: no path.
			e := resp.Errors[0]
			if diff := cmp.Diff(ext(apierr.CodeTooManyLinkIDs, 0), e.Extensions); diff != "" {
				t.Errorf("extensions mismatch (-want +got):\n%s", diff)
			}
			if e.Path != nil {
				t.Errorf("path = %v, want none (refused before execution)", e.Path)
			}
			if string(resp.Data) != "null" {
				t.Errorf("data = %s, want null (links is non-null)", resp.Data)
			}
			if got := ts.sbx.IdentityCalls(); got != 0 {
				t.Errorf("upstream calls = %d, want 0", got)
			}
			// One fewer is accepted.
			resp, body = ts.MustQuery(t, `query($ids: [ID!]!) { links(ids: $ids) { id } }`, map[string]any{"ids": ids[:tt.n-1]})
			for _, e := range resp.Errors {
				if e.Extensions["code"] != "link_error.not_found" {
					t.Errorf("%d ids: unexpected error %+v", tt.n-1, e)
				}
			}
			if len(resp.Errors) != tt.n-1 {
				t.Errorf("%d ids: %d errors, want %d not_found: %.300s", tt.n-1, len(resp.Errors), tt.n-1, body)
			}
		})
	}
}

// TestRequestLimits: a request cannot cost more than its budgets, however it
// is written: the complexity limit refuses before any upstream call, the
// distinct-link and account budgets refuse at the path that overspends.
func TestRequestLimits(t *testing.T) {
	aliases := func(n int, id func(i int) string, sel string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, " a%d: link(id: %q) { %s }", i, id(i), sel)
		}
		b.WriteString(" }")
		return b.String()
	}
	copyID := func(i int) string { return sandbox.LinkCopyPrefix + strconv.Itoa(i) }
	large := func(int) string { return sandbox.LinkLarge }
	tests := []struct {
		name       string
		opts       testOptions
		query      string
		wantErrors int // errors with code facade.query_too_complex
		wantCalls  int
		wantData   bool
	}{
		{"5000 aliases of the large link: refused before execution",
			testOptions{}, aliases(5000, large, "accounts { id name owners { names } }"), 1, 0, false},
		{"complexity limit configurable",
			testOptions{MaxComplexity: 50}, aliases(5, copyID, "id accounts { id }"), 1, 0, false},
		{"distinct links over the budget",
			testOptions{MaxLinks: 3}, aliases(5, copyID, "id"), 2, 3, true},
		{"the same link many times costs one link of the budget",
			testOptions{MaxLinks: 1}, aliases(5, func(int) string { return sandbox.LinkSeed }, "id"), 0, 1, true},
		{"accounts over the budget",
			testOptions{MaxAccounts: 1000}, aliases(3, large, "accounts { id }"), 1, 1, true},
		{"accounts narrowed fit the budget",
			testOptions{MaxAccounts: 1000}, aliases(3, large, `accounts(ids: ["acc_large_0001"]) { id }`), 0, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, tt.opts)
			resp, _ := ts.MustQuery(t, tt.query, nil)
			n := 0
			for _, e := range resp.Errors {
				if e.Extensions["code"] == "facade.query_too_complex" {
					n++
				} else {
					t.Errorf("unexpected error %+v", e)
				}
			}
			if n != tt.wantErrors {
				t.Errorf("facade.query_too_complex errors = %d, want %d", n, tt.wantErrors)
			}
			if got := ts.sbx.IdentityCalls(); got != tt.wantCalls {
				t.Errorf("upstream calls = %d, want %d", got, tt.wantCalls)
			}
			if hasData := len(resp.Data) > 0 && string(resp.Data) != "null"; hasData != tt.wantData {
				t.Errorf("data present = %v, want %v: %.200s", hasData, tt.wantData, resp.Data)
			}
		})
	}
}
