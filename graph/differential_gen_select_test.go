package graph

import (
	"fmt"
	"strings"
)

// The selections of the generator (differential_gen_test.go).

// selection is a selection set of typ ("Query" for the root).
func (g *opGen) selection(typ string, depth int) string {
	if g.invalid && g.chance(3) {
		return "{ }"
	}
	n := 1 + g.c.intn(4)
	items := make([]string, 0, n)
	for range n {
		if len(items) > 0 && g.chance(10) {
			items = append(items, items[g.c.intn(len(items))]) // the same selection twice
			continue
		}
		items = append(items, g.item(typ, depth))
	}
	return "{" + g.space() + strings.Join(items, g.space()) + g.space() + "}"
}

func (g *opGen) item(typ string, depth int) string {
	g.nodes--
	if g.nodes <= 0 || depth > 7 {
		return g.leaf(typ)
	}
	switch k := g.c.intn(100); {
	case k < 62:
		return g.field(typ, depth)
	case k < 70:
		return g.alias("__typename", typ) + "__typename" + g.directives()
	case k < 80:
		return g.inline(typ, depth)
	case k < 92:
		return g.spread(typ, depth)
	case typ == "Query" && k < 95:
		return []string{`__schema { queryType { name } }`, `__type(name: "Link") { name fields { name } }`}[g.c.intn(2)]
	case g.invalid:
		return []string{"nope", "__schema { queryType { name } }", `link(id: "x") { id }`, "...Nope", "... on Account { id }",
			"id(x: 1)", "id @defer"}[g.c.intn(7)]
	}
	return g.field(typ, depth)
}

// leaf is a selection that ends the document's growth.
func (g *opGen) leaf(typ string) string {
	if typ == "Query" || g.chance(30) {
		return "__typename"
	}
	for _, f := range genSchema[typ] {
		if f[1] == "" {
			return f[0]
		}
	}
	return "__typename"
}

// alias is a field's alias, mostly none; some are the same for two fields,
// or a field's name, which merges or conflicts.
func (g *opGen) alias(name, typ string) string {
	if !g.chance(20) {
		return ""
	}
	switch k := g.c.intn(10); {
	case k == 9:
		if fields := genSchema[typ]; len(fields) > 0 {
			return fields[g.c.intn(len(fields))][0] + ": "
		}
	case k == 8:
		return name + ":" + g.space()
	case k == 7:
		return genAliases[g.c.intn(len(genAliases))] + ": "
	}
	g.aliasN++
	return fmt.Sprintf("%s%d: ", name, g.aliasN)
}

func (g *opGen) field(typ string, depth int) string {
	if typ == "Query" {
		return g.rootField(depth)
	}
	fields := genSchema[typ]
	f := fields[g.c.intn(len(fields))]
	s := g.alias(f[0], typ) + f[0]
	if typ == "Link" && f[0] == "accounts" {
		s += g.accountsArgs()
	}
	s += g.directives()
	switch {
	case f[1] != "" && g.invalid && g.chance(5):
		return s // an object without a selection
	case f[1] != "":
		return s + " " + g.selection(f[1], depth+1)
	case g.invalid && g.chance(3):
		return s + " { id }" // a scalar with one
	}
	return s
}

func (g *opGen) rootField(depth int) string {
	name, args := "link", ""
	if g.chance(45) {
		name, args = "links", g.linksArgs()
	} else {
		args = g.linkArgs()
	}
	alias := g.alias(name, "Query")
	if alias == "" && g.chance(75) {
		g.aliasN++
		alias = fmt.Sprintf("l%d: ", g.aliasN) // root fields differ in their arguments: most have their own key
	}
	return alias + name + args + g.directives() + " " + g.selection("Link", depth+1)
}

func (g *opGen) linkArgs() string {
	switch k := g.c.intn(20); {
	case k < 11:
		return "(id: " + gqlQuote(g.id()) + ")"
	case k < 17:
		return "(id: " + g.variable("id", "ID!", g.id()) + ")"
	case k < 18:
		// A nullable variable with a default where ID! is expected; sent
		// null, it is null.
		return "(id: " + g.variable("od", "ID = "+gqlQuote(g.id()), []any{nil, g.id()}[g.c.intn(2)]) + ")"
	case k < 19:
		return "(id: 12)" // an Int is an ID
	case g.invalid:
		return []string{"", "(id: null)", "(id: 1.5)", `(ids: ["x"])`, `(id: "a", id: "b")`, "(id: true)"}[g.c.intn(6)]
	}
	return "(id: " + gqlQuote(g.id()) + ")"
}

