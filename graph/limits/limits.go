// Package limits refuses hostile GraphQL operations before gqlgen parses and validates them.
//
// gqlgen validates a document before any of its extensions run, and some of
// its validation rules are quadratic: OverlappingFieldsCanBeMerged compares
// every pair of fields that share a response name, so 10,000 aliases or a
// field repeated a few thousand times cost a great deal of CPU before a
// complexity limit is even consulted. The limits therefore run as HTTP
// middleware on the request, before gqlgen parses anything, cheapest check
// first: the length of the query, decoded from the request once for the
// limits and the transport (body.go); then one pass of gqlparser's lexer,
// which stops at the first token over the limit and meanwhile finds what
// each definition selects as written (most hostile queries stop here); and
// only then a parse and one linear walk of the document, fragments
// expanded. Refusals therefore cost little more than decoding the request,
// which the transport would do anyway (the benchmarks measure them).
//
// Defaults are chosen so that a real frontend never meets them and an
// attacker always does. The schema is small and has no recursive types: a
// query for every field of every type (testdata/everything.graphql) is
// 1.4 KB, 169 tokens and 5 fields deep (links→accounts→owners→addresses→
// street), and GraphiQL's introspection query is 1.5 KB and 175 tokens.
//
//	MaxQueryBytes  16 KiB  11 times either; a 1 MiB query is 64 times over
//	MaxTokens      2,000   11 times either; about what 16 KiB of query holds
//	MaxDepth       10      twice the deepest path of the schema
//	MaxAliases     30      an alias per link for a page of 30 links (links(ids:) needs none)
//	MaxDirectives  20      @include or @skip on 20 fields, where real queries have a few
//	MaxRootFields  30      the same page of 30 aliased links; Query has two fields
//	MaxRepeats     20      colocated fragments spread into one selection; real queries have a handful
//	MaxBatch       0       batched requests refused: gqlgen's transports do not run them anyway
//
// Validation of the full-schema query is cheap. The costliest document we
// found within the defaults, 21 copies of a full link selection, is the
// most validation work the defaults admit (BenchmarkValidateWorstPassing
// measures it); 2,000 tokens of one repeated field, which MaxRepeats
// refuses, cost far more, since the quadratic rule compares every pair.
package limits

import (
	"fmt"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

// Defaults for Config; see the package comment for why.
const (
	DefaultMaxQueryBytes = 16 << 10
	DefaultMaxTokens     = 2000
	DefaultMaxDepth      = 10
	DefaultMaxAliases    = 30
	DefaultMaxDirectives = 20
	DefaultMaxRootFields = 30
	DefaultMaxRepeats    = 20
)

// Config sets the limits. A zero field takes its default; a negative one
// turns that limit off. MaxBatch is the exception: zero (and below) refuses
// batched requests.
type Config struct {
	MaxQueryBytes int // length of the query text in bytes
	MaxTokens     int // lexical tokens of the query, comments not counted
	MaxDepth      int // fields on the longest path, fragments expanded; __schema and __type count as one
	MaxAliases    int // aliased fields in one operation, counted again for each spread of their fragment
	MaxDirectives int // directives in one operation, fragments expanded the same way
	MaxRootFields int // fields directly under one operation, fragments expanded
	// MaxRepeats bounds the selections that repeat in their selection set:
	// a field under a response name the set already selects, and each
	// fragment spread after the set's first (inline fragments are part of
	// the set they are in). They are counted over one operation like
	// aliases. Validation compares each with the others pair by pair, and
	// the sub-selections of each pair the same way.
	MaxRepeats int
	MaxBatch   int // operations in one batched (JSON array) request; 0 refuses batches
}

// WithDefaults returns c with each zero limit set to its default.
func (c Config) WithDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxQueryBytes, DefaultMaxQueryBytes)
	def(&c.MaxTokens, DefaultMaxTokens)
	def(&c.MaxDepth, DefaultMaxDepth)
	def(&c.MaxAliases, DefaultMaxAliases)
	def(&c.MaxDirectives, DefaultMaxDirectives)
	def(&c.MaxRootFields, DefaultMaxRootFields)
	def(&c.MaxRepeats, DefaultMaxRepeats)
	return c
}

// over reports whether n breaks limit; a negative limit is off.
func over(n, limit int) bool { return limit >= 0 && n > limit }

