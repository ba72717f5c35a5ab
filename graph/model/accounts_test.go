package model_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/graph/model"
)

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
