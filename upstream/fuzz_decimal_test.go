package upstream

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzDecimal checks that NewDecimal never panics, accepts exactly the JSON
// numbers (without surrounding whitespace), and that what it accepts
// round-trips through MarshalJSON and through UnmarshalJSON both as a JSON
// number and as a JSON string.
func FuzzDecimal(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		d, err := NewDecimal(s)
		quoted, qerr := json.Marshal(s)
		if qerr != nil {
			t.Fatalf("json.Marshal(%q): %v", s, qerr)
		}
		if err != nil {
			if d.Valid() || d.String() != "" {
				t.Errorf("NewDecimal(%q) = %q (valid %v) with error %v; want the zero Decimal", s, d.String(), d.Valid(), err)
			}
			if isJSONNumber(s) {
				t.Errorf("NewDecimal(%q): %v; want it accepted, it is a JSON number", s, err)
			}
			// The string form is read by NewDecimal itself: refused too.
			var ds Decimal
			if err := ds.UnmarshalJSON(quoted); err == nil {
				t.Errorf("UnmarshalJSON(%s) = %q, nil error; want an error like NewDecimal's", quoted, ds.String())
			}
			return
		}

		if !d.Valid() || d.String() != s {
			t.Errorf("NewDecimal(%q) = %q (valid %v); want the same digits, valid", s, d.String(), d.Valid())
		}
		if !json.Valid([]byte(s)) {
			t.Errorf("NewDecimal(%q) accepted JSON that json.Valid refuses", s)
		}
		if strings.TrimSpace(s) != s || strings.TrimLeft(s, " \t\r\n") != s || strings.TrimRight(s, " \t\r\n") != s {
			t.Errorf("NewDecimal(%q) accepted surrounding whitespace", s)
		}
		if !isJSONNumber(s) {
			t.Errorf("NewDecimal(%q) accepted something that is not a JSON number", s)
		}

		if b, err := d.MarshalJSON(); err != nil || string(b) != s {
			t.Errorf("MarshalJSON of NewDecimal(%q) = %s, %v; want %s, nil", s, b, err, s)
		}
		if b, err := json.Marshal(d); err != nil || string(b) != s {
			t.Errorf("json.Marshal(NewDecimal(%q)) = %s, %v; want %s, nil", s, b, err, s)
		}

		for _, raw := range [][]byte{[]byte(s), quoted} {
			var got Decimal
			if err := got.UnmarshalJSON(raw); err != nil || got != d {
				t.Errorf("UnmarshalJSON(%s) = %q, %v; want %q, nil", raw, got.String(), err, s)
			}
			var wrapped struct {
				A Decimal `json:"a"`
			}
			body := `{"a":` + string(raw) + `}`
			if err := json.Unmarshal([]byte(body), &wrapped); err != nil || wrapped.A != d {
				t.Errorf("json.Unmarshal(%s) = %q, %v; want %q, nil", body, wrapped.A.String(), err, s)
			}
		}
	})
}

// isJSONNumber reports whether s is exactly one JSON number, nothing around it.
func isJSONNumber(s string) bool {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return false
	}
	n, ok := v.(json.Number)
	return ok && string(n) == s
}
