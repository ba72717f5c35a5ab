package graph_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/graph"
	"github.com/mkgraph/mkgraph/graph/limits"
	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/internal/apierr"
)

// TestOperationLimitsCheckedOncePerRequest: an HTTP request that crossed
// the limits middleware is not checked again by the handler's extension
// (one look per request, no double cost); one that did not (no middleware
// in front) is checked by the extension, with the limit's code.
func TestOperationLimitsCheckedOncePerRequest(t *testing.T) {
	guard := limits.Config{MaxDepth: 3}.Guard()
	loaders := loader.NewFactory(loader.Config{Fetcher: &countingFetcher{}})
	h := loaders.Middleware(graph.NewHandler(graph.HandlerConfig{Limits: guard, Loaders: loaders}))
	post := func(h http.Handler, query string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(`{"query":"`+query+`"}`))
		r.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	withMiddleware := guard.Middleware(h)

	for i, q := range []string{"{ __typename }", "{ __typename }", "query Q { __typename }"} {
		before := guard.Checks()
		if rec := post(withMiddleware, q); rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "errors") {
			t.Fatalf("request %d through the middleware: %d %s", i, rec.Code, rec.Body)
		}
		if n := guard.Checks() - before; n != 1 {
			t.Errorf("request %d through the middleware: looked at %d times, want once", i, n)
		}
	}

	before := guard.Checks()
	if rec := post(h, "query R { __typename }"); rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "errors") {
		t.Fatalf("a request without the middleware: %d %s", rec.Code, rec.Body)
	}
	if n := guard.Checks() - before; n != 1 {
		t.Errorf("a request without the middleware: looked at %d times, want once (by the extension)", n)
	}
	rec := post(h, "{ a { b { c { d } } } }")
	if !strings.Contains(rec.Body.String(), apierr.CodeQueryTooDeep) {
		t.Errorf("a deep query without the middleware: %d %s, want %s", rec.Code, rec.Body, apierr.CodeQueryTooDeep)
	}
}
