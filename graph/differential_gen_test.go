package graph

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// The generator of the differential tests: GraphQL requests over the
// schema, from a seeded source (TestExecutorsAgreeGenerated) or from fuzz
// bytes (FuzzExecutorsAgree). Most are valid; some are not, on purpose:
// both executors must answer those the same too.

// diffChooser makes the generator's choices.
type diffChooser interface {
	intn(n int) int // in [0, n)
}

type randChooser struct{ r *rand.Rand }

func (c randChooser) intn(n int) int { return c.r.IntN(n) }

// byteChooser reads the choices from fuzz bytes, then from a generator
// seeded by them: every input makes a whole document, and its first bytes
// steer it.
type byteChooser struct {
	data []byte
	rest *rand.Rand
}

func newByteChooser(data []byte) *byteChooser {
	h := fnv.New64a()
	h.Write(data)
	return &byteChooser{data: data, rest: rand.New(rand.NewPCG(h.Sum64(), uint64(len(data))))}
}

func (c *byteChooser) intn(n int) int {
	if n <= 1 {
		return 0
	}
	if len(c.data) == 0 {
		return c.rest.IntN(n)
	}
	v := int(c.data[0])
	c.data = c.data[1:]
	return v % n
}

// genSchema is the schema's object types: each field and, for an object
// field, its type.
var genSchema = map[string][][2]string{
	"Link": {{"id"}, {"institutionId"}, {"institutionName"}, {"institutionAvatar"}, {"state"}, {"errorCode"},
		{"provider"}, {"tags"}, {"webhook"}, {"products", "Products"}, {"availableProducts"}, {"accounts", "Account"}},
	"Products": {{"accounts", "ProductStatus"}, {"accountNumbers", "ProductStatus"}, {"identity", "ProductStatus"},
		{"transactions", "ProductStatus"}, {"investments", "ProductStatus"}, {"enrichment", "ProductStatus"}},
	"ProductStatus": {{"refreshedAt"}, {"lastAttemptedAt"}, {"errorCode"}, {"errorMessage"}, {"unavailable"}, {"lastEnriched"}},
	"Account": {{"id"}, {"type"}, {"name"}, {"nickname"}, {"mask"}, {"balances", "Balances"}, {"originalId"}, {"closed"},
		{"owners", "Owner"}},
	"Balances":    {{"currency"}, {"available"}, {"current"}, {"limit"}, {"balanceDate"}},
	"Owner":       {{"names"}, {"addresses", "Address"}, {"phoneNumbers", "PhoneNumber"}, {"emails", "Email"}},
	"Address":     {{"street"}, {"city"}, {"region"}, {"postalCode"}, {"country"}, {"primary"}},
	"PhoneNumber": {{"number"}, {"type"}, {"primary"}},
	"Email":       {{"address"}, {"primary"}},
}

// Pools of the generated values.
var (
	genGoodIDs = []string{sandbox.LinkSeed, sandbox.LinkHousehold, diffEscapes, diffNulls, diffNumbers, diffUnknown,
		diffAccounts, sandbox.LinkSparse, sandbox.LinkInternational, sandbox.LinkNovel, "mk_bench00", "mk_bench03"}
	genBadIDs = []string{diffNotFound, diffRateLimited, diffUnavailable, diffBadState, diffTimeout, diffPlainError,
		diffFetchPanic, diffDenied, diffAuthPanic, "", "..", "bad\x01id", strings.Repeat("y", 129)}
	genAccountIDs = []string{"acc_2GqW7xJz4Lm9PdRt8VbN3K", "acc_7YhK2mQ9sXc4VnB8LpT6Wd", "acc_6Tef269B6ZArSVpYrxtjBV",
		"acc_m1", "acc_m3", "acc_n1", "acc_esc_" + diffStrings[0], "acc_esc_" + diffStrings[1], "zzz", ""}
	// "deferred": a document with "defer" in it is delivered as @defer's
	// are (incremental.go's deliver), on a detached context.
	genAliases = []string{"a", "b", "x", "id", "name", "accounts", "link", "links", "__typename", "deferred"}
	genSpaces  = []string{" ", " ", " ", "\n", ", ", "\t", "\r\n", " # comment\n", ",\n  ", "\ufeff "}
	genAccepts = []string{"", "", "", "", "application/json", "application/graphql-response+json",
		"multipart/mixed; deferSpec=20220824", "text/event-stream", "application/xml", "*/*"}
)

// genVar is a variable of the document.
type genVar struct {
	name, typ string // typ with its default value, if any
	value     any
	omit      bool // not in the request's variables
}

// genFrag is a named fragment of the document.
type genFrag struct {
	name, on, text string
	vars           []string // the variables it uses, its spreads' included
}

// opGen generates one request.
type opGen struct {
	c        diffChooser
	nodes    int  // fields left
	invalid  bool // the document may be invalid
	vars     []*genVar
	frags    []*genFrag
	fragN    int
	aliasN   int
	deferred bool              // the document has an @defer
	used     []map[string]bool // the variables of the operation or fragment being written, innermost last
}

