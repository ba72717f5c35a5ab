package metrics

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/obs/reqlog"
	"github.com/mkgraph/mkgraph/upstream"
)

// withRecord attaches a reqlog record, as server.go's chain does outside the
// metrics middleware.
func withRecord(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, _ := reqlog.NewContext(r.Context())
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// fakeGraphQL answers like the GraphQL handler would as far as metrics can
// tell: it records the operation name and codes given in the query string
// and answers the given status.
func fakeGraphQL(t *testing.T, m *Metrics) http.Handler {
	t.Helper()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := reqlog.From(r.Context())
		q := r.URL.Query()
		rec.SetOperation(q.Get("op"))
		for _, c := range q["code"] {
			rec.AddCode(c)
		}
		if got := testutil.ToFloat64(m.inFlight); got < 1 {
			t.Errorf("in flight during a request = %v, want >= 1", got)
		}
		if s := q.Get("status"); s != "" {
			var code int
			fmt.Sscan(s, &code)
			w.WriteHeader(code)
		}
		io.WriteString(w, "{}")
	})
}

// newServer serves fakeGraphQL on every path behind the metrics middleware.
func newServer(t *testing.T, m *Metrics) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(withRecord(m.Middleware(fakeGraphQL(t, m))))
	t.Cleanup(srv.Close)
	return srv
}

func mustGet(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func TestMiddleware(t *testing.T) {
	m := New()
	srv := newServer(t, m)

	mustGet(t, srv.URL+"/graphql?op=GetIdentity")
	mustGet(t, srv.URL+"/graphql?op=GetIdentity")
	mustGet(t, srv.URL+"/graphql?op=GetIdentity&status=429&code=facade.rate_limit_exceeded")
	mustGet(t, srv.URL+"/graphql?code=facade.forbidden&code=link_error.deleted")
	mustGet(t, srv.URL+"/healthz")
	mustGet(t, srv.URL+"/readyz?status=503")
	mustGet(t, srv.URL+"/")
	mustGet(t, srv.URL+"/wp-admin/setup.php?op=Sneaky")

	for _, tc := range []struct {
		route, operation, status string
		want                     float64
	}{
		{"/graphql", "GetIdentity", "200", 2},
		{"/graphql", "GetIdentity", "429", 1},
		{"/graphql", Anonymous, "200", 1},
		{"/healthz", "", "200", 1},
		{"/readyz", "", "503", 1},
		{"/", "", "200", 1},
		{Other, "", "200", 1},
	} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(tc.route, tc.operation, tc.status)); got != tc.want {
			t.Errorf("mkgraph_http_requests_total{route=%q,operation=%q,status=%q} = %v, want %v", tc.route, tc.operation, tc.status, got, tc.want)
		}
	}
	if got, want := testutil.CollectAndCount(m.requests), 7; got != want {
		t.Errorf("mkgraph_http_requests_total has %d series, want %d", got, want)
	}
	// One histogram series per (route, operation).
	if got, want := testutil.CollectAndCount(m.requestDuration, "mkgraph_http_request_duration_seconds"), 6; got != want {
		t.Errorf("mkgraph_http_request_duration_seconds has %d series, want %d", got, want)
	}
	if got := testutil.ToFloat64(m.inFlight); got != 0 {
		t.Errorf("mkgraph_http_requests_in_flight after the requests = %v, want 0", got)
	}
	for code, want := range map[string]float64{
		"facade.rate_limit_exceeded": 1,
		"facade.forbidden":           1,
		"link_error.deleted":         1,
	} {
		if got := testutil.ToFloat64(m.graphqlErrors.WithLabelValues(code)); got != want {
			t.Errorf("mkgraph_graphql_errors_total{code=%q} = %v, want %v", code, got, want)
		}
	}
}

