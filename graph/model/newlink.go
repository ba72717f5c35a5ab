package model

import (
	"github.com/mkgraph/mkgraph/upstream"
)

// Warner is told of upstream values the schema does not know, so that they
// can be logged; kind is e.g. "link.state", value the upstream's string.
type Warner func(kind, value string)

// smallLink is the number of accounts up to which Accounts finds an id by
// looking at each account: cheaper than building a map for a few.
const smallLink = 16

// Accounts returns every account, or those whose ids are in ids, in the order
// of ids; unknown and repeated ids are left out.
func (l *Link) Accounts(ids []string) []*Account {
	if ids == nil {
		return l.accounts
	}
	out := make([]*Account, 0, min(len(ids), len(l.accounts)))
	var seen map[*Account]bool
	if len(ids) > smallLink {
		seen = make(map[*Account]bool, len(ids))
	}
	for _, id := range ids {
		a := l.account(id)
		switch {
		case a == nil:
		case seen != nil:
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		case !contains(out, a):
			out = append(out, a)
		}
	}
	return out
}

// account returns the first account with id, or nil.
func (l *Link) account(id string) *Account {
	if l.byID != nil {
		return l.byID[id]
	}
	for _, a := range l.accounts {
		if a.ID == id {
			return a
		}
	}
	return nil
}

func contains(as []*Account, a *Account) bool {
	for _, b := range as {
		if b == a {
			return true
		}
	}
	return false
}

// NewLink converts an identity answer. Values the schema does not know never
// fail: an unknown state is LinkStateUnknown, an unknown product is left out,
// and each is reported to warn. Null entries of required lists are dropped.
//
// The link costs about fifteen allocations however many accounts it has:
// each kind of value comes from one block, sized by a first pass over id.
func NewLink(id *upstream.Identity, warn Warner) *Link {
	if warn == nil {
		warn = func(string, string) {}
	}
	b := newBlocks(id)
	src := &id.Link
	l := &b.head.link
	*l = Link{
		ID:                src.LinkID,
		InstitutionID:     src.InstitutionID,
		InstitutionName:   src.InstitutionName,
		InstitutionAvatar: src.InstitutionAvatar,
		State:             linkStates[src.State],
		ErrorCode:         src.ErrorCode,
		Provider:          src.Provider,
		Tags:              make([]string, 0, b.tags),
		Webhook:           src.Webhook,
		Products:          b.products(src.Products, warn),
		AvailableProducts: make([]Product, 0, len(src.AvailableProducts)),
		accounts:          b.accountPtrs.take(len(id.Accounts)),
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
	accounts := b.accounts.take(len(id.Accounts))
	if len(accounts) > smallLink {
		l.byID = make(map[string]*Account, len(accounts))
	}
	for i := range id.Accounts {
		a := &accounts[i]
		b.account(a, &id.Accounts[i], warn)
		l.accounts[i] = a
		if _, dup := l.byID[a.ID]; l.byID != nil && !dup {
			l.byID[a.ID] = a
		}
	}
	return l
}
