// Package model holds the GraphQL types: hand-written models here (bound by
// gqlgen's autobind) and generated ones in models_gen.go. NewLink turns an
// upstream identity answer into them once per request and link.
package model

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/mkgraph/mkgraph/upstream"
)

// Link is a link with its identity accounts, built by NewLink and read-only
// afterwards: one Link serves every selection of that link in a request.
type Link struct {
	ID                string
	InstitutionID     string
	InstitutionName   string
	InstitutionAvatar *string
	State             LinkState
	ErrorCode         *string
	Provider          string
	Tags              []string
	Webhook           *string
	Products          *Products
	AvailableProducts []Product

	accounts []*Account
	byID     map[string]*Account
}

// Accounts returns every account, or those whose ids are in ids, in the order
// of ids; unknown and repeated ids are left out.
func (l *Link) Accounts(ids []string) []*Account {
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

// Account is an account with its owners.
type Account struct {
	ID         string
	Type       string
	Name       string
	Nickname   *string
	Mask       *string
	Balances   *Balances
	OriginalID *string
	Closed     *bool
	Owners     []*Owner
}

// Balances are an account's amounts as exact decimal strings.
type Balances struct {
	Currency    *string
	Available   *string
	Current     *string
	Limit       *string
	BalanceDate *time.Time
}

// Owner is one account owner.
type Owner struct {
	Names        []string
	Addresses    []*Address
	PhoneNumbers []*PhoneNumber
	Emails       []*Email
}

// Address is a postal address.
type Address struct {
	Street     *string
	City       *string
	Region     *string
	PostalCode *string
	Country    *string
	Primary    *bool
}

// PhoneNumber is a phone number.
type PhoneNumber struct {
	Number  string
	Type    *string
	Primary *bool
}

// Email is an email address.
type Email struct {
	Address string
	Primary *bool
}

// Products is the refresh status per product.
type Products struct {
	Accounts       *ProductStatus
	AccountNumbers *ProductStatus
	Identity       *ProductStatus
	Transactions   *ProductStatus
	Investments    *ProductStatus
	Enrichment     *ProductStatus
}

// ProductStatus is one product's refresh status.
type ProductStatus struct {
	RefreshedAt     *time.Time
	LastAttemptedAt *time.Time
	ErrorCode       *string
	ErrorMessage    *string
	Unavailable     *string
	LastEnriched    *time.Time
}

// LinkState is a link's connection state.
type LinkState string

// The link states; LinkStateUnknown stands for any state the upstream adds.
const (
	LinkStateConnecting            LinkState = "CONNECTING"
	LinkStateAwaitingTokenExchange LinkState = "AWAITING_TOKEN_EXCHANGE"
	LinkStateConnected             LinkState = "CONNECTED"
	LinkStateDeleted               LinkState = "DELETED"
	LinkStateError                 LinkState = "ERROR"
	LinkStateUnknown               LinkState = "UNKNOWN"
)

var linkStates = map[string]LinkState{
	"connecting":              LinkStateConnecting,
	"awaiting_token_exchange": LinkStateAwaitingTokenExchange,
	"connected":               LinkStateConnected,
	"deleted":                 LinkStateDeleted,
	"error":                   LinkStateError,
}

// IsValid reports whether e is a state of the schema.
func (e LinkState) IsValid() bool { return enumNames[string(e)] == "LinkState" }

func (e LinkState) String() string { return string(e) }

// UnmarshalGQL reads a LinkState argument.
func (e *LinkState) UnmarshalGQL(v any) error { return unmarshalEnum(v, "LinkState", (*string)(e)) }

// MarshalGQL writes the state's name.
func (e LinkState) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(e))) }

// Product is a MoneyKit data product.
type Product string

// The products the schema knows.
const (
	ProductAccounts       Product = "ACCOUNTS"
	ProductAccountNumbers Product = "ACCOUNT_NUMBERS"
	ProductIdentity       Product = "IDENTITY"
	ProductTransactions   Product = "TRANSACTIONS"
	ProductInvestments    Product = "INVESTMENTS"
	ProductEnrichment     Product = "ENRICHMENT"
)

var products = map[string]Product{
	"accounts":        ProductAccounts,
	"account_numbers": ProductAccountNumbers,
	"identity":        ProductIdentity,
	"transactions":    ProductTransactions,
	"investments":     ProductInvestments,
	"enrichment":      ProductEnrichment,
}

// IsValid reports whether e is a product of the schema.
func (e Product) IsValid() bool { return enumNames[string(e)] == "Product" }

func (e Product) String() string { return string(e) }

// UnmarshalGQL reads a Product argument.
func (e *Product) UnmarshalGQL(v any) error { return unmarshalEnum(v, "Product", (*string)(e)) }

// MarshalGQL writes the product's name.
func (e Product) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(e))) }

// enumNames maps each enum value to its enum's name.
var enumNames = func() map[string]string {
	m := map[string]string{string(LinkStateUnknown): "LinkState"}
	for _, v := range linkStates {
		m[string(v)] = "LinkState"
	}
	for _, v := range products {
		m[string(v)] = "Product"
	}
	return m
}()

func unmarshalEnum(v any, enum string, dst *string) error {
	s, ok := v.(string)
	if !ok || enumNames[s] != enum {
		return fmt.Errorf("%v is not a valid %s", v, enum)
	}
	*dst = s
	return nil
}

// Warner is told of upstream values the schema does not know, so that they
// can be logged; kind is e.g. "link.state", value the upstream's string.
type Warner func(kind, value string)

// NewLink converts an identity answer. Values the schema does not know never
// fail: an unknown state is LinkStateUnknown, an unknown product is left out,
// and each is reported to warn. Null entries of required lists are dropped.
func NewLink(id *upstream.Identity, warn Warner) *Link {
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
		Products:          newProducts(src.Products, warn),
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
		newAccount(a, &id.Accounts[i], warn)
		l.accounts[i] = a
		if _, dup := l.byID[a.ID]; !dup {
			l.byID[a.ID] = a
		}
	}
	return l
}

func newProducts(m map[string]*upstream.ProductStatus, warn Warner) *Products {
	p := &Products{}
	for k, v := range m {
		var st *ProductStatus
		if v != nil {
			st = newProductStatus(v, warn)
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

func newProductStatus(s *upstream.ProductStatus, warn Warner) *ProductStatus {
	return &ProductStatus{
		RefreshedAt:     timestamp(s.RefreshedAt, warn),
		LastAttemptedAt: timestamp(s.LastAttemptedAt, warn),
		ErrorCode:       s.ErrorCode,
		ErrorMessage:    s.ErrorMessage,
		Unavailable:     s.Unavailable,
		LastEnriched:    timestamp(s.LastEnriched, warn),
	}
}

// timestamp returns t, or nil when absent; an unreadable time is null too,
// and reported.
func timestamp(t upstream.Timestamp, warn Warner) *time.Time {
	if t.Invalid {
		warn("timestamp", "unreadable")
	}
	return t.Ptr()
}

func newAccount(a *Account, src *upstream.Account, warn Warner) {
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
			Available:   decimal(b.Available),
			Current:     decimal(b.Current),
			Limit:       decimal(b.Limit),
			BalanceDate: timestamp(b.BalanceDate, warn),
		}
	}
	for i := range src.Owners {
		a.Owners[i] = newOwner(&src.Owners[i])
	}
}

func newOwner(src *upstream.Owner) *Owner {
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

func decimal(d upstream.Decimal) *string {
	if !d.Valid() {
		return nil
	}
	s := d.String()
	return &s
}
