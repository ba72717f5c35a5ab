// Package graph is the GraphQL layer: the schema, thin resolvers, the error
// presenter and the gqlgen handler. Identity data reaches it only through the
// per-request loaders of package loader.
package graph

import (
	"context"
	"fmt"

	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/graph/model"
	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/linkevents"
	"github.com/mkgraph/mkgraph/upstream"
)

//go:generate go run github.com/99designs/gqlgen generate

// Resolver holds the resolvers' dependencies; server.go fills it through
// NewHandler. It serves as dependency injection for the app.
type Resolver struct {
	maxLinkIDs int
	authorize  func(ctx context.Context, linkID string) error
	refresh    func(ctx context.Context, linkID string) (*upstream.Link, error)
	events     linkevents.Bus
	loaders    *loader.Factory
	subs       *Subscriptions
}

// checkLinkIDs refuses a links(ids:) list longer than the configured bound.
func (r *Resolver) checkLinkIDs(ids []string) error {
	if len(ids) > r.maxLinkIDs {
		return apierr.InvalidArgument(fmt.Sprintf("links(ids:) takes at most %d ids.", r.maxLinkIDs))
	}
	return nil
}

// loadAuthorized loads the links the caller may read and answers the others
// with their own error at their index (startAuthorized).
func (r *Resolver) loadAuthorized(ctx context.Context, ids []string) []*model.Link {
	links, errs := r.startAuthorized(ctx, ids)()
	addIndexErrors(ctx, errs)
	return links
}

// startAuthorized queues on the loaders the links the caller may read, and
// returns the wait for them all: errs[i] is the error of ids[i], a refusal
// for those the caller may not read, which are not loaded. Authorization
// comes before any loader, cache or upstream call, and each id is validated
// here, where it enters (after the caller's authorization, so a refused
// caller learns nothing about the id's form).
func (r *Resolver) startAuthorized(ctx context.Context, ids []string) func() (links []*model.Link, errs []error) {
	errs := make([]error, len(ids))
	allowed := make([]string, 0, len(ids))
	at := make([]int, 0, len(ids))
	for i, id := range ids {
		if err := r.authorize(ctx, id); err != nil {
			errs[i] = err
			continue
		}
		if err := upstream.ValidateLinkID(id); err != nil {
			errs[i] = err
			continue
		}
		allowed = append(allowed, id)
		at = append(at, i)
	}
	wait := loader.StartLinks(ctx, allowed)
	return func() ([]*model.Link, []error) {
		links := make([]*model.Link, len(ids))
		loaded, loadErrs := wait()
		for j, i := range at {
			links[i] = loaded[j]
			if loadErrs != nil {
				errs[i] = loadErrs[j]
			}
		}
		return links, errs
	}
}

// startLink is Query.link up to the load: the id validated, the caller
// authorized, the link queued on the loaders.
func (r *Resolver) startLink(ctx context.Context, id string) func() (*model.Link, error) {
	if err := upstream.ValidateLinkID(id); err != nil {
		return func() (*model.Link, error) { return nil, err }
	}
	if err := r.authorize(ctx, id); err != nil {
		return func() (*model.Link, error) { return nil, err }
	}
	return loader.StartLink(ctx, id)
}
