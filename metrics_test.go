package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// TestAdminMetrics: the admin listener serves Prometheus metrics that move
// with traffic and never carry a link id; the public listener does not.
func TestAdminMetrics(t *testing.T) {
	baseURL, logs, _ := startServer(t, map[string]string{"MKGRAPH_ADMIN_ADDR": "127.0.0.1:0"})
	adminAddr := adminAddrOf(t, logs)
	c := newClient(t)
	postGraphQL(t, c, baseURL, gqlRequest{Query: `query Profile { link(id: "` + sandbox.LinkSeed + `") { id } }`, OperationName: "Profile"})
	postGraphQL(t, c, baseURL, gqlRequest{Query: `{ link(id: "mk_no_such_link_123456") { id } }`})
	r := get(t, c, "http://"+adminAddr+"/metrics")
	body := string(r.body)
	for _, want := range []string{
		`mkgraph_http_requests_total{operation="Profile",route="/graphql",status="200"} 1`,
		`mkgraph_graphql_errors_total{code="link_error.not_found"} 1`,
		`mkgraph_upstream_calls_total{code="",endpoint="identity",status="2xx"} 1`,
		`mkgraph_loader_batch_size_count`,
		`mkgraph_token_renewals_total{result="ok"} 1`,
		`mkgraph_identity_cache_total{result="miss"} 2`,
		`mkgraph_identity_cache_total{result="store"} 1`,
		`mkgraph_large_answers_waiting 0`,
		`mkgraph_large_answer_accounts_in_flight 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "mk_") {
		t.Errorf("/metrics holds a link id")
	}
	if r := get(t, c, baseURL+"/metrics"); r.status != http.StatusNotFound {
		t.Errorf("public /metrics: HTTP %d, want 404", r.status)
	}
}
