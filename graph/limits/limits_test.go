package limits_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/mkgraph/mkgraph/graph/limits"
	"github.com/mkgraph/mkgraph/internal/apierr"
)

// nest returns a query whose longest path has depth fields: {a{a{a}}}.
func nest(depth int) string {
	return "{" + strings.Repeat("a{", depth-1) + "a" + strings.Repeat("}", depth-1) + "}"
}

// aliases returns a query with n aliased fields under one root field.
func aliases(n int) string {
	var b strings.Builder
	b.WriteString("{l{")
	for i := range n {
		fmt.Fprintf(&b, " a%d: x", i)
	}
	b.WriteString("}}")
	return b.String()
}

// rootFields returns a query with n distinct root fields.
func rootFields(n int) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		fmt.Fprintf(&b, " f%d", i)
	}
	b.WriteString("}")
	return b.String()
}

// directives returns a query with n directives, one per field.
func directives(n int) string {
	var b strings.Builder
	b.WriteString("{l{")
	for i := range n {
		fmt.Fprintf(&b, " f%d @include(if: true)", i)
	}
	b.WriteString("}}")
	return b.String()
}

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

func TestCheck(t *testing.T) {
	const (
		large      = apierr.CodeQueryTooLarge
		manyTokens = apierr.CodeTooManyTokens
		deep       = apierr.CodeQueryTooDeep
		manyAlias  = apierr.CodeTooManyAliases
		manyDirs   = apierr.CodeTooManyDirectives
		manyRoots  = apierr.CodeTooManyRootFields
		repeats    = apierr.CodeTooManyRepeats
	)
	tests := []struct {
		name   string
		cfg    limits.Config
		query  string
		opName string
		want   string // code; "" for allowed
	}{
		{"bytes at limit", limits.Config{MaxQueryBytes: 20}, sized(20), "", ""},
		{"bytes over limit", limits.Config{MaxQueryBytes: 20}, sized(21), "", large},

		{"tokens at limit", limits.Config{MaxTokens: 10}, tokens(10), "", ""},
		{"tokens over limit", limits.Config{MaxTokens: 10}, tokens(11), "", manyTokens},
		{"comments are not tokens", limits.Config{MaxTokens: 10}, "# a b c d e f\n" + tokens(10) + " # g h i", "", ""},
		{"a string is one token", limits.Config{MaxTokens: 9}, `{a(s: "x y z w v") b}`, "", ""},
		{"tokens counted before depth", limits.Config{MaxTokens: 10, MaxDepth: 1}, nest(4), "", manyTokens},

		{"depth at limit", limits.Config{MaxDepth: 3}, nest(3), "", ""},
		{"depth over limit", limits.Config{MaxDepth: 3}, nest(4), "", deep},
		{"depth through a fragment at limit", limits.Config{MaxDepth: 3}, "{a{...F}} fragment F on T {b{c}}", "", ""},
		{"depth through a fragment over limit", limits.Config{MaxDepth: 3}, "{a{...F}} fragment F on T {b{c{d}}}", "", deep},
		{"depth through nested fragments over limit", limits.Config{MaxDepth: 3}, "{a{...F}} fragment F on T {b{...G}} fragment G on T {c{d}}", "", deep},
		{"inline fragments add no depth", limits.Config{MaxDepth: 3}, "{a{... on T {b{... on U {c}}}}}", "", ""},
		{"depth of the deepest branch", limits.Config{MaxDepth: 3}, "{x a{b{c}} y{z}}", "", ""},
		{"introspection is one deep", limits.Config{MaxDepth: 3}, "{__schema{types{fields{type{ofType{ofType{name}}}}}}}", "", ""},
		{"__type is one deep", limits.Config{MaxDepth: 3}, `{__type(name: "Link"){fields{type{ofType{ofType{name}}}}}}`, "", ""},
		{"introspection fragments are one deep", limits.Config{MaxDepth: 3}, "{__schema{types{...T}}} fragment T on __Type {fields{type{ofType{ofType{name}}}}}", "", ""},
		{"fields beside introspection still count", limits.Config{MaxDepth: 3}, "{__schema{types{name}} " + nest(4)[1:], "", deep},

		{"aliases at limit", limits.Config{MaxAliases: 2}, aliases(2), "", ""},
		{"aliases over limit", limits.Config{MaxAliases: 2}, aliases(3), "", manyAlias},
		{"aliases at the root", limits.Config{MaxAliases: 2}, "{a: l b: l c: l}", "", manyAlias},
		{"aliases in a fragment", limits.Config{MaxAliases: 2}, "{l{...F}} fragment F on L {a: x b: y c: z}", "", manyAlias},
		{"aliases in an inline fragment", limits.Config{MaxAliases: 2}, "{l{... on L {a: x b: y c: z}}}", "", manyAlias},
		{"aliases in a fragment spread once", limits.Config{MaxAliases: 3}, "{l{...F}} fragment F on L {a: x b: y}", "", ""},
		{"aliases in a fragment spread twice", limits.Config{MaxAliases: 3}, "{l{...F} m{...F}} fragment F on L {a: x b: y}", "", manyAlias},
		{"aliases of a fragment spread 2^40 times", limits.Config{}, fragmentChain(40), "", manyAlias},
		{"no alias is not an alias", limits.Config{MaxAliases: 1, MaxRepeats: -1}, "{l{" + strings.Repeat(" x", 50) + "}}", "", ""},

		{"fragment cycle", limits.Config{}, "{l{...A}} fragment A on L {x ...B} fragment B on L {y ...A}", "", ""},
		{"fragment spreading itself", limits.Config{}, "{l{...A}} fragment A on L {a{...A}}", "", ""},
		{"fragment cycle still counted once", limits.Config{MaxAliases: 2}, "{l{...A}} fragment A on L {a: x b: y c: z ...A}", "", manyAlias},
		{"unknown fragment", limits.Config{}, "{l{...Nope}}", "", ""},

		{"directives at limit", limits.Config{MaxDirectives: 2}, directives(2), "", ""},
		{"directives over limit", limits.Config{MaxDirectives: 2}, directives(3), "", manyDirs},
		{"directives on operation, variable, field", limits.Config{MaxDirectives: 2}, "query Q($v: Int @a) @b {l @c}", "", manyDirs},
		{"directives on spread, inline fragment, fragment", limits.Config{MaxDirectives: 2}, "{l{...F @a ... @b {x}}} fragment F on L @c {y}", "", manyDirs},
		{"directives in a fragment spread twice", limits.Config{MaxDirectives: 2}, "{l{...F} m{...F}} fragment F on L {x @a}", "", ""},
		{"directives in a fragment spread three times", limits.Config{MaxDirectives: 2}, "{l{...F} m{...F} n{...F}} fragment F on L {x @a}", "", manyDirs},
		{"repeated directive", limits.Config{MaxDirectives: 2}, "{l @a @a @a}", "", manyDirs},

		{"root fields at limit", limits.Config{MaxRootFields: 2}, rootFields(2), "", ""},
		{"root fields over limit", limits.Config{MaxRootFields: 2}, rootFields(3), "", manyRoots},
		{"root fields through a fragment", limits.Config{MaxRootFields: 2}, "{a ...F} fragment F on Query {b c}", "", manyRoots},
		{"root fields through an inline fragment", limits.Config{MaxRootFields: 2}, "{a ... on Query {b c}}", "", manyRoots},
		{"aliased root fields", limits.Config{MaxRootFields: 2}, "{a x: b y: b}", "", manyRoots},
		{"nested fields are not root fields", limits.Config{MaxRootFields: 2}, "{a{b c d e}}", "", ""},

		{"repeats at limit", limits.Config{MaxRepeats: 2}, "{l{id id id}}", "", ""},
		{"repeats over limit", limits.Config{MaxRepeats: 2}, "{l{id id id id}}", "", repeats},
		{"repeated alias", limits.Config{MaxRepeats: 2}, "{l{a: x a: y a: z a: w}}", "", repeats},
		{"repeats through inline fragments", limits.Config{MaxRepeats: 2}, "{l{id ... on L {id} ... on L {id id}}}", "", repeats},
		{"repeats across selections", limits.Config{MaxRepeats: 2}, "{l{id id} m{id id} n{id id}}", "", repeats},
		{"a fragment's fields do not repeat its set's", limits.Config{MaxRepeats: 1}, "{l{id name ...F}} fragment F on L {id name}", "", ""},
		{"spreads after the first repeat", limits.Config{MaxRepeats: 2}, "{l{...A ...B ...C ...D}} fragment A on L {a} fragment B on L {b} fragment C on L {c} fragment D on L {d}", "", repeats},
		{"spreads at limit", limits.Config{MaxRepeats: 2}, "{l{...A ...B ...C}} fragment A on L {a} fragment B on L {b} fragment C on L {c}", "", ""},
		{"repeats in a fragment spread twice", limits.Config{MaxRepeats: 2}, "{l{...F} m{...F}} fragment F on L {id id}", "", ""},
		{"repeats in a fragment spread three times", limits.Config{MaxRepeats: 2}, "{l{...F} m{...F} n{...F}} fragment F on L {id id}", "", repeats},

		{"operationName picks the operation reported", limits.Config{MaxDepth: 3, MaxAliases: 2}, "query A " + nest(4) + " query B " + aliases(3), "A", deep},
		{"operationName picks the other", limits.Config{MaxDepth: 3, MaxAliases: 2}, "query A " + nest(4) + " query B " + aliases(3), "B", manyAlias},
		{"no operationName: document order", limits.Config{MaxDepth: 3, MaxAliases: 2}, "query A " + nest(4) + " query B " + aliases(3), "", deep},
		{"a hostile operation that would not run", limits.Config{MaxDepth: 3}, "query A {a} query B " + nest(4), "A", deep},
		{"unknown operationName", limits.Config{MaxDepth: 3}, "query A {a} query B " + nest(4), "C", deep},
		{"an operation within limits", limits.Config{MaxDepth: 3}, "query A {a} query B " + nest(3), "B", ""},
		{"a fragment no operation spreads", limits.Config{MaxDepth: 3}, "{a} fragment F on Q " + nest(4), "", deep},
		{"duplicate fragment names", limits.Config{MaxDepth: 3}, "{a{...F}} fragment F on Q {b} fragment F on Q " + nest(4), "", deep},

		{"empty query", limits.Config{}, "", "", ""},
		{"syntax error", limits.Config{MaxDepth: 3}, "{a{b{c", "", ""},
		{"syntax error over a limit", limits.Config{MaxDepth: 2}, "{a{b{c", "", deep},
		{"lexer error", limits.Config{MaxDepth: 1}, `{a{b{c(s: "unterminated}}}`, "", ""},
		{"negative turns a limit off", limits.Config{MaxDepth: -1, MaxTokens: -1}, nest(300), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg.Check(tt.query, tt.opName)
			if codeOf(got) != tt.want {
				t.Errorf("Check(%.60q, %q) = %v, want code %q", tt.query, tt.opName, got, tt.want)
			}
			if got != nil && (got.Message == "" || strings.Contains(got.Message, tt.query)) {
				t.Errorf("Check(%.60q) message %q: want a fixed message that does not echo the query", tt.query, got.Message)
			}
		})
	}
}

