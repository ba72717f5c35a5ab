package limits

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// lexSeeds are documents whose lexical reading is easy to get wrong.
var lexSeeds = []string{
	"{a}",
	"{a{b{c}}}",
	"query Q { a: b c: c d { e: f } }",
	"query Q($v: In = {a: {b: [1, {c: 2}]}} @x, $w: Int @y) @z { a(x: {y: {z: 1}}) @d(if: true) { b } }",
	"mutation M { a } subscription S { b } query { c } { d }",
	"{ ...F ... on Q { a { b } } ... @include(if: true) { c } ... { d } ...G @skip(if: false) e { f } }",
	"fragment F on Q { a: b { c: d } } fragment G on Q @d { e } query on { f }",
	"{ x: __schema { types { fields { type { ofType { name } } } } } __type(name: \"X\") { a { b } } }",
	"{ __schema { a } } fragment T on __Type { fields { type { ofType { ofType { name } } } } }",
	"fragment F($x: Int) on T { a }",
	`"desc" query Q { a } """block""" fragment F on T { b }`,
	"{ a: a b: b c: d }",
	"query Q { ...on T { a } }",
	"{ a(x: \"}{)(\") { b } }",
	"# comment\n{ a # comment {\n b }",
	"{a} fragment F on Q {b{c{d{e}}}} fragment F on Q {x}",
	"query A {a{b}} query B {c: d e: f}",
}

// checkLexicalBounds fails when the lexical pass finds more in a definition
// than the walk of the parsed document: it would refuse what the limits
// allow.
func checkLexicalBounds(t *testing.T, query string) {
	defs, _, ok := lexQuery(query, -1)
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if !ok || err != nil {
		return // gqlgen refuses it
	}
	var ops, frags []lexDef
	for _, d := range defs {
		if d.operation {
			ops = append(ops, d)
		} else {
			frags = append(frags, d)
		}
	}
	if len(ops) != len(doc.Operations) || len(frags) != len(doc.Fragments) {
		t.Fatalf("lexQuery(%q) found %d operations and %d fragments; the parser %d and %d",
			query, len(ops), len(frags), len(doc.Operations), len(doc.Fragments))
	}
	w := newWalker(doc)
	for i, op := range doc.Operations {
		if ops[i].name != op.Name {
			t.Errorf("lexQuery(%q): operation %d named %q, want %q", query, i, ops[i].name, op.Name)
		}
		compareShapes(t, query, ops[i], w.operation(op), true)
	}
	for i, f := range doc.Fragments {
		compareShapes(t, query, frags[i], w.standalone(f), false)
	}
}

func compareShapes(t *testing.T, query string, l lexDef, s shape, op bool) {
	t.Helper()
	if l.depth > s.depth || l.aliases > s.aliases || l.directives > s.directives || (op && l.rootFields > s.fields) {
		t.Errorf("lexQuery(%q): %+v exceeds the parsed %+v", query, l, s)
	}
}

func TestLexicalBounds(t *testing.T) {
	for _, q := range lexSeeds {
		checkLexicalBounds(t, q)
	}
	for _, name := range []string{"testdata/everything.graphql", "testdata/introspection.graphql"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		checkLexicalBounds(t, string(b))
	}
}

func FuzzLexicalBounds(f *testing.F) {
	for _, q := range lexSeeds {
		f.Add(q)
	}
	f.Fuzz(checkLexicalBounds)
}

// genDoc writes a random executable document: the shapes the lexical pass
// must read right, in random combinations.
type genDoc struct {
	r *rand.Rand
	b strings.Builder
}

func (g *genDoc) pick(s ...string) string { return s[g.r.IntN(len(s))] }

func (g *genDoc) value(depth int) {
	switch n := g.r.IntN(6); {
	case n == 0 && depth < 3:
		g.b.WriteString("{")
		for i := range g.r.IntN(3) {
			fmt.Fprintf(&g.b, " k%d: ", i)
			g.value(depth + 1)
		}
		g.b.WriteString("}")
	case n == 1 && depth < 3:
		g.b.WriteString("[")
		for range g.r.IntN(3) {
			g.value(depth + 1)
			g.b.WriteString(" ")
		}
		g.b.WriteString("]")
	default:
		g.b.WriteString(g.pick(`"s}{)(:@..."`, "1", "-2.5e3", "true", "null", "ENUM", "$v", `"""b{"""`))
	}
}

func (g *genDoc) args() {
	if g.r.IntN(3) == 0 {
		g.b.WriteString("(a: ")
		g.value(0)
		g.b.WriteString(")")
	}
}

func (g *genDoc) directives() {
	for range g.r.IntN(3) {
		g.b.WriteString(g.pick(" @include", " @skip", " @d"))
		g.args()
	}
}

func (g *genDoc) set(depth int) {
	g.b.WriteString(" {")
	for range 1 + g.r.IntN(4) {
		switch n := g.r.IntN(10); {
		case n < 6 || depth > 4:
			g.b.WriteString(" ")
			if g.r.IntN(3) == 0 {
				g.b.WriteString(g.pick("a", "x", "on", "f", "__schema") + ": ")
			}
			g.b.WriteString(g.pick("a", "f", "on", "fragment", "query", "__schema", "__type", "__typename"))
			g.args()
			g.directives()
			if g.r.IntN(2) == 0 && depth <= 4 {
				g.set(depth + 1)
			}
		case n < 8:
			g.b.WriteString(" ..." + g.pick("F0", "F1", "F2", "Fx"))
			g.directives()
		default:
			g.b.WriteString(" ..." + g.pick("", " on T", " on __Type", "on Q"))
			g.directives()
			g.set(depth + 1)
		}
		if g.r.IntN(5) == 0 {
			g.b.WriteString(" # c {\n")
		}
	}
	g.b.WriteString(" }")
}

func (g *genDoc) doc() string {
	for i := range 1 + g.r.IntN(4) {
		if g.r.IntN(4) == 0 {
			g.b.WriteString(` "description" `)
		}
		switch g.r.IntN(4) {
		case 0:
			g.set(0)
		case 1:
			fmt.Fprintf(&g.b, " fragment F%d on %s", i, g.pick("T", "Q", "__Type", "on"))
			g.directives()
			g.set(0)
		default:
			g.b.WriteString(" " + g.pick("query", "mutation", "subscription"))
			if g.r.IntN(2) == 0 {
				g.b.WriteString(" " + g.pick("Q", "on", "fragment", "query"))
			}
			if g.r.IntN(2) == 0 {
				g.b.WriteString("($v: [In!] = ")
				g.value(0)
				g.directives()
				g.b.WriteString(")")
			}
			g.directives()
			g.set(0)
		}
	}
	return g.b.String()
}

// TestLexicalBoundsGenerated reads random valid documents, which fuzzing
// bytes seldom makes.
func TestLexicalBoundsGenerated(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	parsed := 0
	for range 5000 {
		g := &genDoc{r: r}
		q := g.doc()
		if _, err := parser.ParseQuery(&ast.Source{Input: q}); err == nil {
			parsed++
		}
		checkLexicalBounds(t, q)
		if t.Failed() {
			return
		}
	}
	if parsed < 2500 {
		t.Errorf("only %d of 5000 generated documents parse", parsed)
	}
}
