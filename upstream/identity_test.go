package upstream_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream"
)

func TestDecodeIdentityGolden(t *testing.T) {
	id, err := upstream.DecodeIdentity(MustReadFile(t, "identity_example.json"))
	if err != nil {
		t.Fatalf("DecodeIdentity(identity_example.json): %v, want nil error", err)
	}
	got, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "identity_example.golden", append(got, '\n'))
}

// TestDecodeIdentityExample checks the documentation's example field by field,
// so that a wrong golden file cannot hide a decoding mistake.
func TestDecodeIdentityExample(t *testing.T) {
	id, err := upstream.DecodeIdentity(MustReadFile(t, "identity_example.json"))
	if err != nil {
		t.Fatalf("DecodeIdentity(identity_example.json): %v, want nil error", err)
	}
	if len(id.Accounts) != 1 {
		t.Fatalf("len(Accounts) = %d, want 1", len(id.Accounts))
	}
	a := id.Accounts[0]
	str := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	for _, c := range []struct{ name, got, want string }{
		{"account_id", a.AccountID, "acc_6Tef269B6ZArSVpYrxtjBV"},
		{"account_type", a.AccountType, "depository.checking"},
		{"name", a.Name, "Premier Checking"},
		{"nickname", str(a.Nickname), "John's Account"},
		{"account_mask", str(a.AccountMask), "3748"},
		{"original_id", str(a.OriginalID), "<nil>"},
		{"currency", str(a.Balances.Currency), "USD"},
		{"available", a.Balances.Available.String(), "340.12"},
		{"current", a.Balances.Current.String(), "445.89"},
		{"limit", a.Balances.Limit.String(), "500"},
		{"owner name", str(a.Owners[0].Names[0]), "John Smith"},
		{"city", str(a.Owners[0].Addresses[0].City), "Boston"},
		{"postal_code", str(a.Owners[0].Addresses[0].PostalCode), "02108"},
		{"phone", str(a.Owners[0].PhoneNumbers[0].Number), "6175551212"},
		{"phone type", str(a.Owners[0].PhoneNumbers[0].Type), "home"},
		{"email", str(a.Owners[0].Emails[0].Address), "example@example.com"},
		{"link_id", id.Link.LinkID, "mk_eqkWN34UEoa2NxyALG8pcV"},
		{"institution_id", id.Link.InstitutionID, "chase"},
		{"state", id.Link.State, "connected"},
		{"provider", id.Link.Provider, "akoya"},
		{"link error_code", str(id.Link.ErrorCode), "<nil>"},
		{"webhook", str(id.Link.Webhook), "https://example.com/webhook"},
		{"product error_code", str(id.Link.Products["identity"].ErrorCode), "rate_limit"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if a.Closed == nil || !*a.Closed {
		t.Errorf("closed = %v, want true", a.Closed)
	}
	if want := time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC); !a.Balances.BalanceDate.Time.Equal(want) {
		t.Errorf("balance_date = %v, want %v", a.Balances.BalanceDate.Time, want)
	}
	if got, want := len(id.Link.Products), 6; got != want {
		t.Errorf("len(products) = %d, want %d", got, want)
	}
	if want := time.Date(2025, 8, 20, 0, 1, 21, 281_000_000, time.UTC); !id.Link.Products["transactions"].LastEnriched.Time.Equal(want) {
		t.Errorf("transactions.last_enriched = %v, want %v", id.Link.Products["transactions"].LastEnriched.Time, want)
	}
	if id.Link.Products["identity"].LastEnriched.Valid() {
		t.Errorf("identity.last_enriched is valid, want absent")
	}
	if tags, _ := json.Marshal(id.Link.LinkTags); string(tags) != `["smoke_test","user_type:admin"]` {
		t.Errorf("link_tags = %s, want [\"smoke_test\",\"user_type:admin\"]", tags)
	}
	if diff := cmp.Diff([]string{"account_numbers"}, id.Link.AvailableProducts); diff != "" {
		t.Errorf("available_products mismatch (-want +got):\n%s", diff)
	}
}

func TestDecodeIdentityUnknownFields(t *testing.T) {
	body := `{
		"request_id": "req_1",
		"accounts": [{
			"account_id": "acc_1", "account_type": "depository.hsa", "name": "HSA",
			"account_subtype_v2": {"code": "health_savings"},
			"interest_rate_bps": 425,
			"balances": {"currency": "USD", "current": 1.5, "pending": 12.5, "as_of": [1, 2]},
			"owners": [{
				"names": ["A"], "date_of_birth": "1988-04-17",
				"addresses": [{"street": "1 Main", "geo": {"lat": 1.0}}],
				"phone_numbers": [{"number": "1", "type": "fax", "extension": "12"}],
				"emails": [{"address": "a@example.com", "verified": true}]
			}]
		}],
		"link": {
			"link_id": "mk_novel", "state": "reconnecting", "provider": "teller",
			"products": {"liabilities": {"refreshed_at": "2024-09-12T10:00:00Z", "coverage": "partial"}},
			"available_products": ["liabilities"],
			"last_synced_at": "2024-09-12T10:00:00Z", "tags": ["x"], "future": null
		}
	}`
	id := MustDecodeIdentity(t, body)
	if got := id.Accounts[0].Balances.Current.String(); got != "1.5" {
		t.Errorf("current = %q, want 1.5", got)
	}
	if got := *id.Accounts[0].Owners[0].PhoneNumbers[0].Type; got != "fax" {
		t.Errorf("phone type = %q, want fax (unknown enum values pass through)", got)
	}
	if got := id.Link.State; got != "reconnecting" {
		t.Errorf("state = %q, want reconnecting", got)
	}
	if !id.Link.Products["liabilities"].RefreshedAt.Valid() {
		t.Errorf("products.liabilities.refreshed_at is not valid, want 2024-09-12T10:00:00Z")
	}
}

func TestDecodeIdentityNulls(t *testing.T) {
	body := `{
		"accounts": [{
			"account_id": "acc_1", "account_type": "other", "name": "X",
			"nickname": null, "account_mask": null, "balances": null,
			"original_id": null, "closed": null,
			"owners": [{"names": [null, "B"], "addresses": [{"street": null, "city": null, "region": null,
				"postal_code": null, "country": null, "primary": null}],
				"phone_numbers": [{"number": null, "type": null, "primary": null}],
				"emails": [{"address": null, "primary": null}]},
				{"names": null, "addresses": null, "phone_numbers": null, "emails": null}]
		}, {
			"account_id": "acc_2", "account_type": "other", "name": "Y", "owners": null,
			"balances": {"currency": null, "available": null, "current": null, "limit": null, "balance_date": null}
		}],
		"link": {
			"link_id": "mk_nulls", "institution_id": null, "institution_name": null,
			"institution_avatar": null, "state": null, "error_code": null, "provider": null,
			"link_tags": null, "webhook": null, "products": {"identity": null, "accounts": {
				"refreshed_at": null, "last_attempted_at": null, "error_code": null,
				"error_message": null, "unavailable": null, "last_enriched": null}},
			"available_products": null
		}
	}`
	id := MustDecodeIdentity(t, body)
	a := id.Accounts[0]
	if a.Nickname != nil || a.AccountMask != nil || a.Balances != nil || a.OriginalID != nil || a.Closed != nil {
		t.Errorf("account 0 optional fields = %+v, want all nil", a)
	}
	if o := a.Owners[0]; o.Names[0] != nil || *o.Names[1] != "B" || o.Addresses[0].Street != nil || o.PhoneNumbers[0].Number != nil || o.Emails[0].Address != nil {
		t.Errorf("owner 0 = %+v, want null entries kept as nil", o)
	}
	b := id.Accounts[1].Balances
	if b.Currency != nil || b.Available.Valid() || b.Current.Valid() || b.Limit.Valid() || b.BalanceDate.Valid() || b.BalanceDate.Invalid {
		t.Errorf("account 1 balances = %+v, want all absent", b)
	}
	if id.Link.InstitutionAvatar != nil || id.Link.ErrorCode != nil || id.Link.Webhook != nil || id.Link.LinkTags != nil {
		t.Errorf("link = %+v, want null optional fields nil", id.Link)
	}
	if p := id.Link.Products["accounts"]; p.RefreshedAt.Valid() || p.ErrorCode != nil || p.ErrorMessage != nil || p.Unavailable != nil {
		t.Errorf("products.accounts = %+v, want all absent", p)
	}
}

func TestDecodeIdentityMissingAccounts(t *testing.T) {
	for _, body := range []string{
		`{"link":{"link_id":"mk_1"}}`,
		`{"accounts":null,"link":{"link_id":"mk_1"}}`,
		`{"accounts":[],"link":{"link_id":"mk_1"}}`,
	} {
		id, err := upstream.DecodeIdentity([]byte(body))
		if err != nil {
			t.Errorf("DecodeIdentity(%s): %v, want nil error", body, err)
			continue
		}
		if len(id.Accounts) != 0 || id.Link.LinkID != "mk_1" {
			t.Errorf("DecodeIdentity(%s) = %d accounts, link %q; want 0 accounts, link mk_1", body, len(id.Accounts), id.Link.LinkID)
		}
	}
}

func TestDecodeIdentityErrors(t *testing.T) {
	example := string(MustReadFile(t, "identity_example.json"))
	tests := []struct {
		name string
		body string
	}{
		{"empty", ``},
		{"whitespace", "  \n"},
		{"not JSON", `<html>oops</html>`},
		{"open brace", `{`},
		{"truncated example", example[:len(example)/2]},
		{"truncated by one byte", strings.TrimSpace(example)[:len(strings.TrimSpace(example))-1]},
		{"JSON null", `null`},
		{"array", `[]`},
		{"string", `"identity"`},
		{"trailing object", `{"link":{"link_id":"mk_1"}} {}`},
		{"trailing garbage", `{"link":{"link_id":"mk_1"}} x`},
		{"trailing number", `{"link":{"link_id":"mk_1"}}1`},
		{"example twice", example + example},
		{"missing link", `{"accounts":[]}`},
		{"null link", `{"accounts":[],"link":null}`},
		{"missing link_id", `{"accounts":[],"link":{"institution_id":"chase"}}`},
		{"empty link_id", `{"accounts":[],"link":{"link_id":""}}`},
		{"null link_id", `{"accounts":[],"link":{"link_id":null}}`},
		{"missing account_id", `{"accounts":[{"account_id":"acc_1"},{"name":"no id"}],"link":{"link_id":"mk_1"}}`},
		{"empty account_id", `{"accounts":[{"account_id":""}],"link":{"link_id":"mk_1"}}`},
		{"accounts not a list", `{"accounts":{"account_id":"acc_1"},"link":{"link_id":"mk_1"}}`},
		{"link_id not a string", `{"link":{"link_id":42}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if id, err := upstream.DecodeIdentity([]byte(tt.body)); err == nil {
				t.Errorf("DecodeIdentity(%.80q) = %+v, nil error; want an error", tt.body, id)
			}
		})
	}
}

func TestDecodeIdentityTrailingCloser(t *testing.T) {
	for _, body := range []string{`{"link":{"link_id":"mk_1"}}}`, `{"link":{"link_id":"mk_1"}}]`, `{"link":{"link_id":"mk_1"}} ]}`} {
		if _, err := upstream.DecodeIdentity([]byte(body)); err == nil {
			t.Errorf("DecodeIdentity(%q): nil error, want a trailing data error", body)
		}
	}
}
