package graph

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/graph/model"
	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
)

var errNoRefresh = &apierr.Error{Code: apierr.CodeUpstreamUnavailable, Message: "Refreshing is not available on this server."}

// refreshIdentity is Mutation.refreshIdentity: validated and authorized like
// Query.link (a refusal costs no upstream call), then one refresh asked of
// MoneyKit; its errors (a 429 with retryAfter) reach the client as typed.
func (r *Resolver) refreshIdentity(ctx context.Context, linkID string) (*model.IdentityRefresh, error) {
	if err := upstream.ValidateLinkID(linkID); err != nil {
		return nil, err
	}
	if err := r.authorize(ctx, linkID); err != nil {
		return nil, err
	}
	if r.refresh == nil {
		return nil, errNoRefresh
	}
	requestedAt := time.Now().UTC()
	link, err := r.refresh(ctx, linkID)
	if err != nil {
		return nil, err
	}
	out := &model.IdentityRefresh{LinkID: linkID, RequestedAt: requestedAt}
	if link != nil {
		log := zerolog.Ctx(ctx)
		out.Status = model.NewProductStatus(link.Products[upstream.ProductIdentity], func(kind, value string) {
			log.Warn().Str("kind", kind).Str("value", truncate(value, 64)).Msg("refresh answer with a value the schema does not know")
		})
	}
	return out, nil
}
