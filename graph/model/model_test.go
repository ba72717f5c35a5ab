package model_test

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mkgraph/mkgraph/graph/model"
	"github.com/mkgraph/mkgraph/upstream"
)

// MustDecode decodes an identity answer as the upstream client would.
func MustDecode(tb testing.TB, body string) *upstream.Identity {
	tb.Helper()
	id, err := upstream.DecodeIdentity([]byte(body))
	if err != nil {
		tb.Fatalf("DecodeIdentity(%s): %v", body, err)
	}
	return id
}

// warning is one call of a model.Warner.
type warning struct{ Kind, Value string }

// recorder returns a Warner that appends to *got.
func recorder(got *[]warning) model.Warner {
	return func(kind, value string) { *got = append(*got, warning{kind, value}) }
}

func ptr[T any](v T) *T { return &v }

func utc(s string) *time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	t = t.UTC()
	return &t
}

// linkJSON is an identity answer with the given link fields spliced in.
func linkJSON(linkFields string) string {
	return `{"accounts":[],"link":{"link_id":"mk_1","institution_id":"i","institution_name":"I","provider":"p"` + linkFields + `}}`
}

// accountJSON is an identity answer with one account with the given fields.
func accountJSON(accountFields string) string {
	return `{"accounts":[{"account_id":"acc_1","account_type":"depository.checking","name":"C"` + accountFields + `}],"link":{"link_id":"mk_1","state":"connected"}}`
}

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

