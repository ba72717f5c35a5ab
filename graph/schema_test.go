package graph_test

import (
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/graph"
)

func TestSchemaDescriptions(t *testing.T) {
	t.Parallel()
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{}}).Schema()
	checked := 0
	for name, def := range schema.Types {
		if def.BuiltIn || strings.HasPrefix(name, "__") {
			continue
		}
		checked++
		if strings.TrimSpace(def.Description) == "" {
			t.Errorf("type %s has no description", name)
		}
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			if strings.TrimSpace(f.Description) == "" {
				t.Errorf("field %s.%s has no description", name, f.Name)
			}
			for _, a := range f.Arguments {
				if strings.TrimSpace(a.Description) == "" {
					t.Errorf("argument %s.%s(%s) has no description", name, f.Name, a.Name)
				}
			}
		}
		for _, v := range def.EnumValues {
			if strings.TrimSpace(v.Description) == "" {
				t.Errorf("enum value %s.%s has no description", name, v.Name)
			}
		}
	}
	// Query, Link, LinkState, Product, Products, ProductStatus, Account,
	// Balances, Owner, Address, PhoneNumber, Email, DateTime, Decimal.
	if checked < 14 {
		t.Errorf("checked %d types, want at least 14: the walk missed the schema", checked)
	}
}

func TestIntrospection(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, testOptions{})
	resp, _ := ts.MustQuery(t, `{ __type(name: "Link") { description fields { name description } } }`, nil)
	var data struct {
		Type struct {
			Description string
			Fields      []struct{ Name, Description string }
		} `json:"__type"`
	}
	MustData(t, resp, &data)
	if data.Type.Description == "" || len(data.Type.Fields) == 0 {
		t.Errorf("introspection of Link = %+v, want its description and fields", data.Type)
	}
}
