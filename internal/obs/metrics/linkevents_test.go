package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mkgraph/mkgraph/internal/linkevents"
	"github.com/mkgraph/mkgraph/upstream/webhook"
)

func TestLinkEventMetrics(t *testing.T) {
	m := New()
	m.WebhookVerdict(webhook.VerdictAccepted)
	m.WebhookVerdict(webhook.VerdictHashMismatch)
	m.WebhookVerdict("mk_not_a_verdict")
	m.EventPublished(linkevents.KindProductRefresh)
	m.EventPublished("mk_link")
	m.EventDelivered(OriginReplica)
	m.EventDelivered(OriginWebhook)
	m.Invalidated(OriginWebhook)
	m.BudgetRefused(ScopeRefresh)
	m.RedisError(RedisPubSub)
	m.RedisError(RedisWebhook)
	for _, c := range []struct {
		got  float64
		want float64
		what string
	}{
		{testutil.ToFloat64(m.events.deliveries.WithLabelValues(webhook.VerdictAccepted)), 1, "accepted"},
		{testutil.ToFloat64(m.events.deliveries.WithLabelValues(webhook.VerdictHashMismatch)), 1, "hash_mismatch"},
		{testutil.ToFloat64(m.events.deliveries.WithLabelValues(Other)), 1, "other verdict"},
		{testutil.ToFloat64(m.events.deliveries.WithLabelValues(webhook.VerdictStale)), 0, "stale (registered, zero)"},
		{testutil.ToFloat64(m.events.published.WithLabelValues(linkevents.KindProductRefresh)), 1, "published"},
		{testutil.ToFloat64(m.events.published.WithLabelValues(Other)), 1, "published other"},
		{testutil.ToFloat64(m.events.delivered.WithLabelValues(OriginReplica)), 1, "delivered replica"},
		{testutil.ToFloat64(m.events.invalidations.WithLabelValues(OriginWebhook)), 1, "invalidated"},
		{testutil.ToFloat64(m.budgetRefusals.WithLabelValues(ScopeRefresh)), 1, "refresh refusal"},
		{testutil.ToFloat64(m.redisErrors.WithLabelValues(RedisPubSub)), 1, "pubsub"},
		{testutil.ToFloat64(m.redisErrors.WithLabelValues(RedisWebhook)), 1, "webhook"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	// Every verdict's series exists before any delivery, so rates start at 0.
	if n := testutil.CollectAndCount(New().events.deliveries); n != len(webhook.Verdicts()) {
		t.Errorf("%d verdict series registered, want %d", n, len(webhook.Verdicts()))
	}
	var nilM *Metrics
	nilM.WebhookVerdict("x")
	nilM.EventPublished("x")
	nilM.EventDelivered("x")
	nilM.Invalidated("x")
}