// generateRequest returns a request made of c's choices.
func generateRequest(c diffChooser) diffRequest {
	g := &opGen{c: c, nodes: 12 + c.intn(40), invalid: c.intn(100) >= 85}
	nOps := 1
	if g.chance(20) {
		nOps += 1 + g.c.intn(2)
	}
	type op struct {
		name, text string
		vars       map[string]bool
	}
	var ops []op
	for i := range nOps {
		name := ""
		if nOps > 1 || g.chance(50) {
			name = fmt.Sprintf("Op%d", i)
			if g.invalid && i > 0 && g.chance(10) {
				name = "Op0" // a name twice
			}
		}
		g.used = append(g.used, map[string]bool{})
		kind, body := "query", ""
		switch k := g.c.intn(100); {
		case k >= 97:
			kind, body = "mutation", "{ refreshIdentity(linkId: "+gqlQuote(g.id())+") { linkId } }"
		case k >= 95:
			kind, body = "subscription", "{ linkEvents(linkId: "+gqlQuote(g.id())+") { kind } }"
		default:
			body = g.selection("Query", 0)
		}
		vars := g.used[len(g.used)-1]
		g.used = g.used[:len(g.used)-1]
		ops = append(ops, op{name, g.header(kind, name, vars) + body, vars})
	}
	var b strings.Builder
	var fragsFirst = g.chance(20)
	writeFrags := func() {
		for _, f := range g.frags {
			fmt.Fprintf(&b, "fragment %s on %s %s\n", f.name, f.on, f.text)
		}
	}
	if fragsFirst {
		writeFrags()
	}
	for _, o := range ops {
		b.WriteString(o.text)
		b.WriteString("\n")
	}
	if !fragsFirst {
		writeFrags()
	}

	chosen := ops[g.c.intn(len(ops))]
	r := diffRequest{Query: b.String(), OperationName: chosen.name}
	switch k := g.c.intn(100); {
	case k >= 97:
		r.OperationName = "Nope"
	case k >= 94:
		r.OperationName = ""
	}
	if g.chance(70) || len(g.vars) > 0 {
		r.Variables = map[string]any{}
		all := g.chance(30)
		for _, v := range g.vars {
			if !v.omit && (all || chosen.vars[v.name]) {
				r.Variables[v.name] = v.value
			}
		}
		if g.chance(5) {
			r.Variables["unused"] = "x"
		}
	}
	if g.chance(10) {
		r.Method = "GET"
	}
	r.Accept = genAccepts[g.c.intn(len(genAccepts))]
	if strings.Contains(r.Query, "@defer") && r.Accept != "" {
		r.Accept = "" // streamed, @defer's parts come in the order they finish (see TestExecutorsAgreeCorpus)
	}
	return r
}

func (g *opGen) chance(pct int) bool { return g.c.intn(100) >= 100-pct }

func (g *opGen) space() string { return genSpaces[g.c.intn(len(genSpaces))] }

// header is an operation's header, with the definitions of vars.
func (g *opGen) header(kind, name string, vars map[string]bool) string {
	if name == "" && len(vars) == 0 && kind == "query" && g.chance(60) {
		return ""
	}
	var defs []string
	for _, v := range g.vars {
		if vars[v.name] {
			defs = append(defs, "$"+v.name+": "+v.typ)
		}
	}
	if g.invalid && g.chance(10) && len(defs) > 0 {
		defs = defs[1:] // a variable used, not defined
	}
	h := kind
	if name != "" {
		h += " " + name
	}
	if len(defs) > 0 {
		h += "(" + strings.Join(defs, ","+g.space()) + ")"
	}
	if g.invalid && g.chance(5) {
		h += " @include(if: true)" // not allowed on an operation
	}
	return h + " "
}

// id is a link id: most answer, many fail; a few are the large link.
func (g *opGen) id() string {
	switch k := g.c.intn(200); {
	case k == 199:
		return sandbox.LinkLarge
	case k >= 120:
		return genBadIDs[g.c.intn(len(genBadIDs))]
	}
	return genGoodIDs[g.c.intn(len(genGoodIDs))]
}

// variable returns $name of a new variable of typ, or of one already there.
func (g *opGen) variable(prefix, typ string, value any) string {
	var v *genVar
	if g.chance(40) {
		for _, old := range g.vars {
			if strings.HasPrefix(old.name, prefix) && old.typ == typ {
				v = old
				break
			}
		}
	}
	if v == nil {
		v = &genVar{name: fmt.Sprintf("%s%d", prefix, len(g.vars)), typ: typ, value: value}
		if (strings.Contains(typ, "=") || !strings.HasSuffix(typ, "!") || g.invalid) && g.chance(20) {
			v.omit = true // its default, null, or an error
		}
		if g.invalid && g.chance(10) {
			v.value = []any{true, 1.5, map[string]any{}, nil, "x"}[g.c.intn(5)]
		}
		g.vars = append(g.vars, v)
	}
	g.used[len(g.used)-1][v.name] = true
	return "$" + v.name
}

// directives are a selection's @include and @skip, mostly none.
func (g *opGen) directives() string {
	if !g.chance(20) {
		return ""
	}
	var b strings.Builder
	names := []string{"include", "skip"}
	switch {
	case g.chance(25):
		names = names[:2] // both
	case g.invalid && g.chance(10):
		names = []string{"skip", "skip"} // not repeatable
	default:
		names = names[g.c.intn(2):][:1]
	}
	for _, name := range names {
		var cond string
		switch k := g.c.intn(10); {
		case k < 4:
			cond = []string{"true", "false"}[g.c.intn(2)]
		case k < 7:
			cond = g.variable("b", "Boolean!", g.c.intn(2) == 0)
		case k < 9:
			def := []string{"true", "false"}[g.c.intn(2)]
			cond = g.variable("d"+def, "Boolean = "+def, []any{true, false, nil}[g.c.intn(3)])
		case g.invalid:
			cond = g.variable("n", "Boolean", true) // nullable where Boolean! is expected
		default:
			cond = g.variable("b", "Boolean!", true)
		}
		fmt.Fprintf(&b, " @%s(if: %s)", name, cond)
	}
	if g.invalid && g.chance(10) {
		b.WriteString([]string{" @deprecated", " @nope", " @skip", " @include(if: 1)"}[g.c.intn(4)])
	}
	return b.String()
}
