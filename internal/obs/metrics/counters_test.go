package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
)

func TestObserveUpstream(t *testing.T) {
	m := New()
	for _, c := range []upstream.Call{
		{Endpoint: upstream.EndpointToken, Status: 200, Duration: 3 * time.Millisecond},
		{Endpoint: upstream.EndpointIdentity, Status: 200, Duration: 20 * time.Millisecond},
		{Endpoint: upstream.EndpointIdentity, Status: 200, Duration: 25 * time.Millisecond},
		{Endpoint: upstream.EndpointIdentity, Status: 429, Code: apierr.CodeRateLimitExceeded},
		{Endpoint: upstream.EndpointIdentity, Status: 503, Code: apierr.CodeUpstreamUnavailable},
		{Endpoint: upstream.EndpointIdentity, Status: 0, Code: apierr.CodeUpstreamTimeout},
		{Endpoint: "/links/mk_eqkWN34UEoa2NxyALG8pcV/identity", Status: 999, Code: "mk_eqkWN34UEoa2NxyALG8pcV"},
	} {
		m.ObserveUpstream(c)
	}
	for _, tc := range []struct {
		endpoint, status, code string
		want                   float64
	}{
		{"auth_token", "2xx", "", 1},
		{"identity", "2xx", "", 2},
		{"identity", "4xx", "api_error.rate_limit_exceeded", 1},
		{"identity", "5xx", "facade.upstream_unavailable", 1},
		{"identity", "none", "facade.upstream_timeout", 1},
		{Other, Other, Other, 1},
	} {
		if got := testutil.ToFloat64(m.upstreamCalls.WithLabelValues(tc.endpoint, tc.status, tc.code)); got != tc.want {
			t.Errorf("mkgraph_upstream_calls_total{endpoint=%q,status=%q,code=%q} = %v, want %v", tc.endpoint, tc.status, tc.code, got, tc.want)
		}
	}
	if got, want := testutil.CollectAndCount(m.upstreamCalls), 6; got != want {
		t.Errorf("mkgraph_upstream_calls_total has %d series, want %d", got, want)
	}
	if got, want := testutil.CollectAndCount(m.upstreamDuration), 3; got != want {
		t.Errorf("mkgraph_upstream_call_duration_seconds has %d series, want %d", got, want)
	}
	// Both identity 2xx calls (20 and 25 ms) fall in the 25 ms bucket.
	const want = `
# HELP mkgraph_upstream_call_duration_seconds Latency of HTTP exchanges with MoneyKit, until the body was read.
# TYPE mkgraph_upstream_call_duration_seconds histogram
mkgraph_upstream_call_duration_seconds_bucket{endpoint="auth_token",le="0.001"} 0
mkgraph_upstream_call_duration_seconds_bucket{endpoint="auth_token",le="0.0025"} 0
mkgraph_upstream_call_duration_seconds_bucket{endpoint="auth_token",le="0.005"} 1
mkgraph_upstream_call_duration_seconds_bucket{endpoint="auth_token",le="0.01"} 1
mkgraph_upstream_call_duration_seconds_bucket{endpoint="auth_token",le="0.025"} 1
mkgraph_upstream_call_duration_seconds_bucket{endpoint="auth_token",le="0.05"} 1
mkgraph_upstream_call_duration_seconds_bucket{endpoint="auth_token",le="0.1"} 1
mkgraph_upstream_call_duration_seconds_bucket{endpoint="auth_token",le="0.25"} 1
mkgraph_upstream_call_duration_seconds_bucket{endpoint="auth_token",le="0.5"} 1
mkgraph_upstream_call_duration_seconds_bucket{endpoint="auth_token",le="1"} 1
mkgraph_upstream_call_duration_seconds_bucket{endpoint="auth_token",le="2.5"} 1
mkgraph_upstream_call_duration_seconds_bucket{endpoint="auth_token",le="5"} 1
mkgraph_upstream_call_duration_seconds_bucket{endpoint="auth_token",le="10"} 1
mkgraph_upstream_call_duration_seconds_bucket{endpoint="auth_token",le="+Inf"} 1
mkgraph_upstream_call_duration_seconds_sum{endpoint="auth_token"} 0.003
mkgraph_upstream_call_duration_seconds_count{endpoint="auth_token"} 1
`
	m2 := New()
	m2.ObserveUpstream(upstream.Call{Endpoint: upstream.EndpointToken, Status: 200, Duration: 3 * time.Millisecond})
	if err := testutil.GatherAndCompare(m2.reg, strings.NewReader(want), "mkgraph_upstream_call_duration_seconds"); err != nil {
		t.Error(err)
	}
}

