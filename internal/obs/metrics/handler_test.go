package metrics

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mkgraph/mkgraph/upstream"
)

// idLike matches what must never appear in /metrics: MoneyKit ids, the
// random part of one, and account-number-like digit runs.
var idLike = regexp.MustCompile(`mk_|eqkWN34UEoa2NxyALG8pcV|sandbox_household|12345678`)

func TestHandlerExposesNoIdentifiers(t *testing.T) {
	m := New()
	srv := newServer(t, m)
	for _, q := range []string{
		"op=mk_eqkWN34UEoa2NxyALG8pcV",
		"op=Profile_mk_sandbox_household",
		"op=eqkWN34UEoa2NxyALG8pcV",
		"op=Account12345678",
		"op=GetIdentity&code=link_error.mk_sandbox_error_401",
		"op=GetIdentity&code=mk_eqkWN34UEoa2NxyALG8pcV",
		"op=GetIdentity&code=account.12345678",
		"op=GetIdentity&code=facade.forbidden",
	} {
		mustGet(t, srv.URL+"/graphql?"+q)
	}
	m.ObserveUpstream(upstream.Call{Endpoint: upstream.EndpointIdentity, Status: 404, Code: "link_error.mk_sandbox_household"})
	m.ObserveUpstream(upstream.Call{Endpoint: "identity/mk_sandbox_household", Status: 200})
	m.Cache("mk_sandbox_household")
	m.BudgetRefused("link:mk_sandbox_household")
	m.RedisError("mkgraph:identity:mk_sandbox_household")
	m.LoaderBatch(2)
	m.TokenRenewed(true)

	admin := httptest.NewServer(m.Handler())
	defer admin.Close()
	resp, err := http.Get(admin.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body := string(b)
	for _, name := range []string{
		"mkgraph_http_requests_total",
		"mkgraph_http_request_duration_seconds",
		"mkgraph_http_requests_in_flight",
		"mkgraph_graphql_errors_total",
		"mkgraph_upstream_calls_total",
		"mkgraph_upstream_call_duration_seconds",
		"mkgraph_loader_batch_size",
		"mkgraph_identity_cache_total",
		"mkgraph_rate_budget_refusals_total",
		"mkgraph_token_renewals_total",
		"mkgraph_redis_errors_total",
		"go_goroutines",
		"process_cpu_seconds_total",
	} {
		if !strings.Contains(body, "\n# TYPE "+name+" ") {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if line := sc.Text(); idLike.MatchString(line) {
			t.Errorf("/metrics exposes an identifier: %s", line)
		}
	}
	if !strings.Contains(body, `code="facade.forbidden"`) {
		t.Error(`/metrics lacks code="facade.forbidden"`)
	}
}

// The metric names, types and help texts follow Prometheus' conventions.
func TestLint(t *testing.T) {
	m := New()
	m.LoaderBatch(1)
	m.Cache(CacheHit)
	m.BudgetRefused(ScopeApp)
	m.TokenRenewed(true)
	m.RedisError(RedisConnect)
	m.ObserveUpstream(upstream.Call{Endpoint: upstream.EndpointIdentity, Status: 200})
	withRecord(m.Middleware(fakeGraphQL(t, m))).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/graphql?code=facade.forbidden", nil))
	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "mkgraph_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}
