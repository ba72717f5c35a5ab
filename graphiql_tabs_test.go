package main

import (
	"testing"

	"github.com/vektah/gqlparser/v2"

	"github.com/mkgraph/mkgraph/graph"
	"github.com/mkgraph/mkgraph/internal/graphiql"
)

// TestGraphiQLTabsValidate: the queries GraphiQL opens with are valid
// against the schema, over the sandbox and over MoneyKit, so a schema change
// cannot leave a broken example behind.
func TestGraphiQLTabsValidate(t *testing.T) {
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{}}).Schema()
	for _, c := range []*config{{}, {BaseURL: "https://api.example", Auth: "jwt"}} {
		o := graphiqlOptions(c)
		q, _ := graphiql.DefaultTab(o)
		tabs := append([]graphiql.Tab{{Query: q}}, graphiql.LoopTabs(o)...)
		if len(tabs) != 3 {
			t.Fatalf("%d tabs, want the query and the loop's two", len(tabs))
		}
		for _, tab := range tabs {
			if _, err := gqlparser.LoadQuery(schema, tab.Query); err != nil {
				t.Errorf("tab does not validate: %v\n%s", err, tab.Query)
			}
		}
	}
}
