package model

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/mkgraph/mkgraph/upstream"
)

// MarshalDateTime writes t as an RFC 3339 string in UTC.
func MarshalDateTime(t time.Time) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		// RFC 3339 has nothing to escape: the quoted time in one write.
		b := make([]byte, 0, len(time.RFC3339Nano)+2)
		b = append(b, '"')
		b = t.UTC().AppendFormat(b, time.RFC3339Nano)
		w.Write(append(b, '"'))
	})
}

// UnmarshalDateTime reads an RFC 3339 string; a time without a zone is UTC.
func UnmarshalDateTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("DateTime must be an RFC 3339 string, got %T", v)
	}
	return upstream.ParseTimestamp(s)
}

// MarshalDecimal writes the upstream's digits as a JSON string.
func MarshalDecimal(s string) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		if !plainDigits(s) {
			io.WriteString(w, strconv.Quote(s))
			return
		}
		b := make([]byte, 0, len(s)+2)
		b = append(b, '"')
		b = append(b, s...)
		w.Write(append(b, '"'))
	})
}

// plainDigits reports whether s is made of the characters of a JSON number
// only, which need no escaping (what a Decimal holds).
func plainDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c == '.', c == '-', c == '+', c == 'e', c == 'E':
		default:
			return false
		}
	}
	return true
}

// UnmarshalDecimal reads a decimal given as a string (or an integer).
func UnmarshalDecimal(v any) (string, error) {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case json.Number:
		s = v.String()
	case int64:
		s = strconv.FormatInt(v, 10)
	case int:
		s = strconv.Itoa(v)
	default:
		return "", fmt.Errorf("Decimal must be a string such as \"340.12\", got %T", v)
	}
	d, err := upstream.NewDecimal(s)
	if err != nil {
		return "", err
	}
	return d.String(), nil
}
