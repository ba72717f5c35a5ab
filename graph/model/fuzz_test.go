package model

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mkgraph/mkgraph/upstream"
)

// manyAccounts is an answer above smallLink accounts, with repeated ids.
func manyAccounts(n int) string {
	var b strings.Builder
	b.WriteString(`{"accounts":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"account_id":"a%d","account_type":"t","name":"n%d"}`, i%(n-2), i)
	}
	b.WriteString(`],"link":{"link_id":"mk_1","state":"connected"}}`)
	return b.String()
}

var newLinkCases = []struct{ name, body string }{
	{"few accounts, repeated id", `{"accounts":[{"account_id":"a","name":"1"},{"account_id":"b"},{"account_id":"a","name":"2"}],"link":{"link_id":"mk_1"}}`},
	{"smallLink accounts", manyAccounts(smallLink)},
	{"more than smallLink accounts", manyAccounts(smallLink + 3)},
	{"unknown values", `{"link":{"link_id":"mk_1","state":"new","available_products":["identity","new"],"products":{"new":{"refreshed_at":1},"identity":{"last_enriched":"x"},"accounts":null}}}`},
	{"null entries", `{"accounts":[{"account_id":"a","owners":[{"names":[null,"A"],"addresses":[{}],"phone_numbers":[{"type":"fax"},{"number":"1"}],"emails":[{"primary":true},{"address":"e"}]},{},null]}],"link":{"link_id":"mk_1","link_tags":[null,"t"]}}`},
	{"balances", `{"accounts":[{"account_id":"a","balances":{"current":1,"balance_date":"bad"}},{"account_id":"b","balances":{}},{"account_id":"c","balances":{"available":"2","limit":3,"balance_date":"2024-01-01"}}],"link":{"link_id":"mk_1"}}`},
}

func TestNewLinkMatchesReference(t *testing.T) {
	for _, tt := range newLinkCases {
		t.Run(tt.name, func(t *testing.T) { compareNewLink(t, []byte(tt.body)) })
	}
}

// FuzzNewLinkDifferential checks NewLink against newLinkReference on every
// identity DecodeIdentity accepts: the same Link, the same accounts for the
// same ids, the same warnings (in any order: products are a map).
//
//	go test -run '^$' -fuzz '^FuzzNewLinkDifferential$' -fuzztime 60s ./graph/model/
func FuzzNewLinkDifferential(f *testing.F) {
	fixtures, err := filepath.Glob(filepath.Join("..", "..", "upstream", "sandbox", "fixtures", "*.json"))
	if err != nil || len(fixtures) == 0 {
		f.Fatalf("no sandbox fixtures: %v", err)
	}
	for _, path := range fixtures {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, tt := range newLinkCases {
		f.Add([]byte(tt.body))
	}
	f.Fuzz(compareNewLink)
}

func compareNewLink(t *testing.T, body []byte) {
	id, err := upstream.DecodeIdentity(body)
	if err != nil {
		return
	}
	var gotWarns, wantWarns []string
	got := NewLink(id, func(kind, value string) { gotWarns = append(gotWarns, kind+"="+value) })
	want := newLinkReference(id, func(kind, value string) { wantWarns = append(wantWarns, kind+"="+value) })
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Link{})); diff != "" {
		t.Fatalf("NewLink differs from the reference (-reference +NewLink):\n%s", diff)
	}
	slices.Sort(gotWarns)
	slices.Sort(wantWarns)
	if diff := cmp.Diff(wantWarns, gotWarns); diff != "" {
		t.Errorf("warnings differ (-reference +NewLink):\n%s", diff)
	}
	var ids []string
	for _, a := range id.Accounts {
		ids = append(ids, a.AccountID)
	}
	reversed := slices.Clone(ids)
	slices.Reverse(reversed)
	for _, sel := range [][]string{nil, {}, ids, append(reversed, ids...), {"zzz"}, append(slices.Repeat(ids, 1+smallLink), "zzz")} {
		if diff := cmp.Diff(accountsReference(want, sel), got.Accounts(sel)); diff != "" {
			t.Errorf("Accounts(%.200q) differs (-reference +NewLink):\n%s", sel, diff)
		}
	}
}
