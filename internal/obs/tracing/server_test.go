package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// testRoute names the routes of a small table, "other" for any other path.
func testRoute(path string) string {
	if path == "/graphql" || path == "/healthz" {
		return path
	}
	return "other"
}

const (
	callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan  = "00f067aa0ba902b7"
)

// TestServerContinuesTrace: a request with a W3C traceparent gets a server
// span in the caller's trace, child of the caller's span, named by method
// and route; the GraphQL operation span is its (internal) child, and the
// caller's baggage reaches the handlers.
func TestServerContinuesTrace(t *testing.T) {
	rec := mustRecorder(t)
	var gotBaggage string
	h := Server(testRoute, "other")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotBaggage = baggage.FromContext(r.Context()).Member("tenant").Value()
		ctx := graphql.WithOperationContext(r.Context(), &graphql.OperationContext{OperationName: "Profile", Operation: &ast.OperationDefinition{Operation: ast.Query, Name: "Profile"}})
		resp := Operation(ctx, func(ctx context.Context) graphql.ResponseHandler {
			return func(ctx context.Context) *graphql.Response { return &graphql.Response{Data: []byte(`{}`)} }
		})
		resp(ctx)
		w.WriteHeader(http.StatusTeapot)
	}))
	r := httptest.NewRequest(http.MethodPost, "/graphql", nil)
	r.Header.Set("traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	r.Header.Set("baggage", "tenant=acme")
	h.ServeHTTP(httptest.NewRecorder(), r)

	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2 (operation, server)", len(spans))
	}
	op, srv := spans[0], spans[1]
	if srv.Name() != "POST /graphql" || srv.SpanKind() != trace.SpanKindServer {
		t.Errorf("server span %q kind %v, want \"POST /graphql\" server", srv.Name(), srv.SpanKind())
	}
	if srv.SpanContext().TraceID().String() != callerTrace || srv.Parent().SpanID().String() != callerSpan || !srv.Parent().IsRemote() {
		t.Errorf("server span trace %s parent %s, want the caller's %s / %s", srv.SpanContext().TraceID(), srv.Parent().SpanID(), callerTrace, callerSpan)
	}
	want := map[attribute.Key]string{"http.request.method": "POST", "http.route": "/graphql", "http.response.status_code": "418"}
	if len(srv.Attributes()) != len(want) {
		t.Errorf("attributes %v, want only %v", srv.Attributes(), want)
	}
	for _, kv := range srv.Attributes() {
		if want[kv.Key] != kv.Value.Emit() {
			t.Errorf("attribute %s = %q, want %q", kv.Key, kv.Value.Emit(), want[kv.Key])
		}
	}
	if op.Parent().SpanID() != srv.SpanContext().SpanID() || op.SpanKind() != trace.SpanKindInternal || op.Name() != "graphql query Profile" {
		t.Errorf("operation span %q kind %v parent %s, want an internal child of the server span %s", op.Name(), op.SpanKind(), op.Parent().SpanID(), srv.SpanContext().SpanID())
	}
	if gotBaggage != "acme" {
		t.Errorf("baggage tenant = %q, want acme", gotBaggage)
	}
}

// TestServerRoutes: without a traceparent a new trace starts; a path that is
// no route is named by its method only, and no attribute holds the path; a
// strange method is _OTHER; a 5xx is an error.
func TestServerRoutes(t *testing.T) {
	rec := mustRecorder(t)
	for _, tc := range []struct {
		method, path, wantName string
		status                 int
	}{
		{http.MethodGet, "/healthz", "GET /healthz", 200},
		{http.MethodGet, "/graphql/mk_secret_link_id", "GET", 404},
		{"PROPFIND", "/" + strings.Repeat("x", 5000), "_OTHER", 405},
		{http.MethodPost, "/graphql", "POST /graphql", 503},
	} {
		h := Server(testRoute, "other")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.status != 200 {
				w.WriteHeader(tc.status)
			}
			w.Write([]byte("x"))
		}))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tc.method, tc.path, nil))
		spans := rec.Ended()
		s := spans[len(spans)-1]
		if s.Name() != tc.wantName || s.Parent().IsValid() {
			t.Errorf("%s %.30s: span %q (parent %v), want %q in a new trace", tc.method, tc.path, s.Name(), s.Parent().IsValid(), tc.wantName)
		}
		for _, kv := range s.Attributes() {
			if strings.Contains(kv.Value.Emit(), "mk_secret") || strings.Contains(kv.Value.Emit(), "xxxx") {
				t.Errorf("attribute %s holds the path: %q", kv.Key, kv.Value.Emit())
			}
		}
		if (s.Status().Code == codes.Error) != (tc.status >= 500) {
			t.Errorf("%s %.30s: status %v for HTTP %d", tc.method, tc.path, s.Status(), tc.status)
		}
	}
}

// TestServerOff: with the no-op provider the request passes untouched.
func TestServerOff(t *testing.T) {
	restoreGlobals(t)
	otel.SetTracerProvider(noop.NewTracerProvider())
	w := httptest.NewRecorder()
	var gotW http.ResponseWriter
	var kind bool
	Server(testRoute, "other")(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		gotW, kind = rw, serverSpanKey.From(r.Context())
	})).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/graphql", nil))
	if gotW != http.ResponseWriter(w) || kind {
		t.Errorf("tracing off: the writer was wrapped (%T) or the context marked (%v)", gotW, kind)
	}
}
