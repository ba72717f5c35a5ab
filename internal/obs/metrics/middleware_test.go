package metrics

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mkgraph/mkgraph/internal/obs/reqlog"
)

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
