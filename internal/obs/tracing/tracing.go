// Package tracing sets up OpenTelemetry tracing from the standard OTEL_* environment variables: off when they are unset.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// instrumentation is the instrumentation scope name of the spans this
// package starts.
const instrumentation = "github.com/mkgraph/mkgraph/internal/obs/tracing"

// DefaultServiceName is the service.name resource attribute when
// OTEL_SERVICE_NAME is unset.
const DefaultServiceName = "mkgraph"

// MaxOperationNameLen bounds the operation name recorded in spans: names are
// chosen by clients.
const MaxOperationNameLen = 64

// Span routes of the upstream calls. Span names carry these templates, never
// the request path: the path holds the link id.
const (
	RouteIdentity = "/links/{id}/identity"
	RouteToken    = "/auth/token"
	RouteOther    = "other"
)

// Setup configures tracing from the OTEL_* variables read through getenv.
// Tracing is enabled when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, unless OTEL_SDK_DISABLED is
// "true" or OTEL_TRACES_EXPORTER is "none"; OTEL_SERVICE_NAME defaults to
// DefaultServiceName. Spans go through a batch span processor to an OTLP/HTTP
// exporter (which reads the other OTEL_EXPORTER_OTLP_* variables, such as
// headers and timeouts, itself). When enabled, Setup sets the global
// TracerProvider and the W3C TraceContext + Baggage propagator; when off it
// changes nothing, the global no-op provider stays and shutdown does nothing.
// Setup returns an error for settings it cannot honour (an exporter or
// protocol other than OTLP/HTTP protobuf, an endpoint that is not a URL).
//
// shutdown flushes the spans still queued and stops the exporter; call it
// once with a bounded context when the server stops.
func Setup(ctx context.Context, getenv func(string) string) (enabled bool, shutdown func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, noop, nil
	}
	switch exp := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))); exp {
	case "", "otlp":
	case "none":
		return false, noop, nil
	default:
		return false, noop, fmt.Errorf("tracing: OTEL_TRACES_EXPORTER=%q is not supported (otlp or none)", exp)
	}
	endpoint, err := endpointURL(getenv)
	if err != nil || endpoint == "" {
		return false, noop, err
	}
	// The exporter speaks OTLP over HTTP with protobuf only: refusing gRPC
	// here beats exporting to a gRPC port that never answers.
	proto := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
	if proto == "" {
		proto = strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_PROTOCOL"))
	}
	if proto != "" && proto != "http/protobuf" {
		return false, noop, fmt.Errorf("tracing: OTLP protocol %q is not supported (http/protobuf)", proto)
	}

	// The endpoint is passed explicitly so that getenv, not only the
	// process environment, decides where spans go.
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return false, noop, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	service := strings.TrimSpace(getenv("OTEL_SERVICE_NAME"))
	if service == "" {
		service = DefaultServiceName
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", service)),
	)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return false, noop, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
	)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
		propagation.TraceContext{}, propagation.Baggage{},
	))
	return true, tp.Shutdown, nil
}

// endpointURL returns the URL spans are sent to, "" when no endpoint is set.
// A traces endpoint is used as is; the generic endpoint gets the signal path
// v1/traces appended, as the OTLP exporter specification says.
func endpointURL(getenv func(string) string) (string, error) {
	name := "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	raw := strings.TrimSpace(getenv(name))
	generic := raw == ""
	if generic {
		name = "OTEL_EXPORTER_OTLP_ENDPOINT"
		raw = strings.TrimSpace(getenv(name))
	}
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The value is not echoed: a collector URL may embed credentials.
		return "", fmt.Errorf("tracing: %s is not an http(s) URL", name)
	}
	if generic {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
		u.RawPath = ""
	}
	return u.String(), nil
}

// tracer returns the tracer of the current global provider. It is looked up
// per span, not once, so that a provider set after the wrappers were built
// (or replaced in tests) is the one used.
func tracer() trace.Tracer {
	return otel.GetTracerProvider().Tracer(instrumentation)
}

// Transport wraps base (nil: http.DefaultTransport) so that each upstream
// HTTP call is a client span named "moneykit <METHOD> <route>", where route
// is RouteIdentity, RouteToken or RouteOther, with the attributes
// http.request.method, server.address, server.port and
// http.response.status_code, and the W3C trace context injected into the
// request headers through the global propagator. No path, header, body or
// error text is recorded: they hold link ids and credentials.
func Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{base: base}
}