// Check returns nil, or the error refusing query for a limit it breaks:
// facade.query_too_large, facade.too_many_tokens, facade.query_too_deep,
// facade.too_many_aliases, facade.too_many_directives,
// facade.too_many_root_fields, or facade.too_many_repeats.
//
// Every operation and fragment of the document is held to the limits, not
// only the one operationName selects, because gqlgen validates the whole
// document before it picks the operation: an alias bomb in an operation
// that never runs costs as much as one that does. The operation that would
// run is examined first, so when it breaks a limit its error is reported.
//
// A query that does not lex, or does not parse and breaks no limit before
// parsing, is let through: gqlgen answers it with its own syntax error,
// having done no more work than this.
func (c Config) Check(query, operationName string) *apierr.Error {
	c = c.WithDefaults()
	if over(len(query), c.MaxQueryBytes) {
		return tooLarge(c.MaxQueryBytes)
	}
	defs, n, ok := lexQuery(query, c.MaxTokens)
	if !ok {
		return nil
	}
	if over(n, c.MaxTokens) {
		return &apierr.Error{Code: apierr.CodeTooManyTokens,
			Message: fmt.Sprintf("The query has more than %d tokens.", c.MaxTokens)}
	}
	if e := c.checkLexical(defs, operationName); e != nil {
		return e
	}
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil {
		return nil
	}

	w := newWalker(doc)
	first := doc.Operations.ForName(operationName)
	if first != nil {
		if e := c.checkShape(w.operation(first), true); e != nil {
			return e
		}
	}
	for _, op := range doc.Operations {
		if op == first {
			continue
		}
		if e := c.checkShape(w.operation(op), true); e != nil {
			return e
		}
	}
	// Fragments that no operation spreads are validated too.
	for _, f := range doc.Fragments {
		if e := c.checkShape(w.standalone(f), false); e != nil {
			return e
		}
	}
	return nil
}

// checkShape holds one operation (root) or fragment to the limits.
func (c Config) checkShape(s shape, root bool) *apierr.Error {
	switch {
	case over(s.depth, c.MaxDepth):
		return &apierr.Error{Code: apierr.CodeQueryTooDeep,
			Message: fmt.Sprintf("The query nests fields more than %d deep.", c.MaxDepth)}
	case over(s.aliases, c.MaxAliases):
		return &apierr.Error{Code: apierr.CodeTooManyAliases,
			Message: fmt.Sprintf("The query has more than %d aliases.", c.MaxAliases)}
	case over(s.directives, c.MaxDirectives):
		return &apierr.Error{Code: apierr.CodeTooManyDirectives,
			Message: fmt.Sprintf("The query has more than %d directives.", c.MaxDirectives)}
	case root && over(s.fields, c.MaxRootFields):
		return &apierr.Error{Code: apierr.CodeTooManyRootFields,
			Message: fmt.Sprintf("The query selects more than %d root fields.", c.MaxRootFields)}
	case over(s.repeats, c.MaxRepeats):
		return &apierr.Error{Code: apierr.CodeTooManyRepeats,
			Message: fmt.Sprintf("The query repeats fields or fragment spreads in one selection more than %d times.", c.MaxRepeats)}
	}
	return nil
}

func tooLarge(limit int) *apierr.Error {
	return &apierr.Error{Code: apierr.CodeQueryTooLarge,
		Message: fmt.Sprintf("The query is longer than %d bytes.", limit)}
}

// ceiling bounds every count: a chain of fragments that each spread the
// next one twice multiplies counts exponentially.
const ceiling = 1 << 40

// add returns a+b, at most ceiling.
func add(a, b int) int {
	if a >= ceiling-b {
		return ceiling
	}
	return a + b
}

// shape is what a selection set adds up to once its fragments are expanded.
type shape struct {
	depth      int // fields on the longest path down from the set
	aliases    int // aliased fields, once per spread of their fragment
	directives int // directives, the same way
	fields     int // fields directly in the set, through fragments
	repeats    int // selections validation compares pairwise; see Config.MaxRepeats
}

// merge adds a fragment's shape to s: its fields join the set.
func (s *shape) merge(f shape) {
	s.depth = max(s.depth, f.depth)
	s.aliases = add(s.aliases, f.aliases)
	s.directives = add(s.directives, f.directives)
	s.fields = add(s.fields, f.fields)
	s.repeats = add(s.repeats, f.repeats)
}

// walker computes shapes, each named fragment once: spreading a fragment
// again reuses its shape, so the walk stays linear in the document however
// the counts multiply.
type walker struct {
	defs map[string]*ast.FragmentDefinition
	memo map[string]shape
	busy map[string]bool // fragments being walked: spreading one again is a cycle
}

