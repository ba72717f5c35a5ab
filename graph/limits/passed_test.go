package limits_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/graph/limits"
	"github.com/mkgraph/mkgraph/internal/apierr"
)

// TestMiddlewareRemembersPassed checks the texts a Middleware remembers:
// a text that passed passes again however it is sent, and a refused text
// is refused every time, under every operation name, whatever passed
// before, and by a Middleware of stricter limits than one it passed.
func TestMiddlewareRemembersPassed(t *testing.T) {
	deep := nest(11)
	ok := mustRead(t, "testdata/everything.graphql")
	var mw http.Handler
	var seen bool
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = true })
	send := func(r *http.Request, want string) {
		t.Helper()
		seen = false
		rec := httptest.NewRecorder()
		mw.ServeHTTP(rec, r)
		var got refusal
		if want == "" {
			if !seen || rec.Code != http.StatusOK {
				t.Errorf("status %d, body %s; want the request passed to next", rec.Code, rec.Body)
			}
			return
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); seen || err != nil || len(got.Errors) != 1 || got.Errors[0].Extensions.Code != want {
			t.Errorf("status %d, body %s; want the request refused with %s", rec.Code, rec.Body, want)
		}
	}
	mw = limits.Config{}.Middleware(next)
	for range 3 {
		send(post(jsonBody(t, map[string]any{"query": ok}), "application/json"), "")
		send(post(jsonBody(t, map[string]any{"query": ok, "operationName": "Everything"}), "application/json"), "")
		send(get(url.Values{"query": {ok}}), "")
		send(post(jsonBody(t, map[string]any{"query": deep}), "application/json"), apierr.CodeQueryTooDeep)
		send(get(url.Values{"query": {deep}}), apierr.CodeQueryTooDeep)
		send(post(jsonBody(t, map[string]any{"query": "query A {a} query B " + deep, "operationName": "A"}), "application/json"), apierr.CodeQueryTooDeep)
		send(post(jsonBody(t, map[string]any{"query": "query A {a} query B " + deep, "operationName": "B"}), "application/json"), apierr.CodeQueryTooDeep)
	}
	// The same text with escapes, and a deep one that differs from a
	// passing one by an escape only.
	escaped := strings.ReplaceAll(strconv.Quote(ok), "{", `\u007b`)
	send(post(`{"query": `+escaped+`}`, "application/json"), "")
	send(post(`{"query": "{a}"}`, "application/json"), "")
	send(post(`{"query": "{a\u007d"}`, "application/json"), "")
	send(post(`{"query": "`+strings.Replace(deep, "}", `\u007d`, 1)+`"}`, "application/json"), apierr.CodeQueryTooDeep)

	// More passing texts than are remembered, then refusals again.
	for i := range 1100 {
		send(post(jsonBody(t, map[string]any{"query": fmt.Sprintf("{a%d}", i)}), "application/json"), "")
	}
	send(post(jsonBody(t, map[string]any{"query": deep}), "application/json"), apierr.CodeQueryTooDeep)
	send(post(jsonBody(t, map[string]any{"query": ok}), "application/json"), "")

	// What passed one Middleware is checked by another.
	lax := limits.Config{MaxDepth: 20}.Middleware(next)
	lax.ServeHTTP(httptest.NewRecorder(), post(jsonBody(t, map[string]any{"query": deep}), "application/json"))
	send(post(jsonBody(t, map[string]any{"query": deep}), "application/json"), apierr.CodeQueryTooDeep)
}
