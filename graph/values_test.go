package graph_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// TestOddTimestampTypeDoesNotFailLink: upstream.Timestamp documents that "a
// value that is not a time at all is kept as absent and reported by Invalid,
// so that one odd field cannot fail a whole link".
func TestOddTimestampTypeDoesNotFailLink(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"accounts":[],"link":{"link_id":"mk_x","state":"connected","products":{"identity":{"refreshed_at":1700000000}}}}`,
		`{"accounts":[{"account_id":"a","account_type":"t","name":"n","balances":{"current":1,"balance_date":true}}],"link":{"link_id":"mk_x","state":"connected"}}`,
	} {
		ts := newTestServer(t, testOptions{BaseURL: badUpstream(t, http.StatusOK, "application/json", body)})
		resp, out := ts.MustQuery(t, `{ link(id: "mk_x") { id products { identity { refreshedAt } } accounts { balances { current balanceDate } } } }`, nil)
		if len(resp.Errors) != 0 || !strings.Contains(string(resp.Data), `"id":"mk_x"`) {
			t.Errorf("upstream body %s\n  answered %s; want the link with the odd time null", body, out)
		}
	}
}

func TestUnknownValues(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, testOptions{})
	const q = `{ link(id: "` + sandbox.LinkNovel + `") {
  state availableProducts
  products { accounts { refreshedAt } identity { errorCode } transactions { refreshedAt } }
  accounts { owners { phoneNumbers { number type } } }
} }`
	for range 2 { // two requests
		resp, _ := ts.MustQuery(t, q, nil)
		var data struct {
			Link struct {
				State             string
				AvailableProducts []string
				Products          struct {
					Accounts     *struct{ RefreshedAt string }
					Identity     *struct{ ErrorCode string }
					Transactions *struct{ RefreshedAt string }
				}
				Accounts []struct {
					Owners []struct {
						PhoneNumbers []struct{ Number, Type string }
					}
				}
			}
		}
		MustData(t, resp, &data)
		if data.Link.State != "UNKNOWN" {
			t.Errorf("state = %q, want UNKNOWN", data.Link.State)
		}
		if diff := cmp.Diff([]string{"IDENTITY", "TRANSACTIONS"}, data.Link.AvailableProducts); diff != "" {
			t.Errorf("availableProducts mismatch (-want +got):\n%s", diff)
		}
		if p := data.Link.Products; p.Accounts == nil || p.Identity == nil || p.Identity.ErrorCode != "maintenance_window" || p.Transactions != nil {
			t.Errorf("products = %+v, want accounts and identity, transactions null", p)
		}
		if got := data.Link.Accounts[0].Owners[0].PhoneNumbers[1].Type; got != "fax" {
			t.Errorf("phone type = %q, want fax passed through", got)
		}
	}

	type warning struct{ Level, Kind, Value string }
	got := map[warning]int{}
	for line := range strings.SplitSeq(strings.TrimSpace(ts.logs.String()), "\n") {
		var w warning
		if err := json.Unmarshal([]byte(line), &w); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if w.Level == "warn" {
			got[w]++
		}
	}
	want := map[warning]int{
		{"warn", "link.state", "reconnecting"}:             1,
		{"warn", "link.products", "liabilities"}:           1,
		{"warn", "link.available_products", "liabilities"}: 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings over two requests mismatch (-want +got):\n%s", diff)
	}
}

func TestScalarsAndNulls(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, testOptions{})
	resp, body := ts.MustQuery(t, `{
  intl: link(id: "`+sandbox.LinkInternational+`") { accounts { balances { available current limit balanceDate } } }
  sparse: link(id: "`+sandbox.LinkSparse+`") {
    tags institutionAvatar webhook
    products { accounts { refreshedAt } identity { refreshedAt lastAttemptedAt } transactions { refreshedAt } }
    accounts { nickname balances { currency available current } owners { names addresses { city } emails { address } } }
  }
  seed: link(id: "`+sandbox.LinkSeed+`") { accounts { balances { available current limit } } products { transactions { lastEnriched } } }
}`, nil)
	if len(resp.Errors) != 0 {
		t.Fatalf("errors: %s", body)
	}
	var data struct {
		Intl struct {
			Accounts []struct {
				Balances struct {
					Available, Current, Limit *string
					BalanceDate               string
				}
			}
		}
		Sparse struct {
			Tags              []string
			InstitutionAvatar *string
			Webhook           *string
			Products          map[string]map[string]*string
			Accounts          []struct {
				Nickname *string
				Balances struct{ Currency, Available, Current *string }
				Owners   []struct {
					Names     []string
					Addresses []any
					Emails    []any
				}
			}
		}
		Seed struct {
			Accounts []struct {
				Balances struct{ Available, Current, Limit string }
			}
			Products struct{ Transactions struct{ LastEnriched string } }
		}
	}
	if err := json.Unmarshal(resp.Data, &data); err != nil {
		t.Fatal(err)
	}
	deref := func(s *string) string {
		if s == nil {
			return "<null>"
		}
		return *s
	}
	var gotAmounts []string
	for _, a := range data.Intl.Accounts {
		b := a.Balances
		gotAmounts = append(gotAmounts, deref(b.Available), deref(b.Current), deref(b.Limit), b.BalanceDate)
	}
	// The fixture's digits, as written: 0.10 keeps its zero, 1500.00 its
	// decimals, and 12345678901234567.89 is not rounded through a float.
	wantAmounts := []string{"0.10", "1250.75", "1500.00", "2024-11-29T22:59:59Z"}
	if len(gotAmounts) < 4 {
		t.Fatalf("international amounts = %q", gotAmounts)
	}
	if diff := cmp.Diff(wantAmounts, gotAmounts[:4]); diff != "" {
		t.Errorf("international first account mismatch (-want +got):\n%s", diff)
	}
	if !slices.Contains(gotAmounts, "12345678901234567.89") {
		t.Errorf("international amounts %q lack 12345678901234567.89", gotAmounts)
	}
	if !slices.Contains(gotAmounts, "2024-11-30T00:00:00Z") { // 09:00+09:00
		t.Errorf("international dates %q lack 2024-11-30T00:00:00Z (a +09:00 time in UTC)", gotAmounts)
	}

	s := data.Sparse
	if s.Tags == nil || len(s.Tags) != 0 {
		t.Errorf("sparse tags = %#v, want [] when absent", s.Tags)
	}
	if s.InstitutionAvatar != nil || s.Webhook != nil {
		t.Errorf("sparse avatar, webhook = %v, %v; want null", s.InstitutionAvatar, s.Webhook)
	}
	if got := deref(s.Products["accounts"]["refreshedAt"]); got != "2024-05-01T12:30:00Z" {
		t.Errorf("sparse zone-less refreshedAt = %s, want 2024-05-01T12:30:00Z", got)
	}
	if s.Products["identity"]["refreshedAt"] != nil || s.Products["transactions"] != nil {
		t.Errorf("sparse products = %s, want identity.refreshedAt and transactions null", body)
	}
	if a := s.Accounts[0]; a.Nickname != nil || a.Balances.Currency != nil || a.Balances.Available != nil || deref(a.Balances.Current) != "1023.5" {
		t.Errorf("sparse account = %+v, want only current 1023.5", a)
	}
	for _, a := range s.Accounts {
		for _, o := range a.Owners {
			if o.Names == nil || o.Addresses == nil || o.Emails == nil {
				t.Errorf("sparse owner has a null list: %+v", o)
			}
		}
	}
	if b := data.Seed.Accounts[0].Balances; b.Available != "340.12" || b.Current != "445.89" || b.Limit != "500" {
		t.Errorf("seed balances = %+v, want 340.12 445.89 500", b)
	}
	if got := data.Seed.Products.Transactions.LastEnriched; got != "2025-08-20T00:01:21.281Z" {
		t.Errorf("seed lastEnriched = %s", got)
	}
}
