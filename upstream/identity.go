package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Identity is the body of a 200 answer to GET /links/{id}/identity.
type Identity struct {
	Accounts []Account `json:"accounts"`
	Link     Link      `json:"link"`
}

// Account is one account with its owners. AccountID, AccountType and Name are
// required upstream; everything else may be absent or null.
type Account struct {
	AccountID   string    `json:"account_id"`
	AccountType string    `json:"account_type"`
	Name        string    `json:"name"`
	Nickname    *string   `json:"nickname"`
	AccountMask *string   `json:"account_mask"`
	Balances    *Balances `json:"balances"`
	OriginalID  *string   `json:"original_id"`
	Closed      *bool     `json:"closed"`
	Owners      []Owner   `json:"owners"`
}

// Balances holds an account's amounts with the upstream's exact digits.
type Balances struct {
	Currency    *string   `json:"currency"`
	Available   Decimal   `json:"available"`
	Current     Decimal   `json:"current"`
	Limit       Decimal   `json:"limit"`
	BalanceDate Timestamp `json:"balance_date"`
}

// Owner is one account owner as the institution reported it.
type Owner struct {
	Names        []*string     `json:"names"`
	Addresses    []Address     `json:"addresses"`
	PhoneNumbers []PhoneNumber `json:"phone_numbers"`
	Emails       []Email       `json:"emails"`
}

// Address is a postal address; every field is optional.
type Address struct {
	Street     *string `json:"street"`
	City       *string `json:"city"`
	Region     *string `json:"region"`
	PostalCode *string `json:"postal_code"`
	Country    *string `json:"country"`
	Primary    *bool   `json:"primary"`
}

// PhoneNumber is a phone number in the institution's own format.
type PhoneNumber struct {
	Number  *string `json:"number"`
	Type    *string `json:"type"`
	Primary *bool   `json:"primary"`
}

// Email is an email address.
type Email struct {
	Address *string `json:"address"`
	Primary *bool   `json:"primary"`
}

// Link is the link the identity data belongs to, with its product status.
type Link struct {
	LinkID            string                    `json:"link_id"`
	InstitutionID     string                    `json:"institution_id"`
	InstitutionName   string                    `json:"institution_name"`
	InstitutionAvatar *string                   `json:"institution_avatar"`
	State             string                    `json:"state"`
	ErrorCode         *string                   `json:"error_code"`
	Provider          string                    `json:"provider"`
	LinkTags          []*string                 `json:"link_tags"`
	Webhook           *string                   `json:"webhook"`
	Products          map[string]*ProductStatus `json:"products"`
	AvailableProducts []string                  `json:"available_products"`
}

// ProductStatus is the refresh state of one product of a link.
type ProductStatus struct {
	RefreshedAt     Timestamp `json:"refreshed_at"`
	LastAttemptedAt Timestamp `json:"last_attempted_at"`
	ErrorCode       *string   `json:"error_code"`
	ErrorMessage    *string   `json:"error_message"`
	Unavailable     *string   `json:"unavailable"`
	LastEnriched    Timestamp `json:"last_enriched"`
}

// Decimal is an amount kept as the upstream's JSON digits, never rounded
// through float64. The zero value means absent or null.
type Decimal struct {
	digits string
}

// NewDecimal returns the Decimal for s, or an error when s is not a JSON number.
func NewDecimal(s string) (Decimal, error) {
	if !isNumber(s) {
		return Decimal{}, fmt.Errorf("not a decimal number: %.40q", s)
	}
	return Decimal{digits: s}, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isNumber reports whether s is a JSON number, nothing around it:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?. It is what json.Valid
// accepts of a value that starts with '-' or a digit and ends with a digit,
// without its allocations.
func isNumber[S ~string | ~[]byte](s S) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i++; i < len(s) && isDigit(s[i]); i++ {
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i == len(s) || !isDigit(s[i]) {
			return false
		}
		for ; i < len(s) && isDigit(s[i]); i++ {
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i == len(s) || !isDigit(s[i]) {
			return false
		}
		for ; i < len(s) && isDigit(s[i]); i++ {
		}
	}
	return i == len(s)
}

// plainString returns the contents of the JSON string b when it needs no
// decoding: quoted, with no escape, quote or control character inside
// (which encoding/json would decode, or refuse). ok is false otherwise.
func plainString(b []byte) (s []byte, ok bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return nil, false
	}
	s = b[1 : len(b)-1]
	for _, c := range s {
		if c < 0x20 || c == '"' || c == '\\' {
			return nil, false
		}
	}
	return s, true
}

// String returns the digits, or "" when absent.
func (d Decimal) String() string { return d.digits }

// Valid reports whether the amount was present.
func (d Decimal) Valid() bool { return d.digits != "" }

// UnmarshalJSON accepts a JSON number, a string holding one, or null.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*d = Decimal{}
		return nil
	}
	if p, ok := plainString(b); ok {
		b = p // the digits as they are: no need to decode them
	} else if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(s)
	}
	v, err := NewDecimal(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalJSON writes the digits as a JSON number, or null.
func (d Decimal) MarshalJSON() ([]byte, error) {
	if !d.Valid() {
		return []byte("null"), nil
	}
	return []byte(d.digits), nil
}

// Timestamp is an upstream time. Upstream times without a zone are UTC. A
// value that is not a time at all is kept as absent and reported by Invalid,
// so that one odd field cannot fail a whole link.
type Timestamp struct {
	Time    time.Time // UTC; zero when absent
	Invalid bool      // present but unparseable
}

// Valid reports whether the timestamp was present and readable.
func (t Timestamp) Valid() bool { return !t.Time.IsZero() }

// Ptr returns the time, or nil when absent or unreadable.
func (t Timestamp) Ptr() *time.Time {
	if !t.Valid() {
		return nil
	}
	v := t.Time
	return &v
}

var timestampLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999", // no zone: UTC
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

// ParseTimestamp reads an upstream time string.
func ParseTimestamp(s string) (time.Time, error) {
	for _, layout := range timestampLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			// An offset can push a time out of RFC 3339's four-digit years
			// once in UTC; such a time could not be written out again.
			if y := t.UTC().Year(); y < 0 || y > 9999 {
				break
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not a timestamp: %.40q", s)
}

// UnmarshalJSON accepts an RFC 3339 string (zone optional) or null; any
// other value is kept as Invalid rather than failing the whole answer.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	*t = Timestamp{}
	if string(bytes.TrimSpace(b)) == "null" {
		return nil
	}
	var s string
	if p, ok := plainString(b); ok {
		// A time needs no decoding. (Invalid UTF-8, which encoding/json
		// would turn into U+FFFD, fails to parse either way.)
		s = string(p)
	} else if err := json.Unmarshal(b, &s); err != nil {
		t.Invalid = true // a number, a bool, an object: not a time
		return nil
	}
	if s == "" {
		return nil
	}
	v, err := ParseTimestamp(s)
	if err != nil {
		t.Invalid = true
		return nil
	}
	t.Time = v
	return nil
}

// MarshalJSON writes the time in RFC 3339 UTC, or null.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	if !t.Valid() {
		return []byte("null"), nil
	}
	return json.Marshal(t.Time.UTC().Format(time.RFC3339Nano))
}

// errMissingField reports a required field the upstream left out.
var errMissingField = errors.New("required field missing")
