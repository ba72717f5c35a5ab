package graph

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	gqlast "github.com/vektah/gqlparser/v2/ast"
	gqlparse "github.com/vektah/gqlparser/v2/parser"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// TestExecutorsAgreeCorpus: the checked-in documents (every .graphql file
// under testdata/ and graph/) and the documents the package's tests send,
// with each of their operations and variables, give the same bytes on both
// executors.
func TestExecutorsAgreeCorpus(t *testing.T) {
	t.Parallel()
	docs := diffCorpus(t)
	if len(docs) < 50 {
		t.Fatalf("only %d documents in the corpus", len(docs))
	}
	for _, cfg := range []diffConfig{diffMain, diffWide} {
		p, stats := newDiffPair(t, cfg), &diffStats{}
		for _, doc := range docs {
			for _, r := range diffCorpusRequests(doc) {
				p.check(t, r, stats)
			}
		}
		t.Logf("%s: %d documents, %s", cfg.Name, len(docs), stats)
	}
}

// diffCorpus returns the corpus's documents, sorted.
func diffCorpus(tb testing.TB) []string {
	tb.Helper()
	seen := map[string]bool{}
	for _, root := range []string{"../testdata", "."} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(path, ".graphql") {
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				seen[string(b)] = true
			}
			return nil
		})
		if err != nil {
			tb.Fatalf("walk %s: %v", root, err)
		}
	}
	for _, s := range diffTestDocuments(tb) {
		seen[s] = true
	}
	docs := make([]string, 0, len(seen))
	for s := range seen {
		docs = append(docs, s)
	}
	slices.Sort(docs)
	return docs
}

// diffTestDocuments are the GraphQL documents in the string constants of
// the package's tests (constant expressions: literals, their sums, and the
// string constants of the tests and of package sandbox).
func diffTestDocuments(tb testing.TB) []string {
	tb.Helper()
	fset := token.NewFileSet()
	parse := func(pattern string) []*ast.File {
		names, err := filepath.Glob(pattern)
		if err != nil {
			tb.Fatal(err)
		}
		var files []*ast.File
		for _, name := range names {
			if strings.HasPrefix(name, "differential") || strings.HasPrefix(name, "fuzz_differential") {
				continue // this corpus's own
			}
			f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
			if err != nil {
				tb.Fatalf("parse %s: %v", name, err)
			}
			files = append(files, f)
		}
		return files
	}
	tests, sbx := parse("*_test.go"), parse("../upstream/sandbox/*.go")
	consts := map[string]string{}
	var eval func(e ast.Expr) (string, bool)
	eval = func(e ast.Expr) (string, bool) {
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind == token.STRING {
				s, err := strconv.Unquote(e.Value)
				return s, err == nil
			}
		case *ast.ParenExpr:
			return eval(e.X)
		case *ast.Ident:
			s, ok := consts[e.Name]
			return s, ok
		case *ast.SelectorExpr:
			if x, ok := e.X.(*ast.Ident); ok && x.Name == "sandbox" {
				s, ok := consts["sandbox."+e.Sel.Name]
				return s, ok
			}
		case *ast.BinaryExpr:
			if e.Op == token.ADD {
				a, ok1 := eval(e.X)
				b, ok2 := eval(e.Y)
				return a + b, ok1 && ok2
			}
		}
		return "", false
	}
	collectConsts := func(files []*ast.File, prefix string) {
		for _, f := range files {
			for _, d := range f.Decls {
				if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
					for _, spec := range g.Specs {
						vs := spec.(*ast.ValueSpec)
						for i, name := range vs.Names {
							if i < len(vs.Values) {
								if s, ok := eval(vs.Values[i]); ok {
									consts[prefix+name.Name] = s
								}
							}
						}
					}
				}
			}
		}
	}
	collectConsts(sbx, "sandbox.")
	collectConsts(tests, "")
	var docs []string
	for _, f := range tests {
		ast.Inspect(f, func(n ast.Node) bool {
			e, ok := n.(ast.Expr)
			if !ok {
				return true
			}
			s, ok := eval(e)
			if !ok {
				return true // its parts may be documents
			}
			if looksLikeGraphQL(s) {
				docs = append(docs, s)
			}
			return false
		})
	}
	return docs
}

// looksLikeGraphQL reports whether s starts as a GraphQL document does (a
// JSON body does not).
func looksLikeGraphQL(s string) bool {
	s = strings.TrimSpace(s)
	for strings.HasPrefix(s, "#") {
		_, s, _ = strings.Cut(s, "\n")
		s = strings.TrimSpace(s)
	}
	if !strings.Contains(s, "}") || strings.HasPrefix(s, `{"`) {
		return false
	}
	if strings.HasPrefix(s, "{") {
		return true
	}
	for _, kw := range []string{"query", "mutation", "subscription", "fragment"} {
		if rest, ok := strings.CutPrefix(s, kw); ok && rest != "" && strings.ContainsRune(" \t\n\r{(@", rune(rest[0])) {
			return true
		}
	}
	return false
}

// diffCorpusRequests are the requests of one document: each of its
// operations by name (one request without a name), each with three sets of
// variables.
func diffCorpusRequests(doc string) []diffRequest {
	parsed, err := gqlparse.ParseQuery(&gqlast.Source{Input: doc})
	if err != nil || parsed == nil || len(parsed.Operations) == 0 {
		return []diffRequest{{Query: doc}}
	}
	var out []diffRequest
	for _, op := range parsed.Operations {
		for variant := range 3 {
			vars := map[string]any{}
			for _, v := range op.VariableDefinitions {
				if val, ok := diffCorpusValue(v.Type, variant); ok {
					vars[v.Variable] = val
				}
			}
			out = append(out, diffRequest{Query: doc, OperationName: op.Name, Variables: vars})
			// Streamed, @defer's parts come in the order their fragments
			// finish, on gqlgen (which runs them on both handlers).
			if variant == 0 && !strings.Contains(doc, "@defer") {
				for _, accept := range []string{"multipart/mixed; deferSpec=20220824", "text/event-stream"} {
					out = append(out, diffRequest{Query: doc, OperationName: op.Name, Variables: vars, Accept: accept})
				}
			}
		}
	}
	if len(parsed.Operations) > 1 {
		out = append(out, diffRequest{Query: doc}) // no name: refused
	}
	return out
}

// diffCorpusValue is a value of type t; false: leave the variable out.
func diffCorpusValue(t *gqlast.Type, variant int) (any, bool) {
	if t.Elem != nil {
		lists := [][]any{
			{sandbox.LinkSeed, sandbox.LinkHousehold, diffNotFound, "acc_2GqW7xJz4Lm9PdRt8VbN3K"},
			{"mk_bench00", diffDenied, "", diffEscapes, "mk_bench00", diffNumbers},
			{},
		}
		return lists[variant], true
	}
	switch t.NamedType {
	case "ID", "String":
		return []string{sandbox.LinkHousehold, diffEscapes, diffRateLimited}[variant], true
	case "Boolean":
		return variant == 0, variant < 2
	}
	return nil, false
}