func newWalker(doc *ast.QueryDocument) *walker {
	w := &walker{
		defs: make(map[string]*ast.FragmentDefinition, len(doc.Fragments)),
		memo: make(map[string]shape, len(doc.Fragments)),
		busy: make(map[string]bool),
	}
	for _, f := range doc.Fragments {
		if _, dup := w.defs[f.Name]; !dup {
			w.defs[f.Name] = f // the first, as gqlgen's lookup finds it
		}
	}
	return w
}

// fragment returns the shape of the named fragment. ok is false for an
// unknown fragment or one already being walked (a cycle): gqlgen refuses
// both in validation, so they add nothing here.
func (w *walker) fragment(name string) (s shape, ok bool) {
	if s, ok := w.memo[name]; ok {
		return s, true
	}
	def := w.defs[name]
	if def == nil || w.busy[name] {
		return shape{}, false
	}
	w.busy[name] = true
	s = w.definition(def)
	delete(w.busy, name)
	w.memo[name] = s
	return s, true
}

// operation returns the shape of an operation.
func (w *walker) operation(op *ast.OperationDefinition) shape {
	s := w.set(op.SelectionSet)
	s.directives = add(s.directives, len(op.Directives))
	for _, v := range op.VariableDefinitions {
		s.directives = add(s.directives, len(v.Directives))
	}
	return s
}

// standalone returns the shape of a fragment definition held to the limits
// on its own, as gqlgen validates it even when nothing spreads it.
func (w *walker) standalone(f *ast.FragmentDefinition) shape {
	var s shape
	if w.defs[f.Name] == f {
		s, _ = w.fragment(f.Name)
	} else {
		s = w.definition(f) // a duplicate name: gqlgen refuses it, after validating it
	}
	if strings.HasPrefix(f.TypeCondition, "__") {
		s.depth = 0 // an introspection fragment, like GraphiQL's TypeRef: see set
	}
	return s
}

func (w *walker) definition(def *ast.FragmentDefinition) shape {
	s := w.set(def.SelectionSet)
	s.directives = add(s.directives, len(def.Directives))
	return s
}

// set returns the shape of a selection set.
func (w *walker) set(set ast.SelectionSet) shape {
	var s shape
	var seen names
	w.collect(set, &s, &seen)
	return s
}

// collect adds the selections of set to s. Inline fragments belong to the
// set they are in, as they do for gqlgen's OverlappingFieldsCanBeMerged
// rule, which compares the fields of a set that share a response name pair
// by pair, and its fragment spreads pair by pair (and each with the set's
// own fields, but the fields of a named fragment only once per set).
func (w *walker) collect(set ast.SelectionSet, s *shape, seen *names) {
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			s.fields = add(s.fields, 1)
			s.directives = add(s.directives, len(sel.Directives))
			if sel.Alias != sel.Name {
				s.aliases = add(s.aliases, 1)
			}
			if !seen.add(sel.Alias) {
				s.repeats = add(s.repeats, 1)
			}
			if len(sel.SelectionSet) == 0 {
				s.depth = max(s.depth, 1)
				continue
			}
			sub := w.set(sel.SelectionSet)
			if sel.Name == "__schema" || sel.Name == "__type" {
				// Introspection nests __Type.ofType a dozen deep (GraphiQL's
				// query does); gqlparser's MaxIntrospectionDepth rule and the
				// token limit bound it instead.
				sub.depth = 0
			}
			s.depth = max(s.depth, 1+sub.depth)
			s.aliases = add(s.aliases, sub.aliases)
			s.directives = add(s.directives, sub.directives)
			s.repeats = add(s.repeats, sub.repeats)
		case *ast.InlineFragment:
			s.directives = add(s.directives, len(sel.Directives))
			w.collect(sel.SelectionSet, s, seen)
		case *ast.FragmentSpread:
			s.directives = add(s.directives, len(sel.Directives))
			if seen.spreads++; seen.spreads > 1 {
				s.repeats = add(s.repeats, 1)
			}
			if f, ok := w.fragment(sel.Name); ok {
				s.merge(f)
			}
		}
	}
}

// names holds the response names of one selection set, and counts its
// fragment spreads. Most sets are small, so it scans a slice and builds a
// map only past a few names.
type names struct {
	list    []string
	m       map[string]struct{}
	spreads int
}

// add records name and reports whether it was new.
func (n *names) add(name string) bool {
	if n.m != nil {
		if _, ok := n.m[name]; ok {
			return false
		}
		n.m[name] = struct{}{}
		return true
	}
	for _, v := range n.list {
		if v == name {
			return false
		}
	}
	if len(n.list) < 16 {
		n.list = append(n.list, name)
		return true
	}
	n.m = make(map[string]struct{}, 32)
	for _, v := range n.list {
		n.m[v] = struct{}{}
	}
	n.m[name] = struct{}{}
	return true
}
