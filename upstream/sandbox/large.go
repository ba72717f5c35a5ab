package sandbox

import (
	"encoding/json"
	"fmt"
	"strings"
)

// largeAccountCount is how many accounts LinkLarge has.
const largeAccountCount = 500

// largeFixture builds LinkLarge's answer: the link in fixtures/large-link.json
// and largeAccountCount accounts derived from their index alone.
func largeFixture() ([]byte, error) {
	linkJSON, err := fixtureFiles.ReadFile("fixtures/large-link.json")
	if err != nil {
		return nil, err
	}
	accounts := make([]largeAccount, largeAccountCount)
	for i := range accounts {
		accounts[i] = newLargeAccount(i + 1)
	}
	return json.Marshal(struct {
		Accounts []largeAccount  `json:"accounts"`
		Link     json.RawMessage `json:"link"`
	}{accounts, linkJSON})
}

// The wire shapes of a generated account. Amounts are json.Number so that
// they are written with exactly the digits formatted.
type (
	largeAccount struct {
		ID       string        `json:"account_id"`
		Type     string        `json:"account_type"`
		Name     string        `json:"name"`
		Mask     string        `json:"account_mask"`
		Balances largeBalances `json:"balances"`
		Closed   bool          `json:"closed"`
		Owners   []largeOwner  `json:"owners"`
	}
	largeBalances struct {
		Currency    string      `json:"currency"`
		Available   json.Number `json:"available,omitempty"`
		Current     json.Number `json:"current"`
		Limit       json.Number `json:"limit,omitempty"`
		BalanceDate string      `json:"balance_date"`
	}
	largeOwner struct {
		Names        []string       `json:"names"`
		Addresses    []largeAddress `json:"addresses"`
		PhoneNumbers []largePhone   `json:"phone_numbers"`
		Emails       []largeEmail   `json:"emails"`
	}
	largeAddress struct {
		City       string `json:"city"`
		Country    string `json:"country"`
		PostalCode string `json:"postal_code"`
		Region     string `json:"region"`
		Street     string `json:"street"`
		Primary    bool   `json:"primary"`
	}
	largePhone struct {
		Number  string `json:"number"`
		Primary bool   `json:"primary"`
		Type    string `json:"type"`
	}
	largeEmail struct {
		Address string `json:"address"`
		Primary bool   `json:"primary"`
	}
)

var (
	largeKinds = []struct{ accountType, name string }{
		{"depository.checking", "Everyday Checking"},
		{"depository.savings", "High Yield Savings"},
		{"liability.credit_card", "Rewards Visa"},
		{"investment.brokerage", "Individual Brokerage"},
		{"liability.mortgage", "30-Year Fixed Mortgage"},
		{"depository.money_market", "Money Market"},
	}
	largeFirstNames = []string{"Avery", "Blake", "Casey", "Devon", "Emerson", "Finley", "Harper", "Jordan", "Morgan", "Quinn", "Riley", "Rowan", "Sawyer"}
	largeLastNames  = []string{"Adams", "Brooks", "Chen", "Diaz", "Evans", "Foster", "Garcia", "Hughes", "Ito", "Khan", "Lopez"}
	largeCities     = []struct{ city, region, postalCode string }{
		{"Denver", "CO", "80202"}, {"Columbus", "OH", "43215"}, {"Raleigh", "NC", "27601"}, {"Tucson", "AZ", "85701"}, {"Madison", "WI", "53703"},
	}
	largePhoneTypes = []string{"mobile", "home", "work", "other"}
)

// newLargeAccount returns generated account n (1-based).
func newLargeAccount(n int) largeAccount {
	kind := largeKinds[n%len(largeKinds)]
	cents := n * 104729 % 10_000_000 // up to 99,999.99
	b := largeBalances{Currency: "USD", Current: amount(cents), BalanceDate: "2024-06-01T08:00:00Z"}
	switch kind.accountType {
	case "liability.credit_card":
		limit := 500_000 + n%5*250_000
		owed := cents % limit
		b.Current, b.Limit, b.Available = amount(owed), amount(limit), amount(limit-owed)
	case "depository.checking", "depository.savings", "depository.money_market":
		b.Available = amount(cents - cents%1000)
	}
	a := largeAccount{
		ID:       fmt.Sprintf("acc_large_%04d", n),
		Type:     kind.accountType,
		Name:     fmt.Sprintf("%s %04d", kind.name, n),
		Mask:     fmt.Sprintf("%04d", n*7919%10_000),
		Balances: b,
		Closed:   n%50 == 0,
		Owners:   []largeOwner{newLargeOwner(n)},
	}
	if n%3 == 0 {
		a.Owners = append(a.Owners, newLargeOwner(n+largeAccountCount))
	}
	return a
}

// newLargeOwner returns generated owner n.
func newLargeOwner(n int) largeOwner {
	first := largeFirstNames[n%len(largeFirstNames)]
	last := largeLastNames[n/len(largeFirstNames)%len(largeLastNames)]
	place := largeCities[n%len(largeCities)]
	return largeOwner{
		Names: []string{first + " " + last},
		Addresses: []largeAddress{{
			City: place.city, Country: "US", PostalCode: place.postalCode, Region: place.region,
			Street: fmt.Sprintf("%d Maple Avenue", 100+n), Primary: true,
		}},
		PhoneNumbers: []largePhone{{Number: fmt.Sprintf("555%07d", n), Primary: true, Type: largePhoneTypes[n%len(largePhoneTypes)]}},
		Emails:       []largeEmail{{Address: fmt.Sprintf("%s.%s.%d@example.com", strings.ToLower(first), strings.ToLower(last), n), Primary: true}},
	}
}

// amount formats cents as an exact decimal with two places.
func amount(cents int) json.Number {
	return json.Number(fmt.Sprintf("%d.%02d", cents/100, cents%100))
}
