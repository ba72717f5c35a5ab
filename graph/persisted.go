package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

// PersistedQueries are the operations of an app's persisted query manifest
// (Apollo's format, as `npx @apollo/generate-persisted-query-manifest`
// writes it). Known hashes need not be registered through APQ: a client may
// send the hash alone. With Only set, it is an allowlist: any other
// operation is refused with facade.persisted_query_not_allowed, before
// parsing.
type PersistedQueries struct {
	byHash map[string]string // sha256 hex of the body → body
	Only   bool
}

// manifest is Apollo's persisted query manifest.
type manifest struct {
	Format     string `json:"format"`
	Version    int    `json:"version"`
	Operations []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Body string `json:"body"`
	} `json:"operations"`
}

// LoadPersistedQueries reads a manifest file and checks that each id is the
// SHA-256 of its body.
func LoadPersistedQueries(path string, only bool) (*PersistedQueries, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m.Format != "apollo-persisted-query-manifest" || m.Version != 1 {
		return nil, fmt.Errorf("%s: want format apollo-persisted-query-manifest version 1", path)
	}
	p := &PersistedQueries{byHash: make(map[string]string, len(m.Operations)), Only: only}
	for _, op := range m.Operations {
		if hashQuery(op.Body) != op.ID {
			return nil, fmt.Errorf("%s: operation %q: id is not the SHA-256 of its body", path, op.Name)
		}
		p.byHash[op.ID] = op.Body
	}
	return p, nil
}

// Len is the number of operations.
func (p *PersistedQueries) Len() int { return len(p.byHash) }

func hashQuery(q string) string {
	sum := sha256.Sum256([]byte(q))
	return hex.EncodeToString(sum[:])
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = (*PersistedQueries)(nil)

// ExtensionName implements graphql.HandlerExtension.
func (p *PersistedQueries) ExtensionName() string { return "PersistedQueries" }

// Validate implements graphql.HandlerExtension.
func (p *PersistedQueries) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters fills a hash-only request from the manifest and,
// in allowlist mode, refuses any operation not in it. It runs before APQ.
func (p *PersistedQueries) MutateOperationParameters(_ context.Context, raw *graphql.RawParams) *gqlerror.Error {
	if raw.Query == "" {
		if ext, ok := raw.Extensions["persistedQuery"].(map[string]any); ok {
			if h, ok := ext["sha256Hash"].(string); ok {
				raw.Query = p.byHash[h]
			}
		}
	}
	if !p.Only {
		return nil
	}
	if _, ok := p.byHash[hashQuery(raw.Query)]; raw.Query == "" || !ok {
		return &gqlerror.Error{
			Message:    "Only the app's persisted operations are accepted here.",
			Extensions: map[string]any{"code": apierr.CodePersistedQueryNotAllowed},
		}
	}
	return nil
}
