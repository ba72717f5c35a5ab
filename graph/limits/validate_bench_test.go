package limits_test

import (
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/mkgraph/mkgraph/graph/limits"
	"github.com/mkgraph/mkgraph/internal/apierr"
)

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
