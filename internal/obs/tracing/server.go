package tracing

import (
	"net/http"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mkgraph/mkgraph/internal/ctxkey"
	"github.com/mkgraph/mkgraph/internal/obs/reqlog"
)

// serverSpanKey marks a context whose span is the request's server span, so
// that the operation span under it is an internal span, not a second server
// span.
var serverSpanKey = ctxkey.New[bool]("tracing.serverSpan")

// knownMethods are the methods recorded as they are; any other is "_OTHER",
// as the HTTP semantic conventions say (a client chooses the method).
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodConnect: true,
	http.MethodOptions: true, http.MethodTrace: true,
}

// Server returns middleware that makes each HTTP request a server span, as
// OpenTelemetry's HTTP semantic conventions (and otelhttp) do: the caller's
// trace is continued from the W3C traceparent/tracestate and baggage headers
// through the global propagator, and the span is named "<METHOD> <route>"
// (only "<METHOD>" for a path that is none of the facade's routes), where
// route(path) names the route template, never the raw path (it could hold a
// link id). Its attributes are http.request.method, http.route (when known)
// and http.response.status_code; a 5xx marks it an error. Spans started while
// the request is served (the GraphQL operation, the upstream calls) are its
// children.
//
// When tracing is off (the global no-op provider) the span does not record
// and the request passes untouched.
func Server(route func(path string) string, other string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			method := r.Method
			if !knownMethods[method] {
				method = "_OTHER"
			}
			name := method
			attrs := []attribute.KeyValue{attribute.String("http.request.method", method)}
			if rt := route(r.URL.Path); rt != other {
				name += " " + rt
				attrs = append(attrs, attribute.String("http.route", rt))
			}
			ctx, span := tracer().Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
			defer span.End()
			if !span.IsRecording() {
				next.ServeHTTP(w, r)
				return
			}
			sw := &reqlog.StatusRecorder{ResponseWriter: w}
			next.ServeHTTP(sw, r.WithContext(serverSpanKey.With(ctx, true)))
			status := sw.Status
			if status == 0 {
				status = http.StatusOK
			}
			span.SetAttributes(attribute.Int("http.response.status_code", status))
			if status >= 500 {
				span.SetAttributes(attribute.String("error.type", http.StatusText(status)))
				span.SetStatus(codes.Error, "")
			}
		})
	}
}
