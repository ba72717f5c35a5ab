package metrics

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mkgraph/mkgraph/internal/obs/label"
	"github.com/mkgraph/mkgraph/upstream"
)

// A client inventing names cannot grow the registry without bound.
func TestCardinalityCaps(t *testing.T) {
	m := New()
	h := withRecord(m.Middleware(fakeGraphQL(t, m)))
	for i := range 1000 {
		r := httptest.NewRequest("POST", fmt.Sprintf("/graphql?op=Op%d&code=facade.made_up_%d", i, i), nil)
		h.ServeHTTP(httptest.NewRecorder(), r)
		m.ObserveUpstream(upstream.Call{Endpoint: upstream.EndpointIdentity, Status: 400, Code: fmt.Sprintf("link_error.made_up_%d", i)})
	}
	for _, tc := range []struct {
		name string
		got  int
		max  int
	}{
		{"mkgraph_http_requests_total", testutil.CollectAndCount(m.requests), maxOperations + 1},
		{"mkgraph_http_request_duration_seconds", testutil.CollectAndCount(m.requestDuration), maxOperations + 1},
		{"mkgraph_graphql_errors_total", testutil.CollectAndCount(m.graphqlErrors), maxErrorCodes + 1},
		{"mkgraph_upstream_calls_total", testutil.CollectAndCount(m.upstreamCalls), maxUpstreamCodes + 1},
	} {
		if tc.got > tc.max {
			t.Errorf("%s has %d series, want at most %d", tc.name, tc.got, tc.max)
		}
	}
	// The first names keep their own series; the rest share "other".
	if got := testutil.ToFloat64(m.requests.WithLabelValues("/graphql", "Op0", "200")); got != 1 {
		t.Errorf("first operation counted %v, want 1", got)
	}
	if got, want := testutil.ToFloat64(m.requests.WithLabelValues("/graphql", Other, "200")), float64(1000-maxOperations); got != want {
		t.Errorf("operation %q counted %v, want %v", Other, got, want)
	}
	// Known names are still counted under their own label once the cap is reached.
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/graphql?op=Op1", nil))
	if got := testutil.ToFloat64(m.requests.WithLabelValues("/graphql", "Op1", "200")); got != 2 {
		t.Errorf("known operation after the cap counted %v, want 2", got)
	}
}

func TestLabelShapes(t *testing.T) {
	for _, tc := range []struct {
		s             string
		operation, cd bool
	}{
		{"GetIdentity", true, true},
		{"Profile_Screen2", true, true},
		{"_private", true, false},
		{"facade.forbidden", false, true},
		{"api_error.auth.expired_access_token", false, true},
		{"link_error.unauthorized_access", false, true},
		{"", false, false},
		{"2fast", false, false},
		{"Get?Identity", false, false},
		{"a..b", false, false},
		{"trailing.", false, false},
		{"mk_eqkWN34UEoa2NxyALG8pcV", false, false},
		{"MK_SANDBOX", false, false},
		{"eqkWN34UEoa2NxyALG8pcV", false, false},
		{"Account123456", false, false},
		{"link_error.eqkWN34UEoa2NxyALG8", false, false},
		{strings.Repeat("a", 65), false, false},
	} {
		if got := label.IsOperationName(tc.s); got != tc.operation {
			t.Errorf("isOperationName(%q) = %v, want %v", tc.s, got, tc.operation)
		}
		if got := label.IsCode(tc.s); got != tc.cd {
			t.Errorf("isCode(%q) = %v, want %v", tc.s, got, tc.cd)
		}
	}
}
