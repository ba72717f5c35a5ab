package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/internal/linkevents"
	"github.com/mkgraph/mkgraph/internal/obs/metrics"
	"github.com/mkgraph/mkgraph/internal/redisstore"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
	"github.com/mkgraph/mkgraph/upstream/webhook"
)

// linkEvents is how fresh identity data reaches clients: the refresh the
// refreshIdentity mutation asks for, the receiver mounted at webhook.Path
// that hears MoneyKit's webhooks, and the bus of link events the
// subscriptions read.
type linkEvents struct {
	refresh  func(ctx context.Context, linkID string) (*upstream.Link, error)
	receiver http.Handler
	bus      linkevents.Bus
	local    *linkevents.Local
}

// broadcaster tells the other replicas to drop a link's cached answer
// (redisstore.LinkEvents).
type broadcaster interface {
	Invalidate(ctx context.Context, linkID string) error
}

// wireLinkEvents builds the link event bus (in process, or through Redis
// pub/sub with rs) and the webhook receiver verifying MoneyKit's deliveries
// with the keys of baseURL, for the identity cache ic (nil: no cache).
func wireLinkEvents(c *config, log zerolog.Logger, baseURL, clientID, namespace string, rs *redisstore.Client, ic *cache.Cache, m *metrics.Metrics, onClose func(func())) (*linkEvents, error) {
	local := linkevents.NewLocal()
	onClose(local.Close)
	ev := &linkEvents{bus: local, local: local}
	var others broadcaster
	var store webhook.Store
	if rs != nil {
		bus := redisstore.NewLinkEvents(rs, local,
			redisstore.WithNamespace(namespace),
			redisstore.WithInvalidate(func(linkID string) {
				if ic != nil {
					ic.InvalidateLocal(linkID)
					m.Invalidated(metrics.OriginReplica)
				}
			}),
			redisstore.WithDeliver(func() { m.EventDelivered(metrics.OriginReplica) }),
		)
		onClose(bus.Close)
		ev.bus, others = bus, bus
		store = redisstore.NewWebhookDedupe(rs, namespace)
	}
	m.Gauge("mkgraph_link_event_subscriptions", "Link event subscriptions open on this replica.",
		func() float64 { _, n := local.Links(); return float64(n) })
	apply := applier{bus: ev.bus, others: others, cache: ic, m: m}
	wh, err := webhook.New(webhook.Config{
		BaseURL:   baseURL,
		ClientID:  clientID,
		JWKSTTL:   c.WebhookJWKSTTL,
		MaxAge:    c.WebhookMaxAge,
		Store:     store,
		Log:       log.With().Str("component", "webhook").Logger(),
		OnEvent:   apply.onEvent,
		OnVerdict: m.WebhookVerdict,
	})
	if err != nil {
		return nil, &configError{err}
	}
	ev.receiver = wh
	return ev, nil
}

// applier applies verified webhooks: cache invalidations, then events.
type applier struct {
	bus    linkevents.Bus
	others broadcaster // nil: no other replica to tell
	cache  *cache.Cache
	m      *metrics.Metrics
}

// onEvent is webhook.Config.OnEvent. An event that says the link's identity
// data changed (a completed identity refresh, any state change) first drops
// the link's cached answer here, in the shared store and on the other
// replicas, so that a subscriber reading the link on hearing of the event
// gets the new data; then the event goes to the link's subscribers on every
// replica. Other events are only published. An error (the other replicas
// could not be told, or the deadline passed) answers MoneyKit 503, which
// retries: invalidating and publishing again is harmless.
func (a applier) onEvent(ctx context.Context, e webhook.Event) error {
	if invalidates(e) && a.cache != nil {
		if err := a.cache.Invalidate(ctx, e.LinkID); err != nil {
			return errors.New("the link's cached identity could not be dropped from the shared cache (Redis failed)")
		}
		a.m.Invalidated(metrics.OriginWebhook)
		if a.others != nil {
			if err := a.others.Invalidate(ctx, e.LinkID); err != nil {
				return errors.New("the other replicas could not be told to drop the link's cached identity (Redis failed)")
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("applying the webhook: %w", err)
	}
	ev := toLinkEvent(e)
	if err := a.bus.Publish(ctx, ev); err != nil {
		return errors.New("publishing the link event failed")
	}
	a.m.EventPublished(ev.Kind)
	a.m.EventDelivered(metrics.OriginWebhook)
	return nil
}

// invalidates reports whether e means the link's identity answer changed:
// a completed identity refresh, or a new link state.
func invalidates(e webhook.Event) bool {
	switch e.Kind {
	case webhook.StateChanged:
		return true
	case webhook.ProductRefresh:
		return e.RefreshState == webhook.RefreshCompleted && strings.EqualFold(e.Product, "identity")
	}
	return false
}

// toLinkEvent is the subscribers' view of a verified webhook: no idempotency
// key, tags or link error code.
func toLinkEvent(e webhook.Event) linkevents.Event {
	kind := linkevents.KindUnknown
	switch e.Kind {
	case webhook.ProductRefresh:
		kind = linkevents.KindProductRefresh
	case webhook.StateChanged:
		kind = linkevents.KindStateChanged
	case webhook.TransactionsUpdatesAvailable:
		kind = linkevents.KindTransactionsUpdatesAvailable
	}
	ev := linkevents.Event{
		LinkID:       e.LinkID,
		Kind:         kind,
		LinkState:    e.LinkState,
		ErrorMessage: e.ErrorMessage,
		OccurredAt:   e.OccurredAt,
	}
	if e.Kind == webhook.ProductRefresh {
		ev.Product, ev.RefreshState = e.Product, string(e.RefreshState)
	}
	return ev
}

// refreshFunc is graph.HandlerConfig.Refresh (nil without ev).
func (ev *linkEvents) refreshFunc() func(ctx context.Context, linkID string) (*upstream.Link, error) {
	if ev == nil {
		return nil
	}
	return ev.refresh
}

// eventBus is graph.HandlerConfig.Events (nil without ev).
func (ev *linkEvents) eventBus() linkevents.Bus {
	if ev == nil {
		return nil
	}
	return ev.bus
}