func TestCounters(t *testing.T) {
	m := New()
	for _, s := range []int{1, 3, 3, 100} {
		m.LoaderBatch(s)
	}
	for _, r := range []string{CacheHit, CacheHit, CacheMiss, CacheStale, CacheStore, "mk_eqkWN34UEoa2NxyALG8pcV"} {
		m.Cache(r)
	}
	for _, s := range []string{ScopeLink, ScopeLink, ScopeApp, ScopeCaller, "user-42"} {
		m.BudgetRefused(s)
	}
	m.TokenRenewed(true)
	m.TokenRenewed(true)
	m.TokenRenewed(false)
	for _, op := range []string{RedisCacheGet, RedisCacheGet, RedisBudget, "GET identity:mk_eqkWN34UEoa2NxyALG8pcV"} {
		m.RedisError(op)
	}

	const want = `
# HELP mkgraph_identity_cache_total Identity cache lookups and stores by result: hit, miss, stale (served stale), store, shared_hit (from Redis).
# TYPE mkgraph_identity_cache_total counter
mkgraph_identity_cache_total{result="hit"} 2
mkgraph_identity_cache_total{result="miss"} 1
mkgraph_identity_cache_total{result="other"} 1
mkgraph_identity_cache_total{result="stale"} 1
mkgraph_identity_cache_total{result="store"} 1
# HELP mkgraph_rate_budget_refusals_total Calls refused locally because a rate budget was spent, by scope: link, app, caller.
# TYPE mkgraph_rate_budget_refusals_total counter
mkgraph_rate_budget_refusals_total{scope="app"} 1
mkgraph_rate_budget_refusals_total{scope="caller"} 1
mkgraph_rate_budget_refusals_total{scope="link"} 2
mkgraph_rate_budget_refusals_total{scope="other"} 1
# HELP mkgraph_token_renewals_total MoneyKit access token renewals by result: ok, error.
# TYPE mkgraph_token_renewals_total counter
mkgraph_token_renewals_total{result="error"} 1
mkgraph_token_renewals_total{result="ok"} 2
# HELP mkgraph_redis_errors_total Redis failures that fell back to the in-memory path, by operation.
# TYPE mkgraph_redis_errors_total counter
mkgraph_redis_errors_total{op="budget"} 1
mkgraph_redis_errors_total{op="cache_get"} 2
mkgraph_redis_errors_total{op="other"} 1
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want),
		"mkgraph_identity_cache_total", "mkgraph_rate_budget_refusals_total",
		"mkgraph_token_renewals_total", "mkgraph_redis_errors_total"); err != nil {
		t.Error(err)
	}

	const wantBatch = `
# HELP mkgraph_loader_batch_size Links fetched by one dataloader batch.
# TYPE mkgraph_loader_batch_size histogram
mkgraph_loader_batch_size_bucket{le="1"} 1
mkgraph_loader_batch_size_bucket{le="2"} 1
mkgraph_loader_batch_size_bucket{le="4"} 3
mkgraph_loader_batch_size_bucket{le="8"} 3
mkgraph_loader_batch_size_bucket{le="16"} 3
mkgraph_loader_batch_size_bucket{le="32"} 3
mkgraph_loader_batch_size_bucket{le="64"} 3
mkgraph_loader_batch_size_bucket{le="128"} 4
mkgraph_loader_batch_size_bucket{le="+Inf"} 4
mkgraph_loader_batch_size_sum 107
mkgraph_loader_batch_size_count 4
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(wantBatch), "mkgraph_loader_batch_size"); err != nil {
		t.Error(err)
	}
}
