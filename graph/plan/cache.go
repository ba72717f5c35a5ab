package plan

import (
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// Cache holds the plans of recent operations, keyed by query text and
// operation name (the key of gqlgen's own parsed-query cache), then by the
// values of the variables @include and @skip read.
type Cache struct {
	ops *lru.Cache[Key, *entry]
}

// Key names an operation as gqlgen's parsed-query cache does: its query
// text and operation name (a struct, so that no key is built by
// concatenating a text of up to MaxQueryBytes per request).
type Key struct{ Query, Operation string }

// KeyOf is oc's Key.
func KeyOf(oc *graphql.OperationContext) Key { return Key{oc.RawQuery, oc.OperationName} }

// NewCache returns a cache of the plans of up to size operations.
func NewCache(size int) *Cache {
	ops, err := lru.New[Key, *entry](size)
	if err != nil {
		panic(err) // size < 1: a wiring mistake
	}
	return &Cache{ops: ops}
}

// entry is one operation's plans.
type entry struct {
	doc         *ast.QueryDocument // the parse its plans point into
	unsupported bool               // gqlgen runs it, whatever the variables
	conditions  []string           // variables read by @include and @skip

	mu    sync.Mutex
	plans map[string]*Plan // by the conditions' values; nil: not covered
}

// maxVariants bounds the plans of one operation (one per combination of
// its conditions' values seen).
const maxVariants = 16

// For returns the plan of oc's operation, compiling it the first time, or
// nil when gqlgen must run it.
func (c *Cache) For(ctx context.Context, oc *graphql.OperationContext) *Plan {
	if oc.Operation == nil || oc.Operation.Operation != ast.Query {
		return nil
	}
	key := KeyOf(oc)
	// Plans point into the document they were compiled from: an entry
	// holds the plans of one parse, and a new parse of the text (gqlgen's
	// cache let the old one go) starts a new entry, so that the cache never
	// holds more parses than it has entries.
	e, ok := c.ops.Get(key)
	if !ok || e.doc != oc.Doc {
		e = newEntry(oc)
		c.ops.Add(key, e)
	}
	if e.unsupported {
		return nil
	}
	variant, cacheable := conditionKey(e.conditions, oc.Variables)
	e.mu.Lock()
	p, ok := e.plans[variant]
	e.mu.Unlock()
	if !ok || !cacheable {
		var err error
		if p, err = Compile(oc); err != nil {
			p = nil
		}
		if cacheable {
			e.mu.Lock()
			if len(e.plans) < maxVariants {
				e.plans[variant] = p
			}
			e.mu.Unlock()
		}
	}
	if p == nil || !p.Runnable(oc) {
		return nil
	}
	return p
}

// conditionKey encodes the values of the condition variables; false when
// a value is not a boolean or null (then the plan is compiled for this
// request alone).
func conditionKey(names []string, vars map[string]any) (string, bool) {
	if len(names) == 0 {
		return "", true
	}
	b := make([]byte, len(names))
	for i, n := range names {
		switch v := vars[n].(type) {
		case nil:
			b[i] = 'n'
		case bool:
			b[i] = 'f'
			if v {
				b[i] = 't'
			}
		default:
			return "", false
		}
	}
	return string(b), true
}

// newEntry scans the operation and the fragments it uses: directives other
// than @include and @skip (@defer above all) leave it to gqlgen.
func newEntry(oc *graphql.OperationContext) *entry {
	e := &entry{doc: oc.Doc, plans: map[string]*Plan{}}
	if len(oc.Operation.Directives) > 0 {
		e.unsupported = true
		return e
	}
	seenVar := map[string]bool{}
	seenFrag := map[string]bool{}
	var walk func(set ast.SelectionSet, depth int) bool
	directives := func(list ast.DirectiveList) bool {
		for _, d := range list {
			if d.Name != "include" && d.Name != "skip" {
				return false
			}
			for _, a := range d.Arguments {
				if a.Value != nil && a.Value.Kind == ast.Variable && !seenVar[a.Value.Raw] {
					seenVar[a.Value.Raw] = true
					e.conditions = append(e.conditions, a.Value.Raw)
				}
			}
		}
		return true
	}
	walk = func(set ast.SelectionSet, depth int) bool {
		if depth > 32 {
			return false
		}
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				if !directives(s.Directives) || !walk(s.SelectionSet, depth+1) {
					return false
				}
			case *ast.InlineFragment:
				if !directives(s.Directives) || !walk(s.SelectionSet, depth+1) {
					return false
				}
			case *ast.FragmentSpread:
				if !directives(s.Directives) {
					return false
				}
				if seenFrag[s.Name] {
					continue
				}
				seenFrag[s.Name] = true
				f := oc.Doc.Fragments.ForName(s.Name)
				if f == nil || len(f.Directives) > 0 || !walk(f.SelectionSet, depth+1) {
					return false
				}
			}
		}
		return true
	}
	e.unsupported = !walk(oc.Operation.SelectionSet, 0)
	return e
}
