package graph

import (
	"context"
	"errors"
	"sync"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/rs/zerolog"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/mkgraph/mkgraph/graph/model"
	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/linkevents"
	"github.com/mkgraph/mkgraph/upstream"
)

var errUnavailable = &apierr.Error{Code: apierr.CodeSubscriptionsUnavailable, Message: "Subscriptions are not available on this server now."}

var errOverflow = &apierr.Error{Code: apierr.CodeSubscriptionOverflow,
	Message: "The subscription was ended: its events were not read as fast as they came. Subscribe again."}

// sseState collects what a subscription's producer tells the SSE writer.
type sseState struct {
	mu   sync.Mutex
	errs gqlerror.List
}

type sseStateKey struct{}

// streamError reports an error that ends a subscription after it started:
// an "error" message on a WebSocket, a last "next" with errors over SSE.
func streamError(ctx context.Context, err *gqlerror.Error) {
	if st, ok := ctx.Value(sseStateKey{}).(*sseState); ok {
		st.mu.Lock()
		st.errs = append(st.errs, err)
		st.mu.Unlock()
		return
	}
	if c := streamConnFrom(ctx); c != nil && c.ws {
		transport.AddSubscriptionError(ctx, err)
	}
}

// subscribeLink is Subscription.linkEvents: validated and authorized like
// Query.link, bounded, then fed from the bus until the client stops, the
// subscriber falls behind or the bus closes.
func (r *Resolver) subscribeLink(ctx context.Context, linkID string) (<-chan *model.LinkEvent, error) {
	refuse := func(err error) (<-chan *model.LinkEvent, error) {
		if c := streamConnFrom(ctx); c != nil && c.ws {
			// An "error" message for this id (gqlgen would send a "next"
			// with errors, then "complete").
			transport.AddSubscriptionError(ctx, presentError(ctx, err))
			ch := make(chan *model.LinkEvent)
			close(ch)
			return ch, nil
		}
		return nil, err
	}
	if err := upstream.ValidateLinkID(linkID); err != nil {
		return refuse(err)
	}
	if err := r.authorize(ctx, linkID); err != nil {
		return refuse(err)
	}
	if r.events == nil {
		return refuse(errUnavailable)
	}
	release, err := r.subs.admit(ctx)
	if err != nil {
		return refuse(err)
	}
	sub := r.events.Subscribe(linkID, r.subs.cfg.Buffer)
	out := make(chan *model.LinkEvent)
	log := zerolog.Ctx(ctx)
	warn := func(kind, value string) {
		log.Warn().Str("kind", kind).Str("value", truncate(value, 64)).Msg("link event with a value the schema does not know; mapped to UNKNOWN or null")
	}
	go func() {
		defer release()
		defer close(out)
		defer sub.Cancel()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-sub.C:
				if !ok {
					r.subs.ended(ctx, sub.Err())
					return
				}
				select {
				case out <- model.NewLinkEvent(e, warn):
					r.subs.delivered.Add(1)
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// ended handles a subscription the bus ended.
func (s *Subscriptions) ended(ctx context.Context, err error) {
	switch {
	case errors.Is(err, linkevents.ErrSlowConsumer):
		s.dropped.Add(1)
		streamError(ctx, presentError(ctx, errOverflow))
	case errors.Is(err, linkevents.ErrClosed):
		if c := streamConnFrom(ctx); c != nil {
			c.shutdown()
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