func TestMiddlewareConcurrent(t *testing.T) {
	m := New()
	srv := newServer(t, m)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			for range 10 {
				mustGet(t, fmt.Sprintf("%s/graphql?op=Op%d&code=facade.code%d", srv.URL, i%5, i%3))
			}
		})
	}
	wg.Wait()
	var total float64
	for i := range 5 {
		total += testutil.ToFloat64(m.requests.WithLabelValues("/graphql", fmt.Sprintf("Op%d", i), "200"))
	}
	if total != 200 {
		t.Errorf("requests counted = %v, want 200", total)
	}
	if got := testutil.ToFloat64(m.inFlight); got != 0 {
		t.Errorf("mkgraph_http_requests_in_flight = %v, want 0", got)
	}
}

// An aborted request (http.ErrAbortHandler passes through the recoverer) is
// counted as a 500 and leaves the in-flight gauge.
func TestMiddlewareAbort(t *testing.T) {
	m := New()
	h := withRecord(m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqlog.From(r.Context()).SetOperation("Abort")
		panic(http.ErrAbortHandler)
	})))
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Errorf("recovered %v, want http.ErrAbortHandler", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/graphql", nil))
	}()
	if got := testutil.ToFloat64(m.requests.WithLabelValues("/graphql", "Abort", "500")); got != 1 {
		t.Errorf("aborted request counted %v times as 500, want 1", got)
	}
	if got := testutil.ToFloat64(m.inFlight); got != 0 {
		t.Errorf("mkgraph_http_requests_in_flight = %v, want 0", got)
	}
}

// The middleware's writer keeps what streaming and websocket transports need.
func TestMiddlewareFlushHijack(t *testing.T) {
	m := New()
	rec := httptest.NewRecorder()
	m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush()
		if err := http.NewResponseController(w).SetWriteDeadline(time.Time{}); err == nil {
			t.Error("SetWriteDeadline on a recorder succeeded; Unwrap should reach the recorder, which cannot")
		}
	})).ServeHTTP(rec, httptest.NewRequest("GET", "/graphql", nil))
	if !rec.Flushed {
		t.Error("Flush did not reach the underlying writer")
	}

	// httptest.Server.Close does not wait for handlers of hijacked
	// connections: done says when the middleware has returned.
	done := make(chan struct{})
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: close\r\n\r\n")
		brw.Flush()
	}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/graphql")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	<-done
	if got := testutil.ToFloat64(m.requests.WithLabelValues("/graphql", Anonymous, "101")); got != 1 {
		t.Errorf("hijacked request counted %v times as 101, want 1", got)
	}
}

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

func TestNil(t *testing.T) {
	var m *Metrics
	m.ObserveUpstream(upstream.Call{Endpoint: upstream.EndpointIdentity, Status: 200})
	m.LoaderBatch(3)
	m.Cache(CacheHit)
	m.BudgetRefused(ScopeLink)
	m.TokenRenewed(true)
	m.RedisError(RedisCacheGet)

	called := false
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true })
	m.Middleware(next).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/graphql", nil))
	if !called {
		t.Error("nil Middleware did not call next")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil Handler answered %d, want 404", rec.Code)
	}
}

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
		if got := isOperationName(tc.s); got != tc.operation {
			t.Errorf("isOperationName(%q) = %v, want %v", tc.s, got, tc.operation)
		}
		if got := isCode(tc.s); got != tc.cd {
			t.Errorf("isCode(%q) = %v, want %v", tc.s, got, tc.cd)
		}
	}
}

// TestGauge: a gauge reads its value at each scrape; nil Metrics ignore it.
func TestGauge(t *testing.T) {
	m := New()
	v := 1.0
	m.Gauge("mkgraph_test_gauge", "A test gauge.", func() float64 { return v })
	v = 3
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "mkgraph_test_gauge 3") {
		t.Errorf("scrape lacks the gauge's current value:\n%s", rec.Body)
	}
	var nilMetrics *Metrics
	nilMetrics.Gauge("x", "y", func() float64 { return 0 }) // no panic
}
