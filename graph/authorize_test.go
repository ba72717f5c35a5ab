package graph_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// TestAuthorizeBeforeLoading: a link the caller may not read is answered
// facade.forbidden at its own path and never reaches a loader or the
// upstream, while the links it may read are answered.
func TestAuthorizeBeforeLoading(t *testing.T) {
	forbidden := &apierr.Error{Code: apierr.CodeForbidden, Message: "You may not read this link."}
	ts := newTestServer(t, testOptions{Authorize: func(_ context.Context, id string) error {
		if id == sandbox.LinkSeed {
			return nil
		}
		return forbidden
	}})
	resp, body := ts.MustQuery(t, `{ a: link(id: "`+sandbox.LinkHousehold+`") { id }
		b: links(ids: ["`+sandbox.LinkSeed+`", "`+sandbox.LinkSparse+`", "`+sandbox.LinkSeed+`"]) { id } }`, nil)
	want := `{"a":null,"b":[{"id":"` + sandbox.LinkSeed + `"},null,{"id":"` + sandbox.LinkSeed + `"}]}`
	if string(resp.Data) != want {
		t.Errorf("data = %s, want %s", resp.Data, want)
	}
	var paths []string
	for _, e := range resp.Errors {
		if e.Extensions["code"] != apierr.CodeForbidden {
			t.Errorf("unexpected error %+v", e)
		}
		paths = append(paths, fmt.Sprint(e.Path))
	}
	slices.Sort(paths)
	if diff := cmp.Diff([]string{"[a]", "[b 1]"}, paths); diff != "" {
		t.Errorf("error paths mismatch (-want +got):\n%s\n%s", diff, body)
	}
	if ts.sbx.IdentityCallsFor(sandbox.LinkHousehold) != 0 || ts.sbx.IdentityCallsFor(sandbox.LinkSparse) != 0 {
		t.Errorf("forbidden links reached the upstream")
	}
}
