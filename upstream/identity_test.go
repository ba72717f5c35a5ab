package upstream_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden files from the current output")

// MustReadFile returns the contents of testdata/name.
func MustReadFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// MustDecodeIdentity decodes body or fails the test.
func MustDecodeIdentity(tb testing.TB, body string) *upstream.Identity {
	tb.Helper()
	id, err := upstream.DecodeIdentity([]byte(body))
	if err != nil {
		tb.Fatalf("DecodeIdentity(%.200q): %v, want nil error", body, err)
	}
	return id
}

// checkGolden compares got with testdata/name, or rewrites the file under -update.
func checkGolden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run go test ./upstream -run %s -update to create it)", err, tb.Name())
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		tb.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// accountJSON wraps one account (as JSON) into a minimal identity answer.
func accountJSON(account string) string {
	return `{"accounts":[` + account + `],"link":{"link_id":"mk_test"}}`
}

// balancesJSON wraps balances (as JSON) into a minimal identity answer.
func balancesJSON(balances string) string {
	return accountJSON(`{"account_id":"acc_1","account_type":"depository.checking","name":"Checking","balances":` + balances + `,"owners":[]}`)
}

// productJSON wraps one product status (as JSON) into a minimal identity answer.
func productJSON(status string) string {
	return `{"accounts":[],"link":{"link_id":"mk_test","products":{"identity":` + status + `}}}`
}

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

func TestDecodeIdentityAmounts(t *testing.T) {
	tests := []struct {
		name  string
		value string // the JSON value of "available"
		want  string // Decimal.String(); "" means absent
	}{
		{"decimal", `340.12`, "340.12"},
		{"integer", `500`, "500"},
		{"twenty digits", `12345678901234567890`, "12345678901234567890"},
		{"beyond float64 precision", `12345678901234567.89`, "12345678901234567.89"},
		{"trailing zero", `0.10`, "0.10"},
		{"negative", `-12.50`, "-12.50"},
		{"zero", `0`, "0"},
		{"exponent", `1.5e3`, "1.5e3"},
		{"string", `"340.12"`, "340.12"},
		{"string with trailing zero", `"0.10"`, "0.10"},
		{"string twenty digits", `"12345678901234567890"`, "12345678901234567890"},
		{"null", `null`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := balancesJSON(`{"currency":"USD","available":` + tt.value + `}`)
			id := MustDecodeIdentity(t, body)
			got := id.Accounts[0].Balances.Available
			if got.String() != tt.want {
				t.Errorf("DecodeIdentity(available=%s).Available = %q, want %q", tt.value, got.String(), tt.want)
			}
			if got.Valid() != (tt.want != "") {
				t.Errorf("DecodeIdentity(available=%s).Available.Valid() = %v, want %v", tt.value, got.Valid(), tt.want != "")
			}
			// Re-encoding must keep the digits exactly, as a JSON number.
			out, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == "" {
				want = "null"
			}
			if string(out) != want {
				t.Errorf("json.Marshal(Available) = %s, want %s", out, want)
			}
			if id.Accounts[0].Balances.Current.Valid() {
				t.Errorf("absent current is Valid, want absent")
			}
		})
	}
}

func TestDecodeIdentityBadAmounts(t *testing.T) {
	for _, value := range []string{`true`, `"abc"`, `""`, `{}`, `[]`, `[1]`, `"null"`, `" 1"`, `"1,5"`, `"NaN"`, `"+1"`} {
		body := balancesJSON(`{"available":` + value + `}`)
		if _, err := upstream.DecodeIdentity([]byte(body)); err == nil {
			t.Errorf("DecodeIdentity(available=%s): nil error, want an error", value)
		}
	}
}

func TestNewDecimal(t *testing.T) {
	for _, s := range []string{"0", "340.12", "500", "0.10", "-0.5", "12345678901234567890", "1e-7", "1E+2"} {
		d, err := upstream.NewDecimal(s)
		if err != nil {
			t.Errorf("NewDecimal(%q): %v, want nil error", s, err)
			continue
		}
		if d.String() != s || !d.Valid() {
			t.Errorf("NewDecimal(%q) = %q (valid %v), want %q (valid true)", s, d.String(), d.Valid(), s)
		}
	}
	for _, s := range []string{"true", `"abc"`, "abc", "null", `""`, "", "{}", "[]", "-", "01", "1.", ".5", "+1", "NaN", "Infinity", "0x10", " 1", "1 2"} {
		if d, err := upstream.NewDecimal(s); err == nil {
			t.Errorf("NewDecimal(%q) = %q, nil error; want an error", s, d.String())
		}
	}
}

func TestNewDecimalSurroundingSpace(t *testing.T) {
	for _, s := range []string{"1 ", "1\n", "0.10\t"} {
		if d, err := upstream.NewDecimal(s); err == nil {
			t.Errorf("NewDecimal(%q) = %q, nil error; want an error", s, d.String())
		}
	}
	body := balancesJSON(`{"available":"12.50 "}`)
	if id, err := upstream.DecodeIdentity([]byte(body)); err == nil {
		t.Errorf("DecodeIdentity(available=\"12.50 \") = %q, nil error; want an error", id.Accounts[0].Balances.Available.String())
	}
}

