// Package graph is the GraphQL layer: the schema, thin resolvers, the error
// presenter and the gqlgen handler. Identity data reaches it only through the
// per-request loaders of package loader.
package graph

import "context"

//go:generate go run github.com/99designs/gqlgen generate

// Resolver holds the resolvers' dependencies; server.go fills it through
// NewHandler. It serves as dependency injection for the app.
type Resolver struct {
	maxLinkIDs int
	authorize  func(ctx context.Context, linkID string) error
}
