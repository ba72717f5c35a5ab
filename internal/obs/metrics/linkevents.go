package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mkgraph/mkgraph/internal/linkevents"
	"github.com/mkgraph/mkgraph/upstream/webhook"
)

// ScopeRefresh is the BudgetRefused scope of the facade's own identity
// refresh budget (MKGRAPH_REFRESH_BUDGET_PER_LINK).
const ScopeRefresh = "refresh"

// Redis operations of the webhook receiver and the link event bus, counted
// by RedisError.
const (
	RedisWebhook = "webhook" // the shared webhook dedupe store
	RedisPubSub  = "pubsub"  // link events and cache invalidations between replicas
)

// Origins of the link events and invalidations a replica applies.
const (
	OriginWebhook = "webhook" // a webhook this replica verified
	OriginReplica = "replica" // another replica's broadcast, through Redis
)

// linkEventMetrics are the collectors of webhooks, link events and cache
// invalidations. Their labels come from fixed sets: never a link id.
type linkEventMetrics struct {
	deliveries    *prometheus.CounterVec
	published     *prometheus.CounterVec
	delivered     *prometheus.CounterVec
	invalidations *prometheus.CounterVec
}

var eventKinds = []string{
	linkevents.KindProductRefresh, linkevents.KindStateChanged,
	linkevents.KindTransactionsUpdatesAvailable, linkevents.KindUnknown,
}

func newLinkEventMetrics(reg *prometheus.Registry) *linkEventMetrics {
	l := &linkEventMetrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mkgraph_webhook_deliveries_total",
			Help: "MoneyKit webhook deliveries received, by verdict (accepted, duplicate, or why it was refused).",
		}, []string{"verdict"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mkgraph_link_events_published_total",
			Help: "Link events this replica published from verified webhooks, by kind.",
		}, []string{"kind"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mkgraph_link_events_delivered_total",
			Help: "Link events handed to this replica's subscribers' bus, by origin: webhook (verified here) or replica (another replica's, through Redis).",
		}, []string{"origin"}),
		invalidations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mkgraph_identity_cache_invalidations_total",
			Help: "Identity cache entries dropped because MoneyKit announced fresh data, by origin: webhook (verified here) or replica (another replica's broadcast).",
		}, []string{"origin"}),
	}
	for _, v := range webhook.Verdicts() {
		l.deliveries.WithLabelValues(v)
	}
	for _, k := range eventKinds {
		l.published.WithLabelValues(k)
	}
	for _, o := range []string{OriginWebhook, OriginReplica} {
		l.delivered.WithLabelValues(o)
		l.invalidations.WithLabelValues(o)
	}
	reg.MustRegister(l.deliveries, l.published, l.delivered, l.invalidations)
	return l
}

// WebhookVerdict counts one webhook delivery in
// mkgraph_webhook_deliveries_total; a verdict outside webhook.Verdicts() is
// counted as Other. It suits webhook.Config.OnVerdict.
func (m *Metrics) WebhookVerdict(verdict string) {
	if m == nil {
		return
	}
	m.events.deliveries.WithLabelValues(oneOf(verdict, webhook.Verdicts()...)).Inc()
}

// EventPublished counts one link event published from a verified webhook,
// by its kind (linkevents.Kind…; others are Other).
func (m *Metrics) EventPublished(kind string) {
	if m == nil {
		return
	}
	m.events.published.WithLabelValues(oneOf(kind, eventKinds...)).Inc()
}

// EventDelivered counts one link event handed to this replica's local bus,
// by origin (OriginWebhook or OriginReplica).
func (m *Metrics) EventDelivered(origin string) {
	if m == nil {
		return
	}
	m.events.delivered.WithLabelValues(oneOf(origin, OriginWebhook, OriginReplica)).Inc()
}

// Invalidated counts one identity cache invalidation, by origin
// (OriginWebhook or OriginReplica).
func (m *Metrics) Invalidated(origin string) {
	if m == nil {
		return
	}
	m.events.invalidations.WithLabelValues(oneOf(origin, OriginWebhook, OriginReplica)).Inc()
}