type transport struct{ base http.RoundTripper }

var _ http.RoundTripper = (*transport)(nil)

// RoundTrip starts the span, injects its context into a clone of the request
// (a RoundTripper must not modify the request it is given) and ends the span
// when the response headers arrive.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	attrs := []attribute.KeyValue{attribute.String("http.request.method", method)}
	if req.URL != nil {
		attrs = append(attrs, attribute.String("server.address", req.URL.Hostname()))
		if p := req.URL.Port(); p != "" {
			attrs = append(attrs, attribute.String("server.port", p))
		}
	}
	ctx, span := tracer().Start(req.Context(), "moneykit "+method+" "+route(req.URL),
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attrs...),
	)
	defer span.End()

	out := req.Clone(ctx)
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(out.Header))
	resp, err := t.base.RoundTrip(out)
	if err != nil {
		// err is often a *url.Error holding the URL, hence the link id:
		// only its kind is recorded.
		span.SetAttributes(attribute.String("error.type", errorType(err)))
		span.SetStatus(codes.Error, "transport error")
		return resp, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetAttributes(attribute.String("error.type", fmt.Sprint(resp.StatusCode)))
		span.SetStatus(codes.Error, "")
	}
	return resp, nil
}

// route maps a request path to its template. The base URL may carry a path
// prefix, so only the end of the path is looked at.
func route(u *url.URL) string {
	if u == nil {
		return RouteOther
	}
	p := strings.TrimSuffix(u.Path, "/")
	switch {
	case strings.HasSuffix(p, RouteToken):
		return RouteToken
	case strings.HasSuffix(p, "/identity"):
		rest := strings.TrimSuffix(p, "/identity")
		if i := strings.LastIndex(rest, "/"); i >= 0 && strings.HasSuffix(rest[:i+1], "/links/") {
			return RouteIdentity
		}
	}
	return RouteOther
}

// errorType names the kind of a transport error without its text.
func errorType(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return "timeout"
	}
	return "transport"
}

// Operation is a gqlgen AroundOperations interceptor: one span per
// GraphQL operation named "graphql <type> <name>" (name: the operation name
// or "anonymous", cut to MaxOperationNameLen bytes), with the attributes
// graphql.operation.type and graphql.operation.name; under the request's
// server span (Server) it is an internal span, its child. Spans started while the
// operation executes are its children. The query text and variables are
// never recorded. For a subscription the span lasts until the stream ends.
func Operation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	opType, opName := "unknown", "anonymous"
	if graphql.HasOperationContext(ctx) {
		oc := graphql.GetOperationContext(ctx)
		name := oc.OperationName
		if oc.Operation != nil {
			opType = string(oc.Operation.Operation)
			if name == "" {
				name = oc.Operation.Name
			}
		}
		if name != "" {
			opName = truncate(name, MaxOperationNameLen)
		}
	}
	kind := trace.SpanKindServer
	if serverSpanKey.From(ctx) {
		kind = trace.SpanKindInternal // under the request's server span (Server)
	}
	ctx, span := tracer().Start(ctx, "graphql "+opType+" "+opName,
		trace.WithSpanKind(kind),
		trace.WithAttributes(
			attribute.String("graphql.operation.type", opType),
			attribute.String("graphql.operation.name", opName),
		),
	)
	h := next(ctx)
	if h == nil {
		span.End()
		return nil
	}
	stream := opType == "subscription"
	var ended bool
	return func(rctx context.Context) *graphql.Response {
		if ended {
			return h(rctx)
		}
		// Queries and mutations execute when the handler is called, with the
		// context the transport passes: make sure it holds the span.
		resp := h(trace.ContextWithSpan(rctx, span))
		if resp != nil && len(resp.Errors) > 0 {
			span.SetStatus(codes.Error, "graphql errors")
		}
		if !stream || resp == nil {
			ended = true
			span.End()
		}
		return resp
	}
}

// truncate cuts s to at most n bytes on a rune boundary and drops bytes that
// are not UTF-8 (span attributes must be valid strings).
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
