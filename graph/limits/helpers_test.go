package limits_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/graph/limits"
	"github.com/mkgraph/mkgraph/internal/apierr"
)

// nest returns a query whose longest path has depth fields: {a{a{a}}}.
func nest(depth int) string {
	return "{" + strings.Repeat("a{", depth-1) + "a" + strings.Repeat("}", depth-1) + "}"
}

// numbered returns open, then item formatted with 0 to n-1, then close.
func numbered(open, item, close string, n int) string {
	var b strings.Builder
	b.WriteString(open)
	for i := range n {
		fmt.Fprintf(&b, item, i)
	}
	b.WriteString(close)
	return b.String()
}

// aliases returns a query with n aliased fields under one root field.
func aliases(n int) string { return numbered("{l{", " a%d: x", "}}", n) }

// rootFields returns a query with n distinct root fields.
func rootFields(n int) string { return numbered("{", " f%d", "}", n) }

// directives returns a query with n directives, one per field.
func directives(n int) string { return numbered("{l{", " f%d @include(if: true)", "}}", n) }

// tokens returns a query of exactly n tokens (n >= 9), one field deep.
func tokens(n int) string {
	return "{l(a: [" + strings.Repeat(" 1", n-9) + "])}"
}

// sized returns a query of exactly n bytes (n >= 3).
func sized(n int) string {
	return "{a" + strings.Repeat(" ", n-3) + "}"
}

// fragmentChain returns a query whose fragments each spread the next one
// twice, n deep, the last holding one alias: 2^n aliases once expanded.
func fragmentChain(n int) string {
	var b strings.Builder
	b.WriteString("{l{...F0}}")
	for i := range n {
		fmt.Fprintf(&b, " fragment F%d on L {...F%d ...F%d}", i, i+1, i+1)
	}
	fmt.Fprintf(&b, " fragment F%d on L {a: x}", n)
	return b.String()
}

func mustRead(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func codeOf(e *apierr.Error) string {
	if e == nil {
		return ""
	}
	return e.Code
}

// serve sends r through Middleware and reports the answer and what next
// saw (nil body when next was not called).
func serve(t *testing.T, cfg limits.Config, r *http.Request) (rec *httptest.ResponseRecorder, seen []byte) {
	t.Helper()
	rec = httptest.NewRecorder()
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatalf("next: reading the body: %v", err)
		}
		seen = append([]byte{}, b...)
		w.WriteHeader(http.StatusTeapot)
	})
	cfg.Middleware(next).ServeHTTP(rec, r)
	return rec, seen
}

func post(body, contentType string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	return r
}

func get(params url.Values) *http.Request {
	return httptest.NewRequest(http.MethodGet, "/graphql?"+params.Encode(), nil)
}

func jsonBody(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// refusal is the GraphQL error document httperr.Write answers.
type refusal struct {
	Errors []struct {
		Message    string `json:"message"`
		Extensions struct {
			Code string `json:"code"`
		} `json:"extensions"`
	} `json:"errors"`
	Data json.RawMessage `json:"data"`
}
