package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/upstream"
)

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
