package model_test

import (
	"bytes"
	"testing"

	"github.com/mkgraph/mkgraph/graph/model"
)

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
