package webhook_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream/webhook"
)

func TestEventKinds(t *testing.T) {
	cases := []struct {
		name     string
		override map[string]any
		want     webhook.Event
	}{
		{"product refresh failed", map[string]any{"state": "failed", "error_message": "The institution is down.", "state_changed_at": "2024-05-01T11:00:00"},
			webhook.Event{Kind: webhook.ProductRefresh, Product: "identity", State: "failed", RefreshState: webhook.RefreshFailed,
				ErrorMessage: "The institution is down.", OccurredAt: time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC)}},
		{"product refresh pending", map[string]any{"state": "pending"},
			webhook.Event{Kind: webhook.ProductRefresh, Product: "identity", State: "pending", RefreshState: webhook.RefreshPending,
				OccurredAt: time.Date(2024, 5, 1, 11, 59, 57, 0, time.UTC)}},
		{"product refresh in progress", map[string]any{"state": "in_progress"},
			webhook.Event{Kind: webhook.ProductRefresh, Product: "identity", State: "in_progress", RefreshState: webhook.RefreshInProgress,
				OccurredAt: time.Date(2024, 5, 1, 11, 59, 57, 0, time.UTC)}},
		{"product refresh of a new state", map[string]any{"state": "queued"},
			webhook.Event{Kind: webhook.ProductRefresh, Product: "identity", State: "queued", RefreshState: webhook.RefreshUnknown,
				OccurredAt: time.Date(2024, 5, 1, 11, 59, 57, 0, time.UTC)}},
		{"state changed", map[string]any{"webhook_event": "link.state_changed", "product": nil, "state_changed_at": nil,
			"state": "error", "error": "auth_expired", "error_message": "Reconnect."},
			webhook.Event{Kind: webhook.StateChanged, State: "error", LinkState: "error", LinkError: "auth_expired",
				ErrorMessage: "Reconnect.", RefreshState: webhook.RefreshUnknown, OccurredAt: time.Date(2024, 5, 1, 11, 59, 58, 0, time.UTC)}},
		{"transactions", map[string]any{"webhook_event": "transactions.updates_available", "product": nil, "state": nil,
			"state_changed_at": nil, "has_history": true, "webhook_timestamp": "2024-05-01T13:59:58+02:00"},
			webhook.Event{Kind: webhook.TransactionsUpdatesAvailable, HasHistory: true, RefreshState: webhook.RefreshUnknown,
				OccurredAt: time.Date(2024, 5, 1, 11, 59, 58, 0, time.UTC)}},
		{"a kind this API does not know", map[string]any{"webhook_event": "link.sparkled", "product": nil, "state": nil,
			"state_changed_at": nil, "webhook_timestamp": "yesterday", "sparkle": map[string]any{"new": true}},
			webhook.Event{Kind: webhook.Unknown, RefreshState: webhook.RefreshUnknown}},
		{"a major version this code does not know", map[string]any{"webhook_major_version": 2},
			webhook.Event{Kind: webhook.Unknown, Product: "identity", State: "completed", RefreshState: webhook.RefreshUnknown,
				OccurredAt: time.Date(2024, 5, 1, 11, 59, 57, 0, time.UTC)}},
		{"nulls", map[string]any{"link_tags": nil, "state": nil, "product": nil},
			webhook.Event{Kind: webhook.ProductRefresh, RefreshState: webhook.RefreshUnknown, OccurredAt: time.Date(2024, 5, 1, 11, 59, 57, 0, time.UTC)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			body := eventBody("idem-kind", c.override)
			expect(t, f.deliver(body), http.StatusOK, wantAccepted)
			got := f.applied()
			if len(got) != 1 {
				t.Fatalf("applied %d events", len(got))
			}
			want := c.want
			want.LinkID, want.IdempotencyKey = testLinkID, "idem-kind"
			want.RawEvent = "link.product_refresh"
			if ev, ok := c.override["webhook_event"].(string); ok {
				want.RawEvent = ev
			}
			if _, ok := c.override["link_tags"]; !ok {
				want.LinkTags = []string{"customer"}
			}
			if diff := cmp.Diff(want, got[0]); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}
		})
	}
}