func TestDecodeIdentityTimestamps(t *testing.T) {
	tests := []struct {
		name        string
		value       string // the JSON value of refreshed_at; "" leaves the field out
		want        time.Time
		wantInvalid bool
	}{
		{"zulu", `"2023-02-16T09:14:11Z"`, time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC), false},
		{"offset", `"2023-02-16T09:14:11+02:00"`, time.Date(2023, 2, 16, 7, 14, 11, 0, time.UTC), false},
		{"negative offset", `"2023-02-16T21:14:11-05:00"`, time.Date(2023, 2, 17, 2, 14, 11, 0, time.UTC), false},
		{"no zone is UTC", `"2023-02-16T09:14:11"`, time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC), false},
		{"fractional", `"2025-08-20T00:01:21.281Z"`, time.Date(2025, 8, 20, 0, 1, 21, 281_000_000, time.UTC), false},
		{"fractional no zone", `"2025-08-20T00:01:21.281"`, time.Date(2025, 8, 20, 0, 1, 21, 281_000_000, time.UTC), false},
		{"microseconds", `"2025-08-20T00:01:21.123456+00:00"`, time.Date(2025, 8, 20, 0, 1, 21, 123_456_000, time.UTC), false},
		{"space separator", `"2023-02-16 09:14:11"`, time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC), false},
		{"null", `null`, time.Time{}, false},
		{"empty string", `""`, time.Time{}, false},
		{"absent", ``, time.Time{}, false},
		{"unparseable", `"yesterday"`, time.Time{}, true},
		{"impossible date", `"2023-02-30T09:14:11Z"`, time.Time{}, true},
		{"slashes", `"16/02/2023"`, time.Time{}, true},
		{"number", `1676538851`, time.Time{}, true},
		{"bool", `true`, time.Time{}, true},
		{"object", `{"seconds":1}`, time.Time{}, true},
		{"array", `["2023-02-16T09:14:11Z"]`, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := `{"error_code":null}`
			if tt.value != "" {
				status = `{"refreshed_at":` + tt.value + `}`
			}
			id, err := upstream.DecodeIdentity([]byte(productJSON(status)))
			if err != nil {
				t.Fatalf("DecodeIdentity(refreshed_at=%s): %v, want nil error", tt.value, err)
			}
			got := id.Link.Products["identity"].RefreshedAt
			if !got.Time.Equal(tt.want) || got.Invalid != tt.wantInvalid {
				t.Errorf("DecodeIdentity(refreshed_at=%s) = {%v, Invalid: %v}, want {%v, Invalid: %v}", tt.value, got.Time, got.Invalid, tt.want, tt.wantInvalid)
			}
			if wantValid := !tt.want.IsZero(); got.Valid() != wantValid {
				t.Errorf("Valid() = %v, want %v", got.Valid(), wantValid)
			}
			if got.Valid() {
				if got.Time.Location() != time.UTC {
					t.Errorf("Location() = %v, want UTC", got.Time.Location())
				}
				if p := got.Ptr(); p == nil || !p.Equal(tt.want) {
					t.Errorf("Ptr() = %v, want %v", p, tt.want)
				}
			} else if got.Ptr() != nil {
				t.Errorf("Ptr() = %v, want nil", got.Ptr())
			}
		})
	}
}

func TestTimestampMarshalJSON(t *testing.T) {
	tests := []struct {
		in   upstream.Timestamp
		want string
	}{
		{upstream.Timestamp{}, `null`},
		{upstream.Timestamp{Invalid: true}, `null`},
		{upstream.Timestamp{Time: time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC)}, `"2023-02-16T09:14:11Z"`},
		{upstream.Timestamp{Time: time.Date(2025, 8, 20, 0, 1, 21, 281_000_000, time.UTC)}, `"2025-08-20T00:01:21.281Z"`},
		{upstream.Timestamp{Time: time.Date(2023, 2, 16, 11, 14, 11, 0, time.FixedZone("CEST", 2*3600))}, `"2023-02-16T09:14:11Z"`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(tt.in)
		if err != nil || string(got) != tt.want {
			t.Errorf("json.Marshal(%+v) = %s, %v; want %s, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2023-02-16T09:14:11Z", time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC)},
		{"2023-02-16T09:14:11+01:00", time.Date(2023, 2, 16, 8, 14, 11, 0, time.UTC)},
		{"2023-02-16T09:14:11", time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC)},
		{"2023-02-16T09:14:11.5", time.Date(2023, 2, 16, 9, 14, 11, 500_000_000, time.UTC)},
		{"2025-08-20T00:01:21.281Z", time.Date(2025, 8, 20, 0, 1, 21, 281_000_000, time.UTC)},
		{"2023-02-16 09:14:11Z", time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC)},
		{"2023-02-16 09:14:11-03:00", time.Date(2023, 2, 16, 12, 14, 11, 0, time.UTC)},
		{"2023-02-16 09:14:11", time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC)},
		{"2023-02-16", time.Date(2023, 2, 16, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		got, err := upstream.ParseTimestamp(tt.in)
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("ParseTimestamp(%q) = %v, %v; want %v, nil", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "yesterday", "2023-13-01T00:00:00Z", "2023-02-30", "16/02/2023", "1676538851", "2023-02-16T25:00:00Z", " 2023-02-16T09:14:11Z"} {
		if got, err := upstream.ParseTimestamp(in); err == nil {
			t.Errorf("ParseTimestamp(%q) = %v, nil error; want an error", in, got)
		}
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
