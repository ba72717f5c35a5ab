package graph

import (
	"cmp"
	"context"
	"slices"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/mkgraph/mkgraph/graph/model"
	"github.com/mkgraph/mkgraph/graph/plan"
)

// The executors of read operations (HandlerConfig.Executor).
const (
	// ExecutorPlan runs read operations over link and links on a plan
	// compiled once per document (package plan), and everything else on
	// gqlgen. The default.
	ExecutorPlan = "plan"
	// ExecutorGQLgen runs every operation on gqlgen's executor.
	ExecutorGQLgen = "gqlgen"
)

// planCacheSize matches the parsed-query cache: a plan per parsed document.
const planCacheSize = 256

// planSchema is the generated schema with the plan's fast path for the
// queries it covers; gqlgen's handler, its transports and extensions
// (limits, complexity, APQ, operation middleware) run as for any operation.
type planSchema struct {
	graphql.ExecutableSchema
	plans *plan.Cache
	roots planRoots
}

func newPlanSchema(es graphql.ExecutableSchema, r *Resolver) planSchema {
	return planSchema{ExecutableSchema: es, plans: plan.NewCache(planCacheSize), roots: planRoots{r}}
}

// Exec runs the operation of ctx on its plan when it has one.
func (s planSchema) Exec(ctx context.Context) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	p := s.plans.For(ctx, oc)
	if p == nil {
		return s.ExecutableSchema.Exec(ctx)
	}
	var done atomic.Bool
	return func(ctx context.Context) *graphql.Response {
		if done.Swap(true) {
			return nil // one answer, as gqlgen's for a query without @defer
		}
		return &graphql.Response{Data: p.Execute(ctx, oc, s.roots)}
	}
}

// planRoots are the resolvers of schema.resolvers.go, split where the plan
// needs them split: every root field is started before any is awaited.
type planRoots struct{ r *Resolver }

var _ plan.Roots = planRoots{}

func (p planRoots) Link(ctx context.Context, id string) func() (*model.Link, error) {
	ctx, done := requestScoped(ctx)
	defer doneOnPanic(done)
	wait := p.r.startLink(ctx, id)
	return func() (*model.Link, error) {
		defer done()
		return wait()
	}
}

func (p planRoots) Links(ctx context.Context, ids []string) (func() ([]*model.Link, []error), error) {
	if err := p.r.checkLinkIDs(ids); err != nil {
		return nil, err
	}
	ctx, done := requestScoped(ctx)
	defer doneOnPanic(done)
	wait := p.r.startAuthorized(ctx, ids)
	return func() ([]*model.Link, []error) {
		defer done()
		return wait()
	}, nil
}

// doneOnPanic ends a request scope whose wait will never be called: the
// start panicked (the plan recovers it as the field's error).
func doneOnPanic(done func()) {
	if v := recover(); v != nil {
		done()
		panic(v)
	}
}

func (p planRoots) Accounts(ctx context.Context, l *model.Link, ids []string) ([]*model.Account, error) {
	return p.r.Link().Accounts(ctx, l, ids)
}

// sortErrors puts a response's errors in a stable order: by the position
// of the field in the document, then by path and message. gqlgen resolves
// fields concurrently and records their errors as they come, so without
// this two runs of one request could list the same errors in two orders
// (and the two executors could not be compared byte for byte).
func sortErrors(list gqlerror.List) {
	if len(list) < 2 {
		return
	}
	slices.SortStableFunc(list, func(a, b *gqlerror.Error) int {
		if c := cmp.Compare(len(b.Locations), len(a.Locations)); c != 0 && (len(a.Locations) == 0 || len(b.Locations) == 0) {
			return c // located errors first
		}
		if len(a.Locations) > 0 && len(b.Locations) > 0 {
			la, lb := a.Locations[0], b.Locations[0]
			if c := cmp.Compare(la.Line, lb.Line); c != 0 {
				return c
			}
			if c := cmp.Compare(la.Column, lb.Column); c != 0 {
				return c
			}
		}
		if c := comparePaths(a.Path, b.Path); c != 0 {
			return c
		}
		return cmp.Compare(a.Message, b.Message)
	})
}

func comparePaths(a, b ast.Path) int {
	for i := range min(len(a), len(b)) {
		if c := comparePathElements(a[i], b[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

func comparePathElements(a, b ast.PathElement) int {
	ai, aIndex := a.(ast.PathIndex)
	bi, bIndex := b.(ast.PathIndex)
	switch {
	case aIndex && bIndex:
		return cmp.Compare(ai, bi)
	case aIndex:
		return 1
	case bIndex:
		return -1
	}
	an, _ := a.(ast.PathName)
	bn, _ := b.(ast.PathName)
	return cmp.Compare(an, bn)
}
