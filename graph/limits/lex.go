package limits

import (
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/lexer"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

// The lexical pass counts the tokens of a query and, on the way, what each
// definition (operation or fragment) selects as written: its depth,
// aliases, directives and root fields, not counting what its fragment
// spreads add. Each is at most what the walk of the parsed document finds
// for that definition, so a definition over a limit here is refused without
// a parse, which costs several times the lexing: a hostile query within the
// token limit is refused in one pass.

// lexDef is what the lexical pass finds of one definition.
type lexDef struct {
	operation     bool
	name          string // the operation's name
	introspection bool   // a fragment on an introspection type (__Type…)
	depth         int
	aliases       int
	directives    int
	rootFields    int // operations only
}

// braceKind is what a selection set's brace belongs to.
type braceKind uint8

const (
	definitionBrace braceKind = iota
	fieldBrace
	introspectionBrace // the set of __schema or __type, whose depth does not count
	inlineBrace
)

// spreadState follows the tokens after "...".
type spreadState uint8

const (
	noSpread     spreadState = iota
	afterSpread              // "..."
	afterOn                  // "... on"
	inlineHeader             // "... on T", or "..." then directives: a selection set follows
)

// lexQuery counts the tokens of query, comments aside, stopping at
// maxTokens+1 (unless maxTokens < 0), and describes its definitions when it
// reads them all. ok is false when the query does not lex.
func lexQuery(query string, maxTokens int) (defs []lexDef, tokens int, ok bool) {
	lx := lexer.New(&ast.Source{Input: query})
	var (
		cur        = -1    // index in defs of the definition being read; -1 between definitions
		inHeader   = false // after a definition's keyword, before its brace
		header     = 0     // tokens of the header read, those in parentheses aside
		parens     = 0
		braces     []braceKind
		fields     = 0 // field braces open, introspection ones included
		exempt     = 0 // introspection braces open
		spread     = noSpread
		prev       lexer.Type // previous token outside parentheses
		prevName   string     // its value, when a name
		fieldName  string     // the name of the field last begun
		aliasOf    string     // the alias before ':', awaiting the field name
		afterAlias bool
	)
	for {
		tok, err := lx.ReadToken()
		if err != nil {
			return nil, tokens, false
		}
		switch tok.Kind {
		case lexer.EOF:
			return defs, tokens, true
		case lexer.Comment:
			continue
		}
		if tokens++; maxTokens >= 0 && tokens > maxTokens {
			return nil, tokens, true
		}

		if tok.Kind == lexer.At && cur >= 0 {
			defs[cur].directives++ // also in parentheses: variables take directives
		}
		if tok.Kind == lexer.ParenL {
			parens++
		}
		if parens > 0 {
			if tok.Kind == lexer.ParenR {
				parens--
				prev, prevName = tok.Kind, ""
			}
			continue // arguments, variables and their values
		}

		if len(braces) == 0 {
			// Between definitions, or in a definition's header.
			switch {
			case tok.Kind == lexer.BraceL:
				if !inHeader {
					defs = append(defs, lexDef{operation: true}) // the {…} shorthand
					cur = len(defs) - 1
				}
				inHeader = false
				braces = append(braces, definitionBrace)
			case !inHeader && tok.Kind == lexer.Name:
				switch tok.Value {
				case "query", "mutation", "subscription", "fragment":
					defs = append(defs, lexDef{operation: tok.Value != "fragment"})
					cur, inHeader, header = len(defs)-1, true, 0
				}
			case inHeader:
				// query Name …, or fragment Name on Type …
				header++
				switch d := &defs[cur]; {
				case tok.Kind != lexer.Name:
				case header == 1 && d.operation:
					d.name = tok.Value
				case header == 3 && !d.operation && prevName == "on":
					d.introspection = strings.HasPrefix(tok.Value, "__")
				}
			}
			prev, prevName = tok.Kind, ""
			if tok.Kind == lexer.Name {
				prevName = tok.Value
			}
			continue
		}

		// In a selection set.
		d := &defs[cur]
		switch tok.Kind {
		case lexer.Name:
			switch {
			case prev == lexer.At:
				// a directive's name
			case spread == afterSpread && tok.Value == "on":
				spread = afterOn
			case spread == afterSpread:
				spread = noSpread // a fragment spread's name
			case spread == afterOn:
				spread = inlineHeader // the type condition
			case afterAlias:
				fieldName, afterAlias = tok.Value, false
				if tok.Value != aliasOf {
					d.aliases++
				}
			default: // a field begins
				fieldName = tok.Value
				if exempt == 0 && !d.introspection {
					d.depth = max(d.depth, fields+1)
				}
				if fields == 0 && d.operation {
					d.rootFields++
				}
			}
		case lexer.Colon:
			aliasOf, afterAlias = prevName, true
		case lexer.Spread:
			spread = afterSpread
		case lexer.At:
			if spread == afterSpread {
				spread = inlineHeader
			}
		case lexer.BraceL:
			switch {
			case spread == afterSpread || spread == inlineHeader:
				braces = append(braces, inlineBrace)
			case fieldName == "__schema" || fieldName == "__type":
				braces = append(braces, introspectionBrace)
				fields++
				exempt++
			default:
				braces = append(braces, fieldBrace)
				fields++
			}
			spread = noSpread
		case lexer.BraceR:
			switch braces[len(braces)-1] {
			case fieldBrace:
				fields--
			case introspectionBrace:
				fields--
				exempt--
			}
			braces = braces[:len(braces)-1]
			if len(braces) == 0 {
				cur = -1
			}
		}
		prev, prevName = tok.Kind, ""
		if tok.Kind == lexer.Name {
			prevName = tok.Value
		}
	}
}

// checkLexical holds the definitions to the limits, the operation that
// would run first, as Check does.
func (c Config) checkLexical(defs []lexDef, operationName string) *apierr.Error {
	first := -1
	ops := 0
	for i, d := range defs {
		if d.operation {
			ops++
			if first < 0 && d.name == operationName {
				first = i
			}
		}
	}
	if operationName == "" && ops == 1 {
		for i, d := range defs {
			if d.operation {
				first = i
			}
		}
	}
	check := func(d lexDef) *apierr.Error {
		return c.checkShape(shape{depth: d.depth, aliases: d.aliases, directives: d.directives, fields: d.rootFields}, d.operation)
	}
	if first >= 0 {
		if e := check(defs[first]); e != nil {
			return e
		}
	}
	for _, operations := range []bool{true, false} {
		for i, d := range defs {
			if i != first && d.operation == operations {
				if e := check(d); e != nil {
					return e
				}
			}
		}
	}
	return nil
}