// TestDefaults holds each default limit at exactly its value (allowed) and
// one over (refused), and the queries real frontends send to the defaults.
func TestDefaults(t *testing.T) {
	d := limits.Config{}.WithDefaults()
	want := limits.Config{
		MaxQueryBytes: limits.DefaultMaxQueryBytes, MaxTokens: limits.DefaultMaxTokens, MaxDepth: limits.DefaultMaxDepth,
		MaxAliases: limits.DefaultMaxAliases, MaxDirectives: limits.DefaultMaxDirectives, MaxRootFields: limits.DefaultMaxRootFields,
		MaxRepeats: limits.DefaultMaxRepeats, MaxBatch: 0,
	}
	if d != want {
		t.Errorf("Config{}.WithDefaults() = %+v, want %+v", d, want)
	}
	if got := (limits.Config{MaxDepth: -1, MaxBatch: 3}).WithDefaults(); got.MaxDepth != -1 || got.MaxBatch != 3 {
		t.Errorf("WithDefaults changed set limits: %+v", got)
	}

	repeated := func(n int) string { return "{l{" + strings.Repeat(" id", n+1) + "}}" }
	tests := []struct {
		name  string
		query func(n int) string
		limit int
		code  string
	}{
		{"bytes", sized, d.MaxQueryBytes, apierr.CodeQueryTooLarge},
		{"tokens", tokens, d.MaxTokens, apierr.CodeTooManyTokens},
		{"depth", nest, d.MaxDepth, apierr.CodeQueryTooDeep},
		{"aliases", aliases, d.MaxAliases, apierr.CodeTooManyAliases},
		{"directives", directives, d.MaxDirectives, apierr.CodeTooManyDirectives},
		{"root fields", rootFields, d.MaxRootFields, apierr.CodeTooManyRootFields},
		{"repeats", repeated, d.MaxRepeats, apierr.CodeTooManyRepeats},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if e := (limits.Config{}).Check(tt.query(tt.limit), ""); e != nil {
				t.Errorf("at the default limit %d: %v, want nil", tt.limit, e)
			}
			if e := (limits.Config{}).Check(tt.query(tt.limit+1), ""); codeOf(e) != tt.code {
				t.Errorf("one over the default limit %d: %v, want %s", tt.limit, e, tt.code)
			}
		})
	}

	for _, name := range []string{"testdata/everything.graphql", "testdata/introspection.graphql"} {
		if e := (limits.Config{}).Check(mustRead(t, name), ""); e != nil {
			t.Errorf("Check(%s) = %v, want nil: the defaults must admit real queries", name, e)
		}
	}
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

