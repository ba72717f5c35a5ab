package graph

import (
	"context"

	gqlcomplexity "github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/mkgraph/mkgraph/graph/plan"
)

// complexityLimit is gqlgen's extension.FixedComplexityLimit (same
// computation, same error, same stats), remembering the complexity of
// operations that declare no variables: gqlgen's walk reads every field's
// arguments into a new map, about a hundred allocations for the seed
// query, and for such an operation the answer never changes.
type complexityLimit struct {
	limit int
	es    graphql.ExecutableSchema
	known *lru.Cache[plan.Key, int] // by query text and operation name
}

func newComplexityLimit(limit int) *complexityLimit {
	known, err := lru.New[plan.Key, int](planCacheSize)
	if err != nil {
		panic(err) // planCacheSize is positive
	}
	return &complexityLimit{limit: limit, known: known}
}

var _ interface {
	graphql.OperationContextMutator
	graphql.HandlerExtension
} = &complexityLimit{}

// ExtensionName is gqlgen's, so that its stats are found where gqlgen's are.
func (c *complexityLimit) ExtensionName() string { return "ComplexityLimit" }

func (c *complexityLimit) Validate(es graphql.ExecutableSchema) error {
	c.es = es
	return nil
}

func (c *complexityLimit) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	op := oc.Doc.Operations.ForName(oc.OperationName)
	var n int
	if op != nil && len(op.VariableDefinitions) == 0 {
		key := plan.KeyOf(oc)
		var ok bool
		if n, ok = c.known.Get(key); !ok {
			n = gqlcomplexity.Calculate(ctx, c.es, op, oc.Variables)
			c.known.Add(key, n)
		}
	} else {
		n = gqlcomplexity.Calculate(ctx, c.es, op, oc.Variables)
	}
	oc.Stats.SetExtension(c.ExtensionName(), &extension.ComplexityStats{Complexity: n, ComplexityLimit: c.limit})
	if n > c.limit {
		err := gqlerror.Errorf("operation has complexity %d, which exceeds the limit of %d", n, c.limit)
		errcode.Set(err, gqlgenComplexityCode)
		return err
	}
	return nil
}