func TestNewLinkAccounts(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []*model.Account
	}{
		{
			name: "every field",
			body: accountJSON(`,"nickname":"N","account_mask":"3748","original_id":"orig","closed":true,` +
				`"balances":{"currency":"USD","available":340.12,"current":"0.10","limit":12345678901234567.89,"balance_date":"2023-02-16T09:14:11Z"},` +
				`"owners":[{"names":["John Smith"],"addresses":[{"street":"12 Park Street","city":"Boston","region":"MA","postal_code":"02108","country":"US","primary":true}],` +
				`"phone_numbers":[{"number":"6175551212","type":"home","primary":true}],"emails":[{"address":"j@example.com","primary":false}]}]`),
			want: []*model.Account{{
				ID: "acc_1", Type: "depository.checking", Name: "C", Nickname: ptr("N"), Mask: ptr("3748"), OriginalID: ptr("orig"), Closed: ptr(true),
				Balances: &model.Balances{
					Currency: ptr("USD"), Available: ptr("340.12"), Current: ptr("0.10"), Limit: ptr("12345678901234567.89"),
					BalanceDate: utc("2023-02-16T09:14:11Z"),
				},
				Owners: []*model.Owner{{
					Names:        []string{"John Smith"},
					Addresses:    []*model.Address{{Street: ptr("12 Park Street"), City: ptr("Boston"), Region: ptr("MA"), PostalCode: ptr("02108"), Country: ptr("US"), Primary: ptr(true)}},
					PhoneNumbers: []*model.PhoneNumber{{Number: "6175551212", Type: ptr("home"), Primary: ptr(true)}},
					Emails:       []*model.Email{{Address: "j@example.com", Primary: ptr(false)}},
				}},
			}},
		},
		{
			name: "absent optional fields",
			body: accountJSON(``),
			want: []*model.Account{{ID: "acc_1", Type: "depository.checking", Name: "C", Owners: []*model.Owner{}}},
		},
		{
			name: "sparse balances",
			body: accountJSON(`,"balances":{"current":87,"available":null}`),
			want: []*model.Account{{ID: "acc_1", Type: "depository.checking", Name: "C", Owners: []*model.Owner{}, Balances: &model.Balances{Current: ptr("87")}}},
		},
		{
			name: "null entries dropped",
			body: accountJSON(`,"owners":[{"names":[null,"A",null],"addresses":[{}],"phone_numbers":[{"number":null,"type":"fax"},{"number":"1"}],"emails":[{"address":null,"primary":true},{"address":"e@x"}]},{}]`),
			want: []*model.Account{{ID: "acc_1", Type: "depository.checking", Name: "C", Owners: []*model.Owner{
				{
					Names:        []string{"A"},
					Addresses:    []*model.Address{{}},
					PhoneNumbers: []*model.PhoneNumber{{Number: "1"}},
					Emails:       []*model.Email{{Address: "e@x"}},
				},
				{Names: []string{}, Addresses: []*model.Address{}, PhoneNumbers: []*model.PhoneNumber{}, Emails: []*model.Email{}},
			}}},
		},
		{
			name: "unknown phone type kept",
			body: accountJSON(`,"owners":[{"phone_numbers":[{"number":"2","type":"fax"}]}]`),
			want: []*model.Account{{ID: "acc_1", Type: "depository.checking", Name: "C", Owners: []*model.Owner{
				{Names: []string{}, Addresses: []*model.Address{}, PhoneNumbers: []*model.PhoneNumber{{Number: "2", Type: ptr("fax")}}, Emails: []*model.Email{}},
			}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := model.NewLink(MustDecode(t, tt.body), nil).Accounts(nil)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("accounts mismatch (-want +got):\n%s", diff)
			}
			// Every list of an owner is non-null in the schema.
			for _, a := range got {
				for i, o := range a.Owners {
					if o.Names == nil || o.Addresses == nil || o.PhoneNumbers == nil || o.Emails == nil {
						t.Errorf("owner %d has a nil list: %+v", i, o)
					}
				}
			}
		})
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

func TestLinkAccountsFilter(t *testing.T) {
	l := model.NewLink(MustDecode(t, `{"accounts":[`+
		`{"account_id":"a","account_type":"t","name":"A"},`+
		`{"account_id":"b","account_type":"t","name":"B"},`+
		`{"account_id":"c","account_type":"t","name":"C"}],`+
		`"link":{"link_id":"mk_1","state":"connected"}}`), nil)
	ids := func(as []*model.Account) []string {
		out := make([]string, 0, len(as))
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	tests := []struct {
		name string
		ids  []string
		want []string
	}{
		{"nil: all, upstream order", nil, []string{"a", "b", "c"}},
		{"empty: none", []string{}, []string{}},
		{"given order, unknown and repeated left out", []string{"b", "a", "zzz", "a"}, []string{"b", "a"}},
		{"only unknown", []string{"zzz"}, []string{}},
		{"reversed", []string{"c", "b", "a"}, []string{"c", "b", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := l.Accounts(tt.ids)
			if got == nil {
				t.Fatalf("Accounts(%q) = nil, want a non-nil list", tt.ids)
			}
			if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
				t.Errorf("Accounts(%q) mismatch (-want +got):\n%s", tt.ids, diff)
			}
		})
	}
	// Filtering must not disturb the full list.
	if diff := cmp.Diff([]string{"a", "b", "c"}, ids(l.Accounts(nil))); diff != "" {
		t.Errorf("Accounts(nil) after filtering mismatch (-want +got):\n%s", diff)
	}
}

func TestLinkAccountsDuplicateUpstreamIDs(t *testing.T) {
	l := model.NewLink(MustDecode(t, `{"accounts":[`+
		`{"account_id":"a","account_type":"t","name":"first"},`+
		`{"account_id":"a","account_type":"t","name":"second"}],`+
		`"link":{"link_id":"mk_1","state":"connected"}}`), nil)
	if got := l.Accounts([]string{"a"}); len(got) != 1 || got[0].Name != "first" {
		t.Errorf("Accounts([a]) = %+v, want the first account a", got)
	}
	if got := len(l.Accounts(nil)); got != 2 {
		t.Errorf("len(Accounts(nil)) = %d, want 2", got)
	}
}

func TestEnums(t *testing.T) {
	for _, s := range []model.LinkState{model.LinkStateConnecting, model.LinkStateAwaitingTokenExchange, model.LinkStateConnected, model.LinkStateDeleted, model.LinkStateError, model.LinkStateUnknown} {
		if !s.IsValid() {
			t.Errorf("%s.IsValid() = false", s)
		}
		var got model.LinkState
		if err := got.UnmarshalGQL(string(s)); err != nil || got != s {
			t.Errorf("UnmarshalGQL(%q) = %q, %v", s, got, err)
		}
		var b bytes.Buffer
		s.MarshalGQL(&b)
		if b.String() != `"`+string(s)+`"` {
			t.Errorf("MarshalGQL(%s) = %s", s, b.String())
		}
	}
	for _, p := range []model.Product{model.ProductAccounts, model.ProductAccountNumbers, model.ProductIdentity, model.ProductTransactions, model.ProductInvestments, model.ProductEnrichment} {
		if !p.IsValid() {
			t.Errorf("%s.IsValid() = false", p)
		}
		var got model.Product
		if err := got.UnmarshalGQL(string(p)); err != nil || got != p {
			t.Errorf("UnmarshalGQL(%q) = %q, %v", p, got, err)
		}
	}
	var s model.LinkState
	for _, bad := range []any{"ACCOUNTS", "connected", "", 1} {
		if err := s.UnmarshalGQL(bad); err == nil {
			t.Errorf("LinkState.UnmarshalGQL(%v) = nil error", bad)
		}
	}
	var p model.Product
	for _, bad := range []any{"CONNECTED", "LIABILITIES", "accounts"} {
		if err := p.UnmarshalGQL(bad); err == nil {
			t.Errorf("Product.UnmarshalGQL(%v) = nil error", bad)
		}
	}
	if model.LinkState("ACCOUNTS").IsValid() || model.Product("UNKNOWN").IsValid() {
		t.Error("IsValid accepts a value of the other enum")
	}
}

func marshal(m interface{ MarshalGQL(w io.Writer) }) string {
	var b strings.Builder
	m.MarshalGQL(&b)
	return b.String()
}

func TestMarshalDateTime(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC), `"2023-02-16T09:14:11Z"`},
		{time.Date(2024, 11, 29, 23, 59, 59, 0, cet), `"2024-11-29T22:59:59Z"`},
		{time.Date(2025, 8, 20, 0, 1, 21, 281_000_000, time.UTC), `"2025-08-20T00:01:21.281Z"`},
	}
	for _, tt := range tests {
		got := marshal(model.MarshalDateTime(tt.in))
		if got != tt.want {
			t.Errorf("MarshalDateTime(%v) = %s, want %s", tt.in, got, tt.want)
		}
		var s string
		if err := json.Unmarshal([]byte(got), &s); err != nil {
			t.Errorf("MarshalDateTime(%v) = %s, not a JSON string: %v", tt.in, got, err)
		}
	}
}

