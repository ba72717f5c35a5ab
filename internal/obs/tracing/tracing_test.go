package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env returns a getenv over vars.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// restoreGlobals puts back the global provider and propagator after the test.
func restoreGlobals(t *testing.T) {
	t.Helper()
	tp, prop := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() {
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(prop)
	})
}

// mustRecorder installs, for the test, a global provider that records spans
// and the W3C propagator, and returns the recorder.
func mustRecorder(t *testing.T) *tracetest.SpanRecorder {
	t.Helper()
	restoreGlobals(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() {
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return rec
}

func TestSetupOff(t *testing.T) {
	for name, vars := range map[string]map[string]string{
		"unset":          nil,
		"sdk disabled":   {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"},
		"exporter none":  {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER": "none"},
		"service only":   {"OTEL_SERVICE_NAME": "x"},
		"blank endpoint": {"OTEL_EXPORTER_OTLP_ENDPOINT": "  "},
	} {
		t.Run(name, func(t *testing.T) {
			restoreGlobals(t)
			before := otel.GetTracerProvider()
			enabled, shutdown, err := Setup(context.Background(), env(vars))
			if err != nil || enabled {
				t.Fatalf("Setup() = %v, _, %v; want false, _, nil", enabled, err)
			}
			if got := otel.GetTracerProvider(); got != before {
				t.Errorf("global TracerProvider changed to %T", got)
			}
			if err := shutdown(context.Background()); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
}

func TestSetupErrors(t *testing.T) {
	for name, vars := range map[string]map[string]string{
		"grpc":         {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
		"exporter":     {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER": "zipkin"},
		"not a url":    {"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:4318"},
		"traces proto": {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
	} {
		t.Run(name, func(t *testing.T) {
			restoreGlobals(t)
			before := otel.GetTracerProvider()
			enabled, shutdown, err := Setup(context.Background(), env(vars))
			if err == nil || enabled || shutdown == nil {
				t.Fatalf("Setup() = %v, _, %v; want false, _, an error", enabled, err)
			}
			if got := otel.GetTracerProvider(); got != before {
				t.Errorf("global TracerProvider changed to %T", got)
			}
		})
	}
}

func TestSetupOn(t *testing.T) {
	for name, vars := range map[string]map[string]string{
		"generic": {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
		"traces":  {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces", "OTEL_SERVICE_NAME": "svc"},
	} {
		t.Run(name, func(t *testing.T) {
			restoreGlobals(t)
			enabled, shutdown, err := Setup(context.Background(), env(vars))
			if err != nil || !enabled {
				t.Fatalf("Setup() = %v, _, %v; want true, _, nil", enabled, err)
			}
			if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); !ok {
				t.Errorf("global TracerProvider is %T, want the SDK's", otel.GetTracerProvider())
			}
			fields := otel.GetTextMapPropagator().Fields()
			if !strings.Contains(strings.Join(fields, ","), "traceparent") {
				t.Errorf("propagator fields = %v, want traceparent", fields)
			}
			// A span is queued for an endpoint that refuses connections:
			// shutdown must still return within its context.
			_, span := otel.Tracer("test").Start(context.Background(), "s")
			span.End()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			start := time.Now()
			_ = shutdown(ctx) // the export fails; only the bound matters
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("shutdown took %v", d)
			}
		})
	}
}

func TestEndpointURL(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "http://c:4318/v1/traces"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c/otlp/"}, "https://c/otlp/v1/traces"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:1/x"}, "http://b:1/x"},
	} {
		got, err := endpointURL(env(tc.vars))
		if err != nil || got != tc.want {
			t.Errorf("endpointURL(%v) = %q, %v; want %q", tc.vars, got, err, tc.want)
		}
	}
}

func TestTransport(t *testing.T) {
	const secretID = "mk_secret_id"
	const secretHeader = "Bearer tok_very_secret"
	for _, tc := range []struct {
		method, path, wantName string
		status                 int
	}{
		{http.MethodGet, "/links/" + secretID + "/identity", "moneykit GET " + RouteIdentity, http.StatusOK},
		{http.MethodPost, "/auth/token", "moneykit POST " + RouteToken, http.StatusUnauthorized},
		{http.MethodGet, "/prefix/links/" + secretID + "/identity", "moneykit GET " + RouteIdentity, http.StatusOK},
		{http.MethodGet, "/other/" + secretID, "moneykit GET " + RouteOther, http.StatusNotFound},
	} {
		t.Run(tc.path, func(t *testing.T) {
			rec := mustRecorder(t)
			var (
				mu   sync.Mutex
				seen string
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen = r.Header.Get("traceparent")
				mu.Unlock()
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()

			client := &http.Client{Transport: Transport(srv.Client().Transport)}
			req, err := http.NewRequestWithContext(context.Background(), tc.method, srv.URL+tc.path, strings.NewReader("client_secret="+secretID))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", secretHeader)
			req.Header.Set("X-Link", secretID)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if req.Header.Get("traceparent") != "" {
				t.Error("the caller's request was modified")
			}

			spans := rec.Ended()
			if len(spans) != 1 {
				t.Fatalf("%d spans, want 1", len(spans))
			}
			s := spans[0]
			if s.Name() != tc.wantName {
				t.Errorf("span name = %q, want %q", s.Name(), tc.wantName)
			}
			if s.SpanKind() != trace.SpanKindClient {
				t.Errorf("span kind = %v, want client", s.SpanKind())
			}
			mu.Lock()
			tp := seen
			mu.Unlock()
			// traceparent: version-traceid-spanid-flags
			parts := strings.Split(tp, "-")
			if len(parts) != 4 || parts[1] != s.SpanContext().TraceID().String() || parts[2] != s.SpanContext().SpanID().String() {
				t.Errorf("traceparent = %q, want trace %s span %s", tp, s.SpanContext().TraceID(), s.SpanContext().SpanID())
			}
			attrs := map[attribute.Key]attribute.Value{}
			for _, kv := range s.Attributes() {
				attrs[kv.Key] = kv.Value
				v := kv.Value.Emit()
				if strings.Contains(v, secretID) || strings.Contains(v, secretHeader) || strings.Contains(v, "tok_") {
					t.Errorf("attribute %s = %q leaks a secret", kv.Key, v)
				}
			}
			if strings.Contains(s.Name(), secretID) {
				t.Errorf("span name %q holds the link id", s.Name())
			}
			if got := attrs["http.request.method"].AsString(); got != tc.method {
				t.Errorf("http.request.method = %q, want %q", got, tc.method)
			}
			if got := attrs["http.response.status_code"].AsInt64(); got != int64(tc.status) {
				t.Errorf("http.response.status_code = %d, want %d", got, tc.status)
			}
			if got := attrs["server.address"].AsString(); got != "127.0.0.1" {
				t.Errorf("server.address = %q, want 127.0.0.1", got)
			}
		})
	}
}

func TestTransportError(t *testing.T) {
	rec := mustRecorder(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.Client().Transport
	url := srv.URL + "/links/mk_secret_id/identity"
	srv.Close() // connections are now refused

	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Transport(base).RoundTrip(req); err == nil {
		t.Fatal("RoundTrip: no error from a closed server")
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Status().Code.String() != "Error" || strings.Contains(s.Status().Description, "mk_secret_id") {
		t.Errorf("status = %+v, want an error without the link id", s.Status())
	}
	for _, kv := range s.Attributes() {
		if strings.Contains(kv.Value.Emit(), "mk_secret_id") {
			t.Errorf("attribute %s = %q leaks the link id", kv.Key, kv.Value.Emit())
		}
	}
	if len(s.Events()) != 0 {
		t.Errorf("events = %v, want none (error texts hold the URL)", s.Events())
	}
}

// opContext returns a context holding an operation context as gqlgen builds it.
func opContext(op ast.Operation, docName, requestName string) context.Context {
	return graphql.WithOperationContext(context.Background(), &graphql.OperationContext{
		RawQuery:      "query Secret { link(id: \"mk_secret_id\") { id } }",
		Variables:     map[string]any{"id": "mk_secret_id"},
		OperationName: requestName,
		Operation:     &ast.OperationDefinition{Operation: op, Name: docName},
	})
}

func TestOperation(t *testing.T) {
	long := strings.Repeat("a", 100)
	for _, tc := range []struct {
		name              string
		ctx               context.Context
		wantName, wantTyp string
		wantOpName        string
	}{
		{"named", opContext(ast.Query, "Profile", "Profile"), "graphql query Profile", "query", "Profile"},
		{"doc name", opContext(ast.Mutation, "Refresh", ""), "graphql mutation Refresh", "mutation", "Refresh"},
		{"anonymous", opContext(ast.Query, "", ""), "graphql query anonymous", "query", "anonymous"},
		{"long", opContext(ast.Query, long, long), "graphql query " + long[:MaxOperationNameLen], "query", long[:MaxOperationNameLen]},
		{"no operation context", context.Background(), "graphql unknown anonymous", "unknown", "anonymous"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := mustRecorder(t)
			next := func(ctx context.Context) graphql.ResponseHandler {
				return func(ctx context.Context) *graphql.Response {
					// Execution (resolvers, upstream calls) happens here.
					_, child := otel.Tracer("test").Start(ctx, "child")
					child.End()
					return &graphql.Response{Data: []byte(`{}`)}
				}
			}
			h := Operation(tc.ctx, next)
			// The transport calls the handler with the context it got back
			// from DispatchOperation; a bare one must work too.
			if resp := h(context.Background()); resp == nil {
				t.Fatal("no response")
			}

			spans := rec.Ended()
			if len(spans) != 2 {
				t.Fatalf("%d spans, want 2", len(spans))
			}
			child, op := spans[0], spans[1]
			if op.Name() != tc.wantName {
				t.Errorf("span name = %q, want %q", op.Name(), tc.wantName)
			}
			if child.Parent().SpanID() != op.SpanContext().SpanID() || child.SpanContext().TraceID() != op.SpanContext().TraceID() {
				t.Errorf("child's parent = %v, want the operation span %v", child.Parent().SpanID(), op.SpanContext().SpanID())
			}
			want := map[attribute.Key]string{"graphql.operation.type": tc.wantTyp, "graphql.operation.name": tc.wantOpName}
			if len(op.Attributes()) != len(want) {
				t.Errorf("attributes = %v, want only %v", op.Attributes(), want)
			}
			for _, kv := range op.Attributes() {
				if want[kv.Key] != kv.Value.AsString() {
					t.Errorf("attribute %s = %q, want %q", kv.Key, kv.Value.AsString(), want[kv.Key])
				}
				if strings.Contains(kv.Value.Emit(), "mk_secret_id") {
					t.Errorf("attribute %s leaks the query or variables", kv.Key)
				}
			}
		})
	}
}

func TestOperationSubscription(t *testing.T) {
	rec := mustRecorder(t)
	n := 0
	next := func(context.Context) graphql.ResponseHandler {
		return func(context.Context) *graphql.Response {
			if n++; n > 2 {
				return nil
			}
			return &graphql.Response{Data: []byte(`{}`)}
		}
	}
	h := Operation(opContext(ast.Subscription, "Updates", "Updates"), next)
	for i := 0; i < 2; i++ {
		if h(context.Background()) == nil {
			t.Fatalf("response %d: nil", i)
		}
		if len(rec.Ended()) != 0 {
			t.Fatalf("span ended after event %d, want at stream end", i)
		}
	}
	if h(context.Background()) != nil {
		t.Fatal("want end of stream")
	}
	if spans := rec.Ended(); len(spans) != 1 || spans[0].Name() != "graphql subscription Updates" {
		t.Errorf("spans = %v, want one subscription span", spans)
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"}, // é is two bytes: not cut in half
		{"a\xffb", 5, "ab"},
	} {
		if got := truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