func TestMiddleware(t *testing.T) {
	deep := nest(11) // over the default depth
	tests := []struct {
		name string
		cfg  limits.Config
		req  func(t *testing.T) *http.Request
		want string // code; "" when next must get the request
	}{
		{"GET allowed", limits.Config{}, func(t *testing.T) *http.Request {
			return get(url.Values{"query": {"{link(id: \"x\") {id}}"}})
		}, ""},
		{"GET refused", limits.Config{}, func(t *testing.T) *http.Request {
			return get(url.Values{"query": {deep}})
		}, apierr.CodeQueryTooDeep},
		{"GET too large", limits.Config{}, func(t *testing.T) *http.Request {
			return get(url.Values{"query": {sized(limits.DefaultMaxQueryBytes + 1)}})
		}, apierr.CodeQueryTooLarge},
		{"GET at the size limit, escaped", limits.Config{MaxQueryBytes: 40}, func(t *testing.T) *http.Request {
			return get(url.Values{"query": {`{a(s: "` + strings.Repeat("%", 30) + `")}`}}) // 40 bytes, 112 escaped
		}, ""},
		{"GET over the size limit, escaped", limits.Config{MaxQueryBytes: 40}, func(t *testing.T) *http.Request {
			return get(url.Values{"query": {`{a(s: "` + strings.Repeat("%", 31) + `")}`}})
		}, apierr.CodeQueryTooLarge},
		{"GET operationName", limits.Config{MaxDepth: 3, MaxAliases: 2}, func(t *testing.T) *http.Request {
			return get(url.Values{"query": {"query A " + nest(4) + " query B " + aliases(3)}, "operationName": {"B"}})
		}, apierr.CodeTooManyAliases},
		{"GET first query wins", limits.Config{}, func(t *testing.T) *http.Request {
			return httptest.NewRequest(http.MethodGet, "/graphql?query="+url.QueryEscape(deep)+"&query=%7Ba%7D", nil)
		}, apierr.CodeQueryTooDeep},
		{"GET escaped key", limits.Config{}, func(t *testing.T) *http.Request {
			return httptest.NewRequest(http.MethodGet, "/graphql?%71uery="+url.QueryEscape(deep), nil)
		}, apierr.CodeQueryTooDeep},
		{"GET persisted query by hash", limits.Config{}, func(t *testing.T) *http.Request {
			return get(url.Values{"extensions": {`{"persistedQuery":{"version":1,"sha256Hash":"ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"}}`}})
		}, ""},

		{"POST allowed", limits.Config{}, func(t *testing.T) *http.Request {
			return post(jsonBody(t, map[string]any{"query": mustRead(t, "testdata/everything.graphql"), "variables": map[string]any{"ids": []string{"a", "b"}}}), "application/json")
		}, ""},
		{"POST refused", limits.Config{}, func(t *testing.T) *http.Request {
			return post(jsonBody(t, map[string]any{"query": deep}), "application/json")
		}, apierr.CodeQueryTooDeep},
		{"POST operationName", limits.Config{MaxDepth: 3, MaxAliases: 2}, func(t *testing.T) *http.Request {
			return post(jsonBody(t, map[string]any{"query": "query A " + nest(4) + " query B " + aliases(3), "operationName": "B"}), "application/json")
		}, apierr.CodeTooManyAliases},
		{"POST too large", limits.Config{}, func(t *testing.T) *http.Request {
			return post(jsonBody(t, map[string]any{"query": sized(1 << 20)}), "application/json")
		}, apierr.CodeQueryTooLarge},
		{"POST too large, escaped", limits.Config{}, func(t *testing.T) *http.Request {
			return post(jsonBody(t, map[string]any{"query": "{" + strings.Repeat("a\n\"<", 1<<18) + "}"}), "application/json")
		}, apierr.CodeQueryTooLarge},
		{"POST at the size limit, escaped", limits.Config{MaxQueryBytes: 40}, func(t *testing.T) *http.Request {
			return post(`{"query": "{a(s: \"`+strings.Repeat(`\u00e9`, 15)+`\")}"}`, "application/json") // 40 bytes decoded, 102 escaped
		}, ""},
		{"POST over the size limit, escaped", limits.Config{MaxQueryBytes: 40}, func(t *testing.T) *http.Request {
			return post(`{"query": "{a(s: \"`+strings.Repeat(`\u00e9`, 15)+` \")}"}`, "application/json")
		}, apierr.CodeQueryTooLarge},
		{"POST escapes decoded", limits.Config{MaxDepth: 3}, func(t *testing.T) *http.Request {
			return post(`{"query":"{a\n{b\t{c{\u0064\u007d}}}"}`, "application/json")
		}, apierr.CodeQueryTooDeep},
		{"POST other members skipped", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"variables": {"a": [1, {"b": "]}\"{"}], "c": null, "d": -1.5e3, "e": true}, "query": "`+deep+`", "extensions": {}}`, "application/json")
		}, apierr.CodeQueryTooDeep},
		{"POST key in capitals", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"QUERY": "`+deep+`"}`, "application/json")
		}, apierr.CodeQueryTooDeep},
		{"POST escaped key", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"\u0071uery": "`+deep+`"}`, "application/json")
		}, apierr.CodeQueryTooDeep},
		{"POST last query wins", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"query": "{a}", "query": "`+deep+`"}`, "application/json")
		}, apierr.CodeQueryTooDeep},
		{"POST last query wins, the other way", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"query": "`+deep+`", "query": "{a}"}`, "application/json")
		}, ""},
		{"POST null query keeps the earlier one", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"query": "`+deep+`", "query": null}`, "application/json")
		}, apierr.CodeQueryTooDeep},
		{"POST trailing data after the object", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"query": "`+deep+`"} trailing`, "application/json")
		}, apierr.CodeQueryTooDeep},
		{"POST any Content-Type", limits.Config{}, func(t *testing.T) *http.Request {
			return post(jsonBody(t, map[string]any{"query": deep}), "text/plain")
		}, apierr.CodeQueryTooDeep},
		{"POST persisted query by hash", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"}}}`, "application/json")
		}, ""},
		{"POST persisted query registration", limits.Config{}, func(t *testing.T) *http.Request {
			return post(jsonBody(t, map[string]any{"query": deep, "extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": "x"}}}), "application/json")
		}, apierr.CodeQueryTooDeep},
		{"POST malformed JSON", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"query": "`+deep, "application/json")
		}, ""},
		{"POST not JSON", limits.Config{}, func(t *testing.T) *http.Request {
			return post("query="+deep, "application/x-www-form-urlencoded")
		}, ""},
		{"POST query of the wrong type", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"query": ["`+deep+`"]}`, "application/json")
		}, ""},
		{"POST empty body", limits.Config{}, func(t *testing.T) *http.Request {
			return post("", "application/json")
		}, ""},

		{"batch refused by default", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`[{"query": "{a}"}]`, "application/json")
		}, apierr.CodeBatchingDisabled},
		{"batch refused by default, even malformed", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`  [{"query": `, "application/json")
		}, apierr.CodeBatchingDisabled},
		{"batch at the cap", limits.Config{MaxBatch: 2}, func(t *testing.T) *http.Request {
			return post(`[{"query": "{a}"}, {"query": "{b}", "variables": {"x": [1, 2]}}]`, "application/json")
		}, ""},
		{"batch over the cap", limits.Config{MaxBatch: 2}, func(t *testing.T) *http.Request {
			return post(`[{"query": "{a}"}, {"query": "{b}"}, {"query": "{c}"}]`, "application/json")
		}, apierr.CodeBatchingDisabled},
		{"batch over the cap, the rest malformed", limits.Config{MaxBatch: 2}, func(t *testing.T) *http.Request {
			return post(`[{"query": "{a}"}, {"query": "{b}"}, {"query": `, "application/json")
		}, apierr.CodeBatchingDisabled},
		{"batch with a hostile operation", limits.Config{MaxBatch: 2}, func(t *testing.T) *http.Request {
			return post(`[{"query": "{a}"}, {"query": "`+deep+`"}]`, "application/json")
		}, apierr.CodeQueryTooDeep},
		{"empty batch", limits.Config{MaxBatch: 2}, func(t *testing.T) *http.Request {
			return post(`[ ]`, "application/json")
		}, ""},

		{"other methods pass", limits.Config{}, func(t *testing.T) *http.Request {
			return httptest.NewRequest(http.MethodOptions, "/graphql?query="+url.QueryEscape(deep), nil)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req(t)
			var sent []byte
			if r.Body != nil {
				sent, _ = io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(sent))
			}
			rec, seen := serve(t, tt.cfg, r)
			if tt.want == "" {
				if rec.Code != http.StatusTeapot {
					t.Fatalf("status %d, body %s; want the request passed to next", rec.Code, rec.Body)
				}
				if !bytes.Equal(seen, sent) {
					t.Errorf("next got body %.80q, want %.80q unchanged", seen, sent)
				}
				return
			}
			if seen != nil {
				t.Errorf("next was called; want the request refused with %s", tt.want)
			}
			if rec.Code != http.StatusBadRequest {
				t.Errorf("status %d, want 400", rec.Code)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			var got refusal
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("answer %s: %v", rec.Body, err)
			}
			if len(got.Errors) != 1 || got.Errors[0].Extensions.Code != tt.want || got.Errors[0].Message == "" || string(got.Data) != "null" {
				t.Errorf("answer %s, want one error with code %s and data null", rec.Body, tt.want)
			}
		})
	}
}

// TestWorstPassingDocument pins what BenchmarkValidateWorstPassing
// measures: the costliest document found for gqlgen's validation passes
// the defaults, and the quadratic one refused by MaxRepeats does not.
func TestWorstPassingDocument(t *testing.T) {
	if e := (limits.Config{}).Check(worstPassing(), ""); e != nil {
		t.Errorf("worstPassing() refused: %v", e)
	}
	if e := (limits.Config{}).Check(repeatedField(), ""); codeOf(e) != apierr.CodeTooManyRepeats {
		t.Errorf("repeatedField() = %v, want %s", e, apierr.CodeTooManyRepeats)
	}
}

// fullLink selects every field of a link.
const fullLink = `id institutionId institutionName institutionAvatar state errorCode provider tags webhook availableProducts
products { identity { refreshedAt errorCode } accounts { refreshedAt } }
accounts { id type name nickname mask originalId closed balances { currency available current limit }
owners { names emails { address primary } phoneNumbers { number type primary } addresses { street city region postalCode country primary } } }`

// worstPassing is one link selected in full, 21 times: every pair of copies
// is compared field by field.
func worstPassing() string {
	return "{" + strings.Repeat(` link(id: "x") {`+fullLink+`}`, limits.DefaultMaxRepeats+1) + "}"
}

// repeatedField is one field 1,990 times, within the token limit.
func repeatedField() string {
	return `{ link(id: "x") {` + strings.Repeat(" id", 1990) + "} }"
}

func benchValidate(b *testing.B, query string) {
	// The schema is read from its source, not from package graph, so that
	// these tests do not depend on the generated code.
	schema, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphqls", Input: mustRead(b, "../schema.graphqls")})
	if err != nil {
		b.Fatal(err)
	}
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if errs := validator.ValidateWithRules(schema, doc, rules.NewDefaultRules()); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}

// BenchmarkValidateWorstPassing is gqlgen's validation of the costliest
// document found within the defaults; BenchmarkValidateEverything of the
// full-schema query, and BenchmarkValidateRepeatedField of what MaxRepeats
// keeps out.
func BenchmarkValidateWorstPassing(b *testing.B) { benchValidate(b, worstPassing()) }
func BenchmarkValidateEverything(b *testing.B) {
	benchValidate(b, mustRead(b, "testdata/everything.graphql"))
}
func BenchmarkValidateRepeatedField(b *testing.B) { benchValidate(b, repeatedField()) }

// benchReject sends a request through Middleware b.N times and checks it is
// refused with code. The request is built once: parsing its URL and headers
// is the server's work, done before any middleware.
func benchReject(b *testing.B, cfg limits.Config, method, target string, body []byte, code string) {
	b.Helper()
	h := cfg.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.Fatalf("next called: want %s", code)
	}))
	r := httptest.NewRequest(method, target, nil)
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
		r.ContentLength = int64(len(body))
	}
	do := func() *httptest.ResponseRecorder {
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	rec := do()
	var got refusal
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusBadRequest || len(got.Errors) != 1 || got.Errors[0].Extensions.Code != code {
		b.Fatalf("answer %d %.200s, want 400 with %s", rec.Code, rec.Body, code)
	}
	b.SetBytes(int64(len(body) + len(target)))
	for b.Loop() {
		do()
	}
}

func queryBody(b *testing.B, query string) []byte {
	b.Helper()
	body, err := json.Marshal(map[string]string{"query": query})
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkRejectDeep: 600 nested fields, within the token limit, so the
// query is parsed and walked.
func BenchmarkRejectDeep(b *testing.B) {
	benchReject(b, limits.Config{}, http.MethodPost, "/graphql", queryBody(b, nest(600)), apierr.CodeQueryTooDeep)
}

// BenchmarkReject10000Aliases: 10,000 aliases of one link (refused on size).
func BenchmarkReject10000Aliases(b *testing.B) {
	var q strings.Builder
	q.WriteString("{")
	for i := range 10000 {
		fmt.Fprintf(&q, ` a%d: link(id: "x") { id }`, i)
	}
	q.WriteString("}")
	benchReject(b, limits.Config{}, http.MethodPost, "/graphql", queryBody(b, q.String()), apierr.CodeQueryTooLarge)
}

// BenchmarkRejectAliases: 500 aliases, within the size and token limits, so
// the query is parsed and walked.
func BenchmarkRejectAliases(b *testing.B) {
	benchReject(b, limits.Config{}, http.MethodPost, "/graphql", queryBody(b, aliases(500)), apierr.CodeTooManyAliases)
}

// BenchmarkRejectFragmentAliases: aliases that only fragment expansion
// multiplies past the limit, so the query is parsed and walked.
func BenchmarkRejectFragmentAliases(b *testing.B) {
	benchReject(b, limits.Config{}, http.MethodPost, "/graphql", queryBody(b, fragmentChain(40)), apierr.CodeTooManyAliases)
}

// BenchmarkRejectDeepAfterVariables: a deep query after 1 MiB of escaped
// quotes in variables, the slowest JSON to skip.
func BenchmarkRejectDeepAfterVariables(b *testing.B) {
	body := fmt.Appendf(nil, `{"variables": {"v": "%s"}, "query": %q}`, strings.Repeat(`\"`, 1<<19), nest(600))
	benchReject(b, limits.Config{}, http.MethodPost, "/graphql", body, apierr.CodeQueryTooDeep)
}

// BenchmarkReject100000Tokens: 100,000 tokens (refused on size).
func BenchmarkReject100000Tokens(b *testing.B) {
	benchReject(b, limits.Config{}, http.MethodPost, "/graphql", queryBody(b, tokens(100000)), apierr.CodeQueryTooLarge)
}

// BenchmarkRejectTokens: 8,000 tokens in 16 KiB, so they are counted.
func BenchmarkRejectTokens(b *testing.B) {
	benchReject(b, limits.Config{}, http.MethodPost, "/graphql", queryBody(b, tokens(8000)), apierr.CodeTooManyTokens)
}

// BenchmarkReject1MiBQuery: a 1 MiB query in a POST body.
func BenchmarkReject1MiBQuery(b *testing.B) {
	benchReject(b, limits.Config{}, http.MethodPost, "/graphql", queryBody(b, sized(1<<20)), apierr.CodeQueryTooLarge)
}

// BenchmarkReject1MiBQueryGET: a 1 MiB query in a URL (the server's header
// limit refuses it first; this is the middleware's own cost).
func BenchmarkReject1MiBQueryGET(b *testing.B) {
	benchReject(b, limits.Config{}, http.MethodGet, "/graphql?"+url.Values{"query": {sized(1 << 20)}}.Encode(), nil, apierr.CodeQueryTooLarge)
}

func batch(b *testing.B, n int) []byte {
	b.Helper()
	ops := make([]map[string]string, n)
	for i := range ops {
		ops[i] = map[string]string{"query": `{ link(id: "x") { id } }`}
	}
	body, err := json.Marshal(ops)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkRejectBatch1000: a JSON array of 1,000 operations, batching off.
func BenchmarkRejectBatch1000(b *testing.B) {
	benchReject(b, limits.Config{}, http.MethodPost, "/graphql", batch(b, 1000), apierr.CodeBatchingDisabled)
}

// BenchmarkRejectBatch1000Capped: the same with batches of 10 allowed.
func BenchmarkRejectBatch1000Capped(b *testing.B) {
	benchReject(b, limits.Config{MaxBatch: 10}, http.MethodPost, "/graphql", batch(b, 1000), apierr.CodeBatchingDisabled)
}

// BenchmarkAcceptEverything is what the limits add to a real request.
func BenchmarkAcceptEverything(b *testing.B) {
	body := queryBody(b, mustRead(b, "testdata/everything.graphql"))
	h := limits.Config{}.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	r := httptest.NewRequest(http.MethodPost, "/graphql", nil)
	r.Header.Set("Content-Type", "application/json")
	r.ContentLength = int64(len(body))
	for b.Loop() {
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
}

// TestMiddlewareConcurrent checks that requests served at once each reach
// next with their own body, though bodies are read into pooled buffers.
func TestMiddlewareConcurrent(t *testing.T) {
	h := limits.Config{}.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Header.Get("X-Want"))
		if string(b) != r.Header.Get("X-Want") {
			w.WriteHeader(http.StatusConflict)
		}
	}))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				body := fmt.Sprintf(`{"query": "{ link(id: \"%d-%d\") { id } }", "variables": {"pad": %q}}`, g, i, strings.Repeat("x", i*37))
				r := post(body, "application/json")
				r.Header.Set("X-Want", body)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if rec.Code != http.StatusOK {
					t.Errorf("request %d-%d: status %d", g, i, rec.Code)
					return
				}
			}
		})
	}
	wg.Wait()
}

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