func (g *opGen) ids(n int) []any {
	out := make([]any, 0, n)
	for range n {
		if len(out) > 0 && g.chance(25) {
			out = append(out, out[g.c.intn(len(out))]) // repeated
			continue
		}
		out = append(out, g.id())
	}
	return out
}

func quoteAll(list []any) string {
	var parts []string
	for _, v := range list {
		parts = append(parts, gqlQuote(fmt.Sprint(v)))
	}
	return strings.Join(parts, ", ")
}

func (g *opGen) linksArgs() string {
	switch k := g.c.intn(20); {
	case k < 8:
		return "(ids: [" + quoteAll(g.ids(g.c.intn(5))) + "])"
	case k < 14:
		return "(ids: " + g.variable("ids", "[ID!]!", g.ids(g.c.intn(8))) + ")"
	case k < 16:
		return "(ids: " + gqlQuote(g.id()) + ")" // one value is a list of one
	case k < 18:
		return "(ids: [" + g.variable("id", "ID!", g.id()) + ", " + gqlQuote(g.id()) + "])"
	case k < 19:
		return "(ids: [1, 2])"
	case g.invalid:
		return []string{"", "(ids: null)", "(ids: [null])", "(ids: {})", `(ids: [["x"]])`,
			"(ids: " + g.variable("nids", "[ID!]", g.ids(2)) + ")"}[g.c.intn(6)]
	}
	return "(ids: [" + quoteAll(g.ids(1+g.c.intn(3))) + "])"
}

func (g *opGen) accountIDs(n int) []any {
	out := make([]any, 0, n)
	for range n {
		out = append(out, genAccountIDs[g.c.intn(len(genAccountIDs))])
	}
	return out
}

func (g *opGen) accountsArgs() string {
	switch k := g.c.intn(20); {
	case k < 8:
		return ""
	case k < 10:
		return "(ids: null)"
	case k < 12:
		return "(ids: [])"
	case k < 15:
		return "(ids: [" + quoteAll(g.accountIDs(1+g.c.intn(4))) + "])"
	case k < 18:
		value := []any{nil, []any{}, g.accountIDs(1 + g.c.intn(3)), genAccountIDs[g.c.intn(len(genAccountIDs))]}[g.c.intn(4)]
		typ := "[ID!]"
		if g.chance(20) {
			typ = `[ID!] = ["acc_2GqW7xJz4Lm9PdRt8VbN3K", "zzz"]`
		}
		return "(ids: " + g.variable("a", typ, value) + ")"
	case k < 19:
		return "(ids: " + gqlQuote(genAccountIDs[g.c.intn(len(genAccountIDs))]) + ")"
	case g.invalid:
		return []string{"(ids: [null])", "(ids: 5.5)", "(nope: 1)", "(ids: {})"}[g.c.intn(4)]
	}
	return ""
}

func (g *opGen) inline(typ string, depth int) string {
	on := ""
	switch {
	case g.chance(70):
		on = " on " + typ
	case g.invalid && g.chance(20):
		on = " on Account"
	}
	d := g.directives()
	if typ == "Query" && !g.deferred && g.chance(3) {
		// gqlgen's, on both. One part per document (one fragment, at the
		// root): merged, the errors of several deferred parts come in the
		// order the parts finish.
		g.deferred = true
		d += " @defer"
	}
	return "..." + on + d + " " + g.selection(typ, depth+1)
}

// spread spreads a fragment on typ: one already in the document, or a new
// one (whose own selection may spread others).
func (g *opGen) spread(typ string, depth int) string {
	var f *genFrag
	if g.chance(50) {
		for _, old := range g.frags {
			if old.on == typ {
				f = old
				break
			}
		}
	}
	if f == nil {
		on := typ
		if g.invalid && g.chance(5) {
			on = "Email" // cannot be spread here
		}
		g.used = append(g.used, map[string]bool{})
		g.fragN++
		f = &genFrag{name: fmt.Sprintf("F%d", g.fragN), on: on}
		f.text = g.selection(on, depth+1)
		for v := range g.used[len(g.used)-1] {
			f.vars = append(f.vars, v)
		}
		g.used = g.used[:len(g.used)-1]
		g.frags = append(g.frags, f)
	}
	for _, v := range f.vars {
		g.used[len(g.used)-1][v] = true
	}
	return "..." + f.name + g.directives()
}
