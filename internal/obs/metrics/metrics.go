// Package metrics exposes the facade's Prometheus metrics. No label ever holds
// a link id, an account id or any personal data: label values come from small
// fixed sets, or from names the client or the upstream chose (the sanitized
// operation name, error codes) after a shape check and a cap on how many
// distinct values are kept.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mkgraph/mkgraph/internal/obs/label"
	"github.com/mkgraph/mkgraph/internal/obs/reqlog"
	"github.com/mkgraph/mkgraph/upstream"
)

// Label values shared by several metrics.
const (
	// Other replaces a value outside a label's fixed set, a value past a
	// label's cap on distinct values, or a value that looks like an
	// identifier.
	Other = label.Other
	// Anonymous is the operation label of a GraphQL request without an
	// operation name.
	Anonymous = "anonymous"
)

// Results counted by Cache.
const (
	CacheHit   = "hit"   // a fresh entry answered
	CacheMiss  = "miss"  // no usable entry: the upstream was asked
	CacheStale = "stale" // a stale entry was served because the upstream or the budget refused
	CacheStore = "store" // an upstream answer was stored
	// CacheSharedHit: a fresh answer another replica fetched was read from
	// the shared cache (Redis).
	CacheSharedHit = "shared_hit"
)

// Scopes counted by BudgetRefused.
const (
	ScopeLink   = "link"   // MoneyKit's per-link identity budget
	ScopeApp    = "app"    // MoneyKit's per-app budget
	ScopeCaller = "caller" // the facade's per-caller rate limit
)

// Operations counted by RedisError: what the facade was doing when Redis
// failed, so an operator knows which feature fell back to memory.
const (
	RedisConnect   = "connect"    // dialing or pinging
	RedisCacheGet  = "cache_get"  // identity cache read
	RedisCacheSet  = "cache_set"  // identity cache write
	RedisAPQGet    = "apq_get"    // persisted query read
	RedisAPQSet    = "apq_set"    // persisted query write
	RedisBudget    = "budget"     // upstream rate budget (per link, per app)
	RedisRateLimit = "rate_limit" // per-caller rate limit
	RedisLock      = "lock"       // cross-replica single-flight
)

// Caps on distinct client- or upstream-chosen label values. Each keeps the
// first values seen for the life of the process; later ones become Other.
const (
	maxOperations    = 100
	maxErrorCodes    = 64
	maxUpstreamCodes = 64
)

// durationBuckets spans the facade's own overhead (a millisecond) to a slow
// upstream (its 10 s timeout).
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Metrics holds the facade's collectors in a registry of its own, so that
// tests and several servers in one process do not share counters. Its methods
// are safe for concurrent use and do nothing on a nil *Metrics, so wiring it
// is optional.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	inFlight        prometheus.Gauge
	graphqlErrors   *prometheus.CounterVec

	upstreamCalls    *prometheus.CounterVec
	upstreamDuration *prometheus.HistogramVec

	loaderBatch    prometheus.Histogram
	cache          *prometheus.CounterVec
	budgetRefusals *prometheus.CounterVec
	tokenRenewals  *prometheus.CounterVec
	redisErrors    *prometheus.CounterVec
	events         *linkEventMetrics // linkevents.go

	operations    *capped
	errorCodes    *capped
	upstreamCodes *capped
}

// New returns Metrics registered in a new registry, with the Go runtime and
// process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mkgraph_http_requests_total",
			Help: "HTTP requests by route, GraphQL operation name and status code.",
		}, []string{"route", "operation", "status"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mkgraph_http_request_duration_seconds",
			Help:    "HTTP request latency by route and GraphQL operation name.",
			Buckets: durationBuckets,
		}, []string{"route", "operation"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mkgraph_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
		graphqlErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mkgraph_graphql_errors_total",
			Help: "Error codes answered to clients, counted once per request and code.",
		}, []string{"code"}),
		upstreamCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mkgraph_upstream_calls_total",
			Help: "HTTP exchanges with MoneyKit by endpoint, status class and error code.",
		}, []string{"endpoint", "status", "code"}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mkgraph_upstream_call_duration_seconds",
			Help:    "Latency of HTTP exchanges with MoneyKit, until the body was read.",
			Buckets: durationBuckets,
		}, []string{"endpoint"}),
		loaderBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mkgraph_loader_batch_size",
			Help:    "Links fetched by one dataloader batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 8), // 1 … 128, past the default 100 links per request
		}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mkgraph_identity_cache_total",
			Help: "Identity cache lookups and stores by result: hit, miss, stale (served stale), store, shared_hit (from Redis).",
		}, []string{"result"}),
		budgetRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mkgraph_rate_budget_refusals_total",
			Help: "Calls refused locally because a rate budget was spent, by scope: link, app, caller.",
		}, []string{"scope"}),
		tokenRenewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mkgraph_token_renewals_total",
			Help: "MoneyKit access token renewals by result: ok, error.",
		}, []string{"result"}),
		redisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mkgraph_redis_errors_total",
			Help: "Redis failures that fell back to the in-memory path, by operation.",
		}, []string{"op"}),
		operations:    newCapped(maxOperations, label.IsOperationName),
		errorCodes:    newCapped(maxErrorCodes, label.IsCode),
		upstreamCodes: newCapped(maxUpstreamCodes, label.IsCode),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.requestDuration, m.inFlight, m.graphqlErrors,
		m.upstreamCalls, m.upstreamDuration,
		m.loaderBatch, m.cache, m.budgetRefusals, m.tokenRenewals, m.redisErrors,
	)
	m.events = newLinkEventMetrics(m.reg)
	// ContinueOnError: a collector that fails must not hide all the others.
	m.handler = promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          m.reg,
		EnableOpenMetrics: true,
	}))
	return m
}

