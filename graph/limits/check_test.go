package limits_test

import (
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/graph/limits"
	"github.com/mkgraph/mkgraph/internal/apierr"
)

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
