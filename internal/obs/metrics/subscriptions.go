package metrics

import "github.com/prometheus/client_golang/prometheus"

// SubscriptionStats is what the subscriptions report (graph.Subscriptions).
type SubscriptionStats interface {
	Connections() int64 // WebSocket and SSE connections open
	Active() int64      // subscriptions open
	Delivered() int64   // events handed to subscribers, ever
	Dropped() int64     // subscriptions ended as slow consumers, ever
}

// Subscriptions registers the subscriptions' gauges and counters, read at
// each scrape. They have no labels: no link id or caller reaches them.
func (m *Metrics) Subscriptions(s SubscriptionStats) {
	if m == nil || s == nil {
		return
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mkgraph_subscription_connections",
			Help: "WebSocket and SSE connections carrying subscriptions."}, func() float64 { return float64(s.Connections()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mkgraph_subscriptions",
			Help: "Subscriptions open (linkEvents)."}, func() float64 { return float64(s.Active()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mkgraph_subscription_events_delivered_total",
			Help: "Link events handed to subscribers."}, func() float64 { return float64(s.Delivered()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mkgraph_subscription_slow_consumer_drops_total",
			Help: "Subscriptions ended because their client did not read events as fast as they came (facade.subscription_overflow)."},
			func() float64 { return float64(s.Dropped()) }),
	)
}