func TestUnmarshalDateTime(t *testing.T) {
	tests := []struct {
		in      any
		want    time.Time
		wantErr bool
	}{
		{in: "2023-02-16T09:14:11Z", want: time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC)},
		{in: "2024-11-29T23:59:59+01:00", want: time.Date(2024, 11, 29, 22, 59, 59, 0, time.UTC)},
		{in: "2024-05-01T12:30:00", want: time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC)},
		{in: "2025-08-20T00:01:21.281Z", want: time.Date(2025, 8, 20, 0, 1, 21, 281_000_000, time.UTC)},
		{in: "yesterday", wantErr: true},
		{in: "", wantErr: true},
		{in: int64(1700000000), wantErr: true},
		{in: nil, wantErr: true},
	}
	for _, tt := range tests {
		got, err := model.UnmarshalDateTime(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("UnmarshalDateTime(%#v) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if tt.wantErr {
			continue
		}
		if !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("UnmarshalDateTime(%#v) = %v, want %v in UTC", tt.in, got, tt.want)
		}
		// Round trip.
		if back := marshal(model.MarshalDateTime(got)); back != `"`+tt.want.Format(time.RFC3339Nano)+`"` {
			t.Errorf("MarshalDateTime(UnmarshalDateTime(%#v)) = %s", tt.in, back)
		}
	}
}

func TestMarshalDecimal(t *testing.T) {
	for _, s := range []string{"340.12", "0.10", "12345678901234567.89", "-5", "500", "1500.00"} {
		got := marshal(model.MarshalDecimal(s))
		if want := `"` + s + `"`; got != want {
			t.Errorf("MarshalDecimal(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestUnmarshalDecimal(t *testing.T) {
	tests := []struct {
		in      any
		want    string
		wantErr bool
	}{
		{in: "340.12", want: "340.12"},
		{in: "0.10", want: "0.10"},
		{in: "12345678901234567.89", want: "12345678901234567.89"},
		{in: "-1.5", want: "-1.5"},
		{in: int64(42), want: "42"},
		{in: 7, want: "7"},
		{in: 340.12, wantErr: true}, // a float has already lost the digits
		{in: "abc", wantErr: true},
		{in: "", wantErr: true},
		{in: "NaN", wantErr: true},
		{in: "+1", wantErr: true},
		{in: "01", wantErr: true},
		{in: " 1", wantErr: true},
		{in: `"1"`, wantErr: true},
		{in: true, wantErr: true},
		{in: nil, wantErr: true},
	}
	for _, tt := range tests {
		got, err := model.UnmarshalDecimal(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("UnmarshalDecimal(%#v) = %q, %v; want error %v", tt.in, got, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("UnmarshalDecimal(%#v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
