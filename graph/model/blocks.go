package model

import (
	"time"

	"github.com/mkgraph/mkgraph/upstream"
)

// block hands out consecutive parts of one allocation.
type block[T any] []T

// take returns the next n values, capped so that appending to them never
// writes over the next part. Should the block be short (it never is: NewLink
// counts first), they are allocated on their own.
func (b *block[T]) take(n int) []T {
	if *b == nil || n > len(*b) {
		return make([]T, n)
	}
	s := (*b)[:n:n]
	*b = (*b)[n:]
	return s
}

func (b *block[T]) one() *T { return &b.take(1)[0] }

// blocks holds one block per kind of value of a Link. The zero value works
// (every value is then allocated on its own).
type blocks struct {
	head *struct {
		link     Link
		products Products
	}
	tags        int
	accounts    block[Account]
	accountPtrs block[*Account]
	owners      block[Owner]
	ownerPtrs   block[*Owner]
	names       block[string]
	addresses   block[Address]
	addressPtrs block[*Address]
	phones      block[PhoneNumber]
	phonePtrs   block[*PhoneNumber]
	emails      block[Email]
	emailPtrs   block[*Email]
	balances    block[Balances]
	decimals    block[string]
	times       block[time.Time]
	statuses    block[ProductStatus]
}

// newBlocks counts what NewLink builds of id and allocates that much.
func newBlocks(id *upstream.Identity) blocks {
	var n struct{ owners, names, addresses, phones, emails, balances, decimals, times, statuses, tags int }
	for i := range id.Accounts {
		a := &id.Accounts[i]
		n.owners += len(a.Owners)
		if bal := a.Balances; bal != nil {
			n.balances++
			n.decimals += valid(bal.Available.Valid()) + valid(bal.Current.Valid()) + valid(bal.Limit.Valid())
			n.times += valid(bal.BalanceDate.Valid())
		}
		for j := range a.Owners {
			o := &a.Owners[j]
			n.names += nonNil(o.Names)
			n.addresses += len(o.Addresses)
			n.phones += phones(o.PhoneNumbers)
			n.emails += emails(o.Emails)
		}
	}
	for _, s := range id.Link.Products {
		if s != nil {
			n.statuses++
			n.times += valid(s.RefreshedAt.Valid()) + valid(s.LastAttemptedAt.Valid()) + valid(s.LastEnriched.Valid())
		}
	}
	return blocks{
		head: new(struct {
			link     Link
			products Products
		}),
		tags:        nonNil(id.Link.LinkTags),
		accounts:    make(block[Account], len(id.Accounts)),
		accountPtrs: make(block[*Account], len(id.Accounts)),
		owners:      make(block[Owner], n.owners),
		ownerPtrs:   make(block[*Owner], n.owners),
		names:       make(block[string], n.names),
		addresses:   make(block[Address], n.addresses),
		addressPtrs: make(block[*Address], n.addresses),
		phones:      make(block[PhoneNumber], n.phones),
		phonePtrs:   make(block[*PhoneNumber], n.phones),
		emails:      make(block[Email], n.emails),
		emailPtrs:   make(block[*Email], n.emails),
		balances:    make(block[Balances], n.balances),
		decimals:    make(block[string], n.decimals),
		times:       make(block[time.Time], n.times),
		statuses:    make(block[ProductStatus], n.statuses),
	}
}

func valid(ok bool) int {
	if ok {
		return 1
	}
	return 0
}

func nonNil(ss []*string) (n int) {
	for _, s := range ss {
		n += valid(s != nil)
	}
	return n
}

// phones and emails count the entries NewLink keeps: those with a number or
// an address.
func phones(ps []upstream.PhoneNumber) (n int) {
	for i := range ps {
		n += valid(ps[i].Number != nil)
	}
	return n
}

func emails(es []upstream.Email) (n int) {
	for i := range es {
		n += valid(es[i].Address != nil)
	}
	return n
}