// Gauge registers a gauge read from value at each scrape (a state held
// elsewhere: the Redis breaker, the large-answer gate). Names must be
// unique; labels are not supported, so no value can carry data.
func (m *Metrics) Gauge(name, help string, value func() float64) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, value))
}

// Handler serves the metrics in the Prometheus exposition formats, for the
// admin listener's /metrics. On a nil *Metrics it answers 404.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return m.handler
}

// Middleware records every HTTP request: mkgraph_http_requests_total,
// mkgraph_http_request_duration_seconds, mkgraph_http_requests_in_flight and,
// once the request is answered, mkgraph_graphql_errors_total for each error
// code of the request's reqlog record. It must run inside the middleware
// that attaches the reqlog record, because it reads the record's summary
// after next returns. On a nil *Metrics it returns next.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.inFlight.Inc()
		start := time.Now()
		sw := &reqlog.StatusRecorder{ResponseWriter: w}
		// Deferred so that a request aborted by a panic (http.ErrAbortHandler
		// re-panicked by the recoverer) still leaves the in-flight gauge and
		// is counted.
		defer func() {
			m.inFlight.Dec()
			m.observeRequest(r, sw.StatusOr(http.StatusInternalServerError), time.Since(start))
		}()
		next.ServeHTTP(sw, r)
		if sw.Status == 0 {
			sw.Status = http.StatusOK // net/http answers 200 for a handler that wrote nothing
		}
	})
}

func (m *Metrics) observeRequest(r *http.Request, status int, d time.Duration) {
	s := reqlog.From(r.Context()).Summary()
	route := label.Route(r.URL.Path)
	operation := ""
	if route == "/graphql" {
		operation = Anonymous
		if s.Operation != "" {
			operation = m.operations.value(s.Operation)
		}
	}
	m.requests.WithLabelValues(route, operation, statusLabel(status)).Inc()
	m.requestDuration.WithLabelValues(route, operation).Observe(d.Seconds())
	for _, code := range s.Codes {
		m.graphqlErrors.WithLabelValues(m.errorCodes.value(code)).Inc()
	}
}

// ObserveUpstream records one upstream exchange: mkgraph_upstream_calls_total
// by endpoint, status class ("2xx" … "5xx", "none" when no answer was read)
// and error code ("" on success), and mkgraph_upstream_call_duration_seconds
// by endpoint. It suits upstream.Config.Observer.
func (m *Metrics) ObserveUpstream(c upstream.Call) {
	if m == nil {
		return
	}
	endpoint := Other
	switch c.Endpoint {
	case upstream.EndpointToken, upstream.EndpointIdentity, upstream.EndpointRefresh:
		endpoint = c.Endpoint
	}
	code := ""
	if c.Code != "" {
		code = m.upstreamCodes.value(c.Code)
	}
	m.upstreamCalls.WithLabelValues(endpoint, statusClass(c.Status), code).Inc()
	m.upstreamDuration.WithLabelValues(endpoint).Observe(c.Duration.Seconds())
}

// LoaderBatch records the size of one dataloader batch in
// mkgraph_loader_batch_size.
func (m *Metrics) LoaderBatch(size int) {
	if m == nil {
		return
	}
	m.loaderBatch.Observe(float64(size))
}

// Cache counts one identity cache event in mkgraph_identity_cache_total:
// result is CacheHit, CacheMiss, CacheStale, CacheStore or CacheSharedHit;
// anything else is counted as Other.
func (m *Metrics) Cache(result string) {
	if m == nil {
		return
	}
	m.cache.WithLabelValues(oneOf(result, CacheHit, CacheMiss, CacheStale, CacheStore, CacheSharedHit)).Inc()
}

// BudgetRefused counts one call refused locally in
// mkgraph_rate_budget_refusals_total: scope is ScopeLink, ScopeApp,
// ScopeCaller or ScopeRefresh; anything else is counted as Other.
func (m *Metrics) BudgetRefused(scope string) {
	if m == nil {
		return
	}
	m.budgetRefusals.WithLabelValues(oneOf(scope, ScopeLink, ScopeApp, ScopeCaller, ScopeRefresh)).Inc()
}

// TokenRenewed counts one access token renewal in
// mkgraph_token_renewals_total, with result "ok" or "error".
func (m *Metrics) TokenRenewed(ok bool) {
	if m == nil {
		return
	}
	result := "error"
	if ok {
		result = "ok"
	}
	m.tokenRenewals.WithLabelValues(result).Inc()
}

// RedisError counts one Redis failure in mkgraph_redis_errors_total: op is
// one of the Redis… constants; anything else is counted as Other.
func (m *Metrics) RedisError(op string) {
	if m == nil {
		return
	}
	m.redisErrors.WithLabelValues(oneOf(op,
		RedisConnect, RedisCacheGet, RedisCacheSet, RedisAPQGet, RedisAPQSet,
		RedisBudget, RedisRateLimit, RedisLock, RedisWebhook, RedisPubSub)).Inc()
}

// statusLabel is an HTTP status code as a label; the server itself chose it,
// so it is bounded, but a value outside HTTP's range is folded anyway.
func statusLabel(status int) string {
	if status < 100 || status > 599 {
		return Other
	}
	return strconv.Itoa(status)
}

// statusClass is the class of an upstream status: "2xx" … "5xx", or "none"
// when no answer was read.
func statusClass(status int) string {
	switch {
	case status == 0:
		return "none"
	case status >= 100 && status <= 599:
		return strconv.Itoa(status/100) + "xx"
	}
	return Other
}

// oneOf returns v when it is one of allowed, else Other.
func oneOf(v string, allowed ...string) string {
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	return Other
}
