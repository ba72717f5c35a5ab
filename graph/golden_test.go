package graph_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// allFieldsQuery selects every field of the schema.
const allFieldsQuery = `query AllFields($id: ID!) {
  link(id: $id) { ...LinkFields }
}

fragment LinkFields on Link {
  id
  institutionId
  institutionName
  institutionAvatar
  state
  errorCode
  provider
  tags
  webhook
  products {
    accounts { ...Status }
    accountNumbers { ...Status }
    identity { ...Status }
    transactions { ...Status }
    investments { ...Status }
    enrichment { ...Status }
  }
  availableProducts
  accounts {
    id
    type
    name
    nickname
    mask
    balances { currency available current limit balanceDate }
    originalId
    closed
    owners {
      names
      addresses { street city region postalCode country primary }
      phoneNumbers { number type primary }
      emails { address primary }
    }
  }
}

fragment Status on ProductStatus {
  refreshedAt
  lastAttemptedAt
  errorCode
  errorMessage
  unavailable
  lastEnriched
}
`

// canonical re-indents a response with its data in response order and its
// errors sorted by path, so that golden files do not depend on the order in
// which concurrent resolvers failed.
func canonical(tb testing.TB, body []byte) []byte {
	tb.Helper()
	var resp struct {
		Data       json.RawMessage   `json:"data"`
		Errors     []json.RawMessage `json:"errors,omitempty"`
		Extensions json.RawMessage   `json:"extensions,omitempty"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		tb.Fatalf("decode response %s: %v", body, err)
	}
	key := func(raw json.RawMessage) string {
		var e struct {
			Path    []any  `json:"path"`
			Message string `json:"message"`
		}
		json.Unmarshal(raw, &e)
		var b strings.Builder
		for _, p := range e.Path {
			if f, ok := p.(float64); ok {
				fmt.Fprintf(&b, "/%08d", int(f))
			} else {
				fmt.Fprintf(&b, "/%v", p)
			}
		}
		return b.String() + "\x00" + e.Message
	}
	slices.SortStableFunc(resp.Errors, func(a, b json.RawMessage) int { return strings.Compare(key(a), key(b)) })
	out, err := json.MarshalIndent(resp, "", "  ")
	if err != nil {
		tb.Fatalf("indent: %v", err)
	}
	return append(out, '\n')
}

// MustMatchGolden compares got with testdata/name.golden, or rewrites the
// file under -update.
func MustMatchGolden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		tb.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

func TestGoldenFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, id string }{
		{"link_seed", sandbox.LinkSeed},
		{"link_household", sandbox.LinkHousehold},
		{"link_sparse", sandbox.LinkSparse},
		{"link_international", sandbox.LinkInternational},
		{"link_novel", sandbox.LinkNovel},
	}
	ts := newTestServer(t, testOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := ts.post(t, allFieldsQuery, map[string]any{"id": tt.id})
			if status != http.StatusOK {
				t.Errorf("HTTP status = %d, want 200", status)
			}
			resp := mustDecode(t, body)
			if len(resp.Errors) != 0 {
				t.Errorf("errors = %+v, want none", resp.Errors)
			}
			MustMatchGolden(t, tt.name, canonical(t, body))
		})
	}
}

// errorIDs are the sandbox's magic error ids plus an unknown one.
var errorIDs = []string{
	sandbox.LinkUnauthorized,
	sandbox.LinkForbidden,
	sandbox.LinkDeleted,
	sandbox.LinkBadState,
	sandbox.LinkRateLimited,
	sandbox.LinkServerError,
	sandbox.LinkUnavailable,
	"mk_sandbox_no_such_link",
}

func TestGoldenErrors(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, testOptions{})
	ids := append(slices.Clone(errorIDs), sandbox.LinkSeed, "..", sandbox.LinkDeleted)
	status, body := ts.post(t, `query Errors($ids: [ID!]!) { links(ids: $ids) { id state } }`, map[string]any{"ids": ids})
	if status != http.StatusOK {
		t.Errorf("HTTP status = %d, want 200", status)
	}
	MustMatchGolden(t, "links_errors", canonical(t, body))

	resp := mustDecode(t, body)
	var data struct{ Links []*struct{ ID string } }
	if err := json.Unmarshal(resp.Data, &data); err != nil {
		t.Fatal(err)
	}
	if len(data.Links) != len(ids) {
		t.Fatalf("links has %d entries, want %d (one per id)", len(data.Links), len(ids))
	}
	// Every id but LinkSeed fails, each with its own error at its index.
	var gotPaths, wantPaths []string
	for i, id := range ids {
		if id == sandbox.LinkSeed {
			if data.Links[i] == nil || data.Links[i].ID != id {
				t.Errorf("links[%d] = %v, want %s", i, data.Links[i], id)
			}
			continue
		}
		if data.Links[i] != nil {
			t.Errorf("links[%d] (%s) = %+v, want null", i, id, data.Links[i])
		}
		wantPaths = append(wantPaths, fmt.Sprint([]any{"links", float64(i)}))
	}
	for _, e := range resp.Errors {
		gotPaths = append(gotPaths, fmt.Sprint(e.Path))
	}
	slices.Sort(gotPaths)
	slices.Sort(wantPaths)
	if diff := cmp.Diff(wantPaths, gotPaths); diff != "" {
		t.Errorf("error paths mismatch (-want +got):\n%s", diff)
	}
	if got := ts.sbx.IdentityCallsFor(sandbox.LinkDeleted); got != 1 {
		t.Errorf("calls for repeated %s = %d, want 1", sandbox.LinkDeleted, got)
	}
	if got := ts.sbx.IdentityCallsFor(".."); got != 0 {
		t.Errorf("calls for invalid id = %d, want 0", got)
	}
}
