package model

import (
	"time"

	"github.com/mkgraph/mkgraph/upstream"
)

// newLinkReference is NewLink as it was before newlink.go (a map index of
// the accounts, an allocation per optional value); FuzzNewLinkDifferential
// holds NewLink to it. It converts an identity answer. Values the schema does not know never
// fail: an unknown state is LinkStateUnknown, an unknown product is left out,
// and each is reported to warn. Null entries of required lists are dropped.
func newLinkReference(id *upstream.Identity, warn Warner) *Link {
	if warn == nil {
		warn = func(string, string) {}
	}
	src := &id.Link
	l := &Link{
		ID:                src.LinkID,
		InstitutionID:     src.InstitutionID,
		InstitutionName:   src.InstitutionName,
		InstitutionAvatar: src.InstitutionAvatar,
		State:             linkStates[src.State],
		ErrorCode:         src.ErrorCode,
		Provider:          src.Provider,
		Tags:              make([]string, 0, len(src.LinkTags)),
		Webhook:           src.Webhook,
		Products:          refProducts(src.Products, warn),
		AvailableProducts: make([]Product, 0, len(src.AvailableProducts)),
		accounts:          make([]*Account, len(id.Accounts)),
		byID:              make(map[string]*Account, len(id.Accounts)),
	}
	if l.State == "" {
		l.State = LinkStateUnknown
		warn("link.state", src.State)
	}
	for _, t := range src.LinkTags {
		if t != nil {
			l.Tags = append(l.Tags, *t)
		}
	}
	for _, p := range src.AvailableProducts {
		if v, ok := products[p]; ok {
			l.AvailableProducts = append(l.AvailableProducts, v)
		} else {
			warn("link.available_products", p)
		}
	}
	// One backing array for all accounts: a link with many accounts costs
	// one allocation here, not one per account.
	accounts := make([]Account, len(id.Accounts))
	for i := range id.Accounts {
		a := &accounts[i]
		refAccount(a, &id.Accounts[i], warn)
		l.accounts[i] = a
		if _, dup := l.byID[a.ID]; !dup {
			l.byID[a.ID] = a
		}
	}
	return l
}

func refProducts(m map[string]*upstream.ProductStatus, warn Warner) *Products {
	p := &Products{}
	for k, v := range m {
		var st *ProductStatus
		if v != nil {
			st = refProductStatus(v, warn)
		}
		switch k {
		case "accounts":
			p.Accounts = st
		case "account_numbers":
			p.AccountNumbers = st
		case "identity":
			p.Identity = st
		case "transactions":
			p.Transactions = st
		case "investments":
			p.Investments = st
		case "enrichment":
			p.Enrichment = st
		default:
			warn("link.products", k)
		}
	}
	return p
}

func refProductStatus(s *upstream.ProductStatus, warn Warner) *ProductStatus {
	return &ProductStatus{
		RefreshedAt:     refTimestamp(s.RefreshedAt, warn),
		LastAttemptedAt: refTimestamp(s.LastAttemptedAt, warn),
		ErrorCode:       s.ErrorCode,
		ErrorMessage:    s.ErrorMessage,
		Unavailable:     s.Unavailable,
		LastEnriched:    refTimestamp(s.LastEnriched, warn),
	}
}

// timestamp returns t, or nil when absent; an unreadable time is null too,
// and reported.
func refTimestamp(t upstream.Timestamp, warn Warner) *time.Time {
	if t.Invalid {
		warn("timestamp", "unreadable")
	}
	return t.Ptr()
}

func refAccount(a *Account, src *upstream.Account, warn Warner) {
	*a = Account{
		ID:         src.AccountID,
		Type:       src.AccountType,
		Name:       src.Name,
		Nickname:   src.Nickname,
		Mask:       src.AccountMask,
		OriginalID: src.OriginalID,
		Closed:     src.Closed,
		Owners:     make([]*Owner, len(src.Owners)),
	}
	if b := src.Balances; b != nil {
		a.Balances = &Balances{
			Currency:    b.Currency,
			Available:   refDecimal(b.Available),
			Current:     refDecimal(b.Current),
			Limit:       refDecimal(b.Limit),
			BalanceDate: refTimestamp(b.BalanceDate, warn),
		}
	}
	for i := range src.Owners {
		a.Owners[i] = refOwner(&src.Owners[i])
	}
}

func refOwner(src *upstream.Owner) *Owner {
	o := &Owner{
		Names:        make([]string, 0, len(src.Names)),
		Addresses:    make([]*Address, len(src.Addresses)),
		PhoneNumbers: make([]*PhoneNumber, 0, len(src.PhoneNumbers)),
		Emails:       make([]*Email, 0, len(src.Emails)),
	}
	for _, n := range src.Names {
		if n != nil {
			o.Names = append(o.Names, *n)
		}
	}
	for i, ad := range src.Addresses {
		o.Addresses[i] = &Address{
			Street:     ad.Street,
			City:       ad.City,
			Region:     ad.Region,
			PostalCode: ad.PostalCode,
			Country:    ad.Country,
			Primary:    ad.Primary,
		}
	}
	for _, p := range src.PhoneNumbers {
		if p.Number != nil {
			o.PhoneNumbers = append(o.PhoneNumbers, &PhoneNumber{Number: *p.Number, Type: p.Type, Primary: p.Primary})
		}
	}
	for _, e := range src.Emails {
		if e.Address != nil {
			o.Emails = append(o.Emails, &Email{Address: *e.Address, Primary: e.Primary})
		}
	}
	return o
}

func refDecimal(d upstream.Decimal) *string {
	if !d.Valid() {
		return nil
	}
	s := d.String()
	return &s
}

// accountsReference is Link.Accounts as it was, over the index that
// newLinkReference builds.
func accountsReference(l *Link, ids []string) []*Account {
	if ids == nil {
		return l.accounts
	}
	out := make([]*Account, 0, min(len(ids), len(l.accounts)))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if a, ok := l.byID[id]; ok && !seen[id] {
			seen[id] = true
			out = append(out, a)
		}
	}
	return out
}
