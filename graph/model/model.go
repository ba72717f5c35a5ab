// Package model holds the GraphQL types: hand-written models here (bound by
// gqlgen's autobind) and generated ones in models_gen.go. NewLink turns an
// upstream identity answer into them once per request and link.
package model

import (
	"fmt"
	"io"
	"strconv"
	"time"
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
	byID     map[string]*Account // only above smallLink accounts
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
