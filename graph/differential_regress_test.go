package graph

import (
	"testing"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// TestExecutorsAgreeRegressions are the differences the differential tests
// found, each as the request that showed it.
func TestExecutorsAgreeRegressions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  diffConfig
		req  diffRequest
		want string // the answer both must give
	}{
		{
			// A panic in a root resolver (here Authorize's): gqlgen reports
			// it without a location (graphql.ErrorOnPath); the plan added
			// the field's.
			name: "panic in link(id:) has no location",
			cfg:  diffMain,
			req:  diffRequest{Query: `{ link(id: "` + diffAuthPanic + `") { id } ok: link(id: "` + sandbox.LinkSeed + `") { id } }`},
			want: `{"errors":[{"message":"Internal error.","path":["link"],"extensions":{"code":"facade.internal"}}],"data":{"link":null,"ok":{"id":"` + sandbox.LinkSeed + `"}}}`,
		},
		{
			name: "panic in links(ids:) has no location",
			cfg:  diffMain,
			req:  diffRequest{Query: `{ links(ids: ["` + sandbox.LinkSeed + `", "` + diffAuthPanic + `"]) { id } }`},
			want: `{"errors":[{"message":"Internal error.","path":["links"],"extensions":{"code":"facade.internal"}}],"data":null}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newDiffPair(t, tt.cfg)
			if _, covered := p.check(t, tt.req, nil); covered != diffPlanned {
				t.Errorf("covered = %d, want the plan to run it", covered)
			}
			if got := serveDiff(t, p.plan, tt.req).body; string(got) != tt.want {
				t.Errorf("answer\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
