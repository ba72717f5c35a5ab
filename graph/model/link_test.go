package model_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mkgraph/mkgraph/graph/model"
)

func TestNewLinkState(t *testing.T) {
	tests := []struct {
		upstream string
		want     model.LinkState
		warn     []warning
	}{
		{"connecting", model.LinkStateConnecting, nil},
		{"awaiting_token_exchange", model.LinkStateAwaitingTokenExchange, nil},
		{"connected", model.LinkStateConnected, nil},
		{"deleted", model.LinkStateDeleted, nil},
		{"error", model.LinkStateError, nil},
		{"reconnecting", model.LinkStateUnknown, []warning{{"link.state", "reconnecting"}}},
		{"CONNECTED", model.LinkStateUnknown, []warning{{"link.state", "CONNECTED"}}},
		{"UNKNOWN", model.LinkStateUnknown, []warning{{"link.state", "UNKNOWN"}}},
	}
	for _, tt := range tests {
		t.Run(tt.upstream, func(t *testing.T) {
			var warns []warning
			l := model.NewLink(MustDecode(t, linkJSON(`,"state":"`+tt.upstream+`"`)), recorder(&warns))
			if l.State != tt.want {
				t.Errorf("NewLink(state %q).State = %s, want %s", tt.upstream, l.State, tt.want)
			}
			if !l.State.IsValid() {
				t.Errorf("state %s is not valid for the schema", l.State)
			}
			if diff := cmp.Diff(tt.warn, warns); diff != "" {
				t.Errorf("warnings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewLinkFields(t *testing.T) {
	tests := []struct {
		name string
		body string
		want *model.Link
		warn []warning
	}{
		{
			name: "every field",
			body: linkJSON(`,"institution_avatar":"https://a/x.png","state":"error","error_code":"auth_expired","link_tags":["t1","t2"],"webhook":"https://h",` +
				`"products":{"accounts":{"refreshed_at":"2023-02-16T09:14:11Z","last_attempted_at":"2023-02-16T10:14:11+01:00","error_code":"rate_limit","error_message":"m","unavailable":"u"},` +
				`"account_numbers":{},"identity":{"refreshed_at":null},"transactions":{"last_enriched":"2025-08-20T00:01:21.281Z"},"investments":{},"enrichment":{}},` +
				`"available_products":["accounts","account_numbers","identity","transactions","investments","enrichment"]`),
			want: &model.Link{
				ID: "mk_1", InstitutionID: "i", InstitutionName: "I", InstitutionAvatar: ptr("https://a/x.png"),
				State: model.LinkStateError, ErrorCode: ptr("auth_expired"), Provider: "p",
				Tags: []string{"t1", "t2"}, Webhook: ptr("https://h"),
				Products: &model.Products{
					Accounts: &model.ProductStatus{
						RefreshedAt: utc("2023-02-16T09:14:11Z"), LastAttemptedAt: utc("2023-02-16T09:14:11Z"),
						ErrorCode: ptr("rate_limit"), ErrorMessage: ptr("m"), Unavailable: ptr("u"),
					},
					AccountNumbers: &model.ProductStatus{},
					Identity:       &model.ProductStatus{},
					Transactions:   &model.ProductStatus{LastEnriched: utc("2025-08-20T00:01:21.281Z")},
					Investments:    &model.ProductStatus{},
					Enrichment:     &model.ProductStatus{},
				},
				AvailableProducts: []model.Product{
					model.ProductAccounts, model.ProductAccountNumbers, model.ProductIdentity,
					model.ProductTransactions, model.ProductInvestments, model.ProductEnrichment,
				},
			},
		},
		{
			name: "absent optional fields",
			body: linkJSON(`,"state":"connected"`),
			want: &model.Link{
				ID: "mk_1", InstitutionID: "i", InstitutionName: "I", State: model.LinkStateConnected, Provider: "p",
				Tags: []string{}, Products: &model.Products{}, AvailableProducts: []model.Product{},
			},
		},
		{
			name: "null optional fields",
			body: linkJSON(`,"state":"connected","institution_avatar":null,"error_code":null,"link_tags":null,"webhook":null,"products":null,"available_products":null`),
			want: &model.Link{
				ID: "mk_1", InstitutionID: "i", InstitutionName: "I", State: model.LinkStateConnected, Provider: "p",
				Tags: []string{}, Products: &model.Products{}, AvailableProducts: []model.Product{},
			},
		},
		{
			name: "null product is null",
			body: linkJSON(`,"state":"connected","products":{"accounts":null,"identity":{}}`),
			want: &model.Link{
				ID: "mk_1", InstitutionID: "i", InstitutionName: "I", State: model.LinkStateConnected, Provider: "p",
				Tags: []string{}, Products: &model.Products{Identity: &model.ProductStatus{}}, AvailableProducts: []model.Product{},
			},
		},
		{
			name: "unknown products left out",
			body: linkJSON(`,"state":"connected","products":{"identity":{},"liabilities":{}},"available_products":["identity","liabilities","transactions"]`),
			want: &model.Link{
				ID: "mk_1", InstitutionID: "i", InstitutionName: "I", State: model.LinkStateConnected, Provider: "p",
				Tags:              []string{},
				Products:          &model.Products{Identity: &model.ProductStatus{}},
				AvailableProducts: []model.Product{model.ProductIdentity, model.ProductTransactions},
			},
			warn: []warning{{"link.products", "liabilities"}, {"link.available_products", "liabilities"}},
		},
		{
			name: "zone-less and unreadable times",
			body: linkJSON(`,"state":"connected","products":{"identity":{"refreshed_at":"2024-05-01T12:30:00","last_attempted_at":"yesterday"}}`),
			want: &model.Link{
				ID: "mk_1", InstitutionID: "i", InstitutionName: "I", State: model.LinkStateConnected, Provider: "p",
				Tags:              []string{},
				Products:          &model.Products{Identity: &model.ProductStatus{RefreshedAt: utc("2024-05-01T12:30:00Z")}},
				AvailableProducts: []model.Product{},
			},
			warn: []warning{{"timestamp", "unreadable"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var warns []warning
			got := model.NewLink(MustDecode(t, tt.body), recorder(&warns))
			// The account index is unexported; TestNewLinkAccounts covers it.
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreUnexported(model.Link{})); diff != "" {
				t.Errorf("NewLink mismatch (-want +got):\n%s", diff)
			}
			// Lists are never null in the schema.
			if got.Tags == nil || got.AvailableProducts == nil || got.Accounts(nil) == nil {
				t.Errorf("NewLink left a list nil: tags %v, availableProducts %v, accounts %v", got.Tags == nil, got.AvailableProducts == nil, got.Accounts(nil) == nil)
			}
			if diff := cmp.Diff(tt.warn, warns); diff != "" {
				t.Errorf("warnings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewLinkTimesAreUTC(t *testing.T) {
	l := model.NewLink(MustDecode(t, linkJSON(`,"state":"connected","products":{"identity":{"refreshed_at":"2024-11-29T23:59:59+01:00"}}`)), nil)
	got := l.Products.Identity.RefreshedAt
	if got == nil || got.Location() != time.UTC || !got.Equal(*utc("2024-11-29T22:59:59Z")) {
		t.Errorf("refreshedAt = %v, want 2024-11-29T22:59:59Z in UTC", got)
	}
}

func TestNewLinkNilWarner(t *testing.T) {
	// A nil Warner must not panic on unknown values.
	l := model.NewLink(MustDecode(t, linkJSON(`,"state":"new","available_products":["new"],"products":{"new":{}}`)), nil)
	if l.State != model.LinkStateUnknown {
		t.Errorf("State = %s, want UNKNOWN", l.State)
	}
}

// TestNewLinkDropsNullTags: NewLink documents "Null entries of required lists
// are dropped", and tags is [String!]!.
func TestNewLinkDropsNullTags(t *testing.T) {
	l := model.NewLink(MustDecode(t, linkJSON(`,"state":"connected","link_tags":[null,"a",null]`)), nil)
	if diff := cmp.Diff([]string{"a"}, l.Tags); diff != "" {
		t.Errorf("Tags mismatch (-want +got):\n%s", diff)
	}
}