func (b *blocks) products(m map[string]*upstream.ProductStatus, warn Warner) *Products {
	var p *Products
	if b.head != nil {
		p = &b.head.products
	} else {
		p = new(Products)
	}
	for k, v := range m {
		var st *ProductStatus
		if v != nil {
			st = b.productStatus(v, warn)
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

func (b *blocks) productStatus(s *upstream.ProductStatus, warn Warner) *ProductStatus {
	st := b.statuses.one()
	*st = ProductStatus{
		RefreshedAt:     b.timestamp(s.RefreshedAt, warn),
		LastAttemptedAt: b.timestamp(s.LastAttemptedAt, warn),
		ErrorCode:       s.ErrorCode,
		ErrorMessage:    s.ErrorMessage,
		Unavailable:     s.Unavailable,
		LastEnriched:    b.timestamp(s.LastEnriched, warn),
	}
	return st
}

// newProductStatus converts one product's status on its own.
func newProductStatus(s *upstream.ProductStatus, warn Warner) *ProductStatus {
	var b blocks
	return b.productStatus(s, warn)
}

// timestamp returns t, or nil when absent; an unreadable time is null too,
// and reported.
func (b *blocks) timestamp(t upstream.Timestamp, warn Warner) *time.Time {
	if t.Invalid {
		warn("timestamp", "unreadable")
	}
	if !t.Valid() {
		return nil
	}
	p := b.times.one()
	*p = t.Time
	return p
}

func (b *blocks) decimal(d upstream.Decimal) *string {
	if !d.Valid() {
		return nil
	}
	p := b.decimals.one()
	*p = d.String()
	return p
}

func (b *blocks) account(a *Account, src *upstream.Account, warn Warner) {
	*a = Account{
		ID:         src.AccountID,
		Type:       src.AccountType,
		Name:       src.Name,
		Nickname:   src.Nickname,
		Mask:       src.AccountMask,
		OriginalID: src.OriginalID,
		Closed:     src.Closed,
		Owners:     b.ownerPtrs.take(len(src.Owners)),
	}
	if bal := src.Balances; bal != nil {
		a.Balances = b.balances.one()
		*a.Balances = Balances{
			Currency:    bal.Currency,
			Available:   b.decimal(bal.Available),
			Current:     b.decimal(bal.Current),
			Limit:       b.decimal(bal.Limit),
			BalanceDate: b.timestamp(bal.BalanceDate, warn),
		}
	}
	owners := b.owners.take(len(src.Owners))
	for i := range src.Owners {
		a.Owners[i] = &owners[i]
		b.owner(&owners[i], &src.Owners[i])
	}
}

func (b *blocks) owner(o *Owner, src *upstream.Owner) {
	*o = Owner{
		Names:        b.names.take(nonNil(src.Names))[:0],
		Addresses:    b.addressPtrs.take(len(src.Addresses)),
		PhoneNumbers: b.phonePtrs.take(phones(src.PhoneNumbers))[:0],
		Emails:       b.emailPtrs.take(emails(src.Emails))[:0],
	}
	for _, n := range src.Names {
		if n != nil {
			o.Names = append(o.Names, *n)
		}
	}
	addresses := b.addresses.take(len(src.Addresses))
	for i := range src.Addresses {
		ad := &src.Addresses[i]
		addresses[i] = Address{
			Street:     ad.Street,
			City:       ad.City,
			Region:     ad.Region,
			PostalCode: ad.PostalCode,
			Country:    ad.Country,
			Primary:    ad.Primary,
		}
		o.Addresses[i] = &addresses[i]
	}
	phoneValues := b.phones.take(cap(o.PhoneNumbers))
	for _, p := range src.PhoneNumbers {
		if p.Number != nil {
			v := &phoneValues[len(o.PhoneNumbers)]
			*v = PhoneNumber{Number: *p.Number, Type: p.Type, Primary: p.Primary}
			o.PhoneNumbers = append(o.PhoneNumbers, v)
		}
	}
	emailValues := b.emails.take(cap(o.Emails))
	for _, e := range src.Emails {
		if e.Address != nil {
			v := &emailValues[len(o.Emails)]
			*v = Email{Address: *e.Address, Primary: e.Primary}
			o.Emails = append(o.Emails, v)
		}
	}
}
