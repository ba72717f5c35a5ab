// Package label holds the rules that keep client- and upstream-chosen
// values out of metric labels and log fields when they could carry an
// identifier or grow without bound: the fixed routes, GraphQL operation
// names and error codes of a safe shape. Metrics and the access log apply
// the same rules, so a value is shown the same way in each.
package label

import "strings"

// Other replaces a value outside a label's fixed set, a value past a
// label's cap, or one whose shape could carry an identifier.
const Other = "other"

// maxLen bounds a client- or upstream-chosen value; reqlog already cuts
// operation names to 64 bytes.
const maxLen = 64

// Route names the route of a request path: the path of one of the facade's
// fixed routes, else Other. Paths are not labels (nor log fields) as they
// are: a scanner's requests would add one series per path it tries, and a
// path can carry an id or be kilobytes long. The access log uses it too.
func Route(path string) string {
	switch path {
	case "/graphql", "/graphql/schema.graphql", "/", "/healthz", "/readyz", "/webhooks/moneykit":
		return path
	}
	if strings.HasPrefix(path, "/graphiql/") {
		return "/graphiql/" // the bundle's files: one route, whatever the file
	}
	return Other
}

// OperationName returns a client-chosen GraphQL operation name when it may
// be recorded (a GraphQL name, at most 64 bytes, that does not look like an
// identifier: the label rules), "" for "", else Other. Unlike the label it
// is not capped in distinct values: a log line lives no longer than the
// logs.
func OperationName(name string) string {
	switch {
	case name == "":
		return ""
	case IsOperationName(name):
		return name
	}
	return Other
}

// IsOperationName accepts a GraphQL name ([_A-Za-z][_0-9A-Za-z]*) that does
// not look like an identifier. reqlog replaced any other byte with '?', so a
// name with one was not a valid operation name to begin with.
func IsOperationName(s string) bool {
	if s == "" || len(s) > maxLen || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c == '_' || isDigit(c) || isLetter(c)) {
			return false
		}
	}
	return !looksLikeID(s)
}

// IsCode accepts an error code in the dotted style of MoneyKit and the facade
// ("link_error.deleted", "facade.forbidden") that does not look like an
// identifier. Upstream codes are passed on verbatim, so the upstream's word
// is not trusted here either.
func IsCode(s string) bool {
	if s == "" || len(s) > maxLen || !isLetter(s[0]) || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' && s[i-1] == '.' {
			return false
		}
		if !(c == '_' || c == '.' || isDigit(c) || isLetter(c)) {
			return false
		}
	}
	return !looksLikeID(s)
}

// looksLikeID reports whether s seems to carry an identifier rather than a
// name a person chose: a MoneyKit id ("mk_…"), a run of six or more digits
// (account and phone numbers), or a long token mixing letters and digits (a
// random id such as "eqkWN34UEoa2NxyALG8pcV").
func looksLikeID(s string) bool {
	if strings.Contains(strings.ToLower(s), "mk_") {
		return true
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			if digits++; digits >= 6 {
				return true
			}
		} else {
			digits = 0
		}
	}
	for tok := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == '_' || r == '.' }) {
		if len(tok) >= 16 && strings.ContainsFunc(tok, func(r rune) bool { return r < 0x80 && isDigit(byte(r)) }) {
			return true
		}
	}
	return false
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
