// Package plan is the fast path for read operations over Query.link and
// Query.links: a plan compiled once per document (and per value of the
// variables that @include and @skip read) runs the same root resolvers as
// gqlgen and writes the answer's JSON straight from the models, without a
// field context per field, a goroutine per list element or a tree of
// graphql.Marshaler values.
//
// gqlgen stays the reference: Compile refuses (and gqlgen then runs)
// anything the plan does not cover (introspection, directives other than
// @include and @skip, an argument that does not coerce), and the
// differential tests of package graph check that both executors give the
// same bytes.
package plan

import (
	"errors"
	"strconv"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// errUnsupported: gqlgen runs the operation.
var errUnsupported = errors.New("plan: not covered")

// Plan is one compiled read operation.
type Plan struct {
	size    atomic.Int64 // the length of its last answer: the next one's buffer
	roots   []rootField
	dynamic []dynamicArgs // arguments read from variables, checked before a run
}

// dynamicArgs is a field whose arguments read variables.
type dynamicArgs struct {
	field *ast.Field
	kind  rootKind
}

type rootKind uint8

const (
	rootTypename rootKind = iota
	rootLink
	rootLinks
)

// rootField is a field of the operation's root selection.
type rootField struct {
	prefix []byte // `{"alias":` for the first field, `,"alias":` for the others
	kind   rootKind
	field  *ast.Field // arguments and position
	args   args
	sel    *object // the Link selection
	path   ast.PathElement
}

// args are a field's argument values: known once compiled when they read no
// variable, otherwise read from each request's variables. Constant ids are
// shared by every run of the plan: resolvers only read them.
type args struct {
	constant bool
	id       string   // link(id:)
	ids      []string // links(ids:), accounts(ids:)
}

// object is the selection of one object type, collected as gqlgen collects
// it (graphql.CollectFields: response keys merged, in first-seen order).
type object struct {
	fields []field
}

// field is one response key of an object.
type field struct {
	prefix []byte
	id     fieldID
	sel    *object    // object and list-of-object fields
	field  *ast.Field // accounts: arguments and position
	args   args
	path   ast.PathElement // the key as a path element, made once
	lit    []byte          // __typename: the quoted type name
}

// Compile plans oc's operation, a validated query, with the variables of
// oc (for @include and @skip). It returns errUnsupported for what gqlgen
// must run.
func Compile(oc *graphql.OperationContext) (p *Plan, err error) {
	if oc.Operation == nil || oc.Operation.Operation != ast.Query {
		return nil, errUnsupported
	}
	defer func() {
		// CollectFields panics on what validation should have refused.
		if r := recover(); r != nil {
			p, err = nil, errUnsupported
		}
	}()
	p = &Plan{}
	for i, f := range graphql.CollectFields(oc, oc.Operation.SelectionSet, []string{"Query"}) {
		r := rootField{prefix: keyPrefix(i, f.Alias), field: f.Field, path: ast.PathName(f.Alias)}
		switch f.Name {
		case "__typename":
			r.kind = rootTypename
		case "link", "links":
			r.kind = rootLink
			if f.Name == "links" {
				r.kind = rootLinks
			}
			if r.args, err = p.constArgs(f.Field, r.kind); err != nil {
				return nil, err
			}
			if r.sel, err = p.compileObject(oc, f.Selections, "Link", 0); err != nil {
				return nil, err
			}
		default: // __schema, __type
			return nil, errUnsupported
		}
		p.roots = append(p.roots, r)
	}
	return p, nil
}

// maxDepth bounds the selection depth the schema allows (Link → accounts
// → owners → addresses is four); deeper is not this schema's.
const maxDepth = 8

func (p *Plan) compileObject(oc *graphql.OperationContext, sel ast.SelectionSet, typ string, depth int) (*object, error) {
	if depth > maxDepth {
		return nil, errUnsupported
	}
	obj := &object{}
	for i, f := range graphql.CollectFields(oc, sel, []string{typ}) {
		id, ok := fieldIDs[typ+"."+f.Name]
		if !ok {
			return nil, errUnsupported
		}
		out := field{prefix: keyPrefix(i, f.Alias), id: id, field: f.Field, path: ast.PathName(f.Alias)}
		if id == typename {
			out.lit = appendString(nil, typ)
		}
		if child := childTypes[id]; child != "" {
			var err error
			if out.sel, err = p.compileObject(oc, f.Selections, child, depth+1); err != nil {
				return nil, err
			}
		}
		if id == linkAccounts {
			var err error
			if out.args, err = p.constArgs(f.Field, rootLinks); err != nil {
				return nil, err
			}
		}
		obj.fields = append(obj.fields, out)
	}
	return obj, nil
}

// keyPrefix is what precedes the i-th value of an object: gqlgen writes
// keys with its string quoting.
func keyPrefix(i int, key string) []byte {
	b := make([]byte, 0, len(key)+4)
	if i == 0 {
		b = append(b, '{')
	} else {
		b = append(b, ',')
	}
	b = appendString(b, key)
	return append(b, ':')
}

// constArgs coerces f's arguments now when they read no variable, and
// otherwise notes that each run must read them.
func (p *Plan) constArgs(f *ast.Field, kind rootKind) (args, error) {
	for _, a := range f.Arguments {
		if readsVariable(a.Value) {
			p.dynamic = append(p.dynamic, dynamicArgs{f, kind})
			return args{}, nil
		}
	}
	a, err := coerce(f.ArgumentMap(nil), kind)
	if err != nil {
		return args{}, errUnsupported
	}
	a.constant = true
	return a, nil
}

func readsVariable(v *ast.Value) bool {
	if v == nil {
		return false
	}
	if v.Kind == ast.Variable {
		return true
	}
	for _, c := range v.Children {
		if readsVariable(c.Value) {
			return true
		}
	}
	return false
}

// coerce reads link's id or links' and accounts' ids as gqlgen's generated
// unmarshalers do (graphql.UnmarshalID, graphql.CoerceList; a null or
// absent accounts(ids:) is nil, every account).
func coerce(raw map[string]any, kind rootKind) (args, error) {
	var a args
	var err error
	switch kind {
	case rootLink:
		a.id, err = graphql.UnmarshalID(raw["id"])
	case rootLinks:
		v := raw["ids"]
		if v == nil {
			return a, nil
		}
		list := graphql.CoerceList(v)
		a.ids = make([]string, len(list))
		for i := range list {
			if a.ids[i], err = graphql.UnmarshalID(list[i]); err != nil {
				return a, err
			}
		}
	}
	return a, err
}

// appendString appends s quoted as gqlgen's writeQuotedString quotes it:
// control characters, '"' and '\\' escaped, everything else (invalid
// UTF-8 included) as it is. Byte by byte is the same as rune by rune here:
// every byte of a multi-byte or invalid sequence is 0x80 or above.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '\\' && c != '"' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '\t':
			b = append(b, '\\', 't')
		case '\r':
			b = append(b, '\\', 'r')
		case '\n':
			b = append(b, '\\', 'n')
		case '\\':
			b = append(b, '\\', '\\')
		case '"':
			b = append(b, '\\', '"')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hex = "0123456789ABCDEF"

// appendQuote is strconv.Quote, which gqlgen's enum and Decimal
// marshalers use.
func appendQuote(b []byte, s string) []byte { return strconv.AppendQuote(b, s) }
