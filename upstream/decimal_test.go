package upstream_test

import (
	"encoding/json"
	"testing"

	"github.com/mkgraph/mkgraph/upstream"
)

func TestDecodeIdentityAmounts(t *testing.T) {
	tests := []struct {
		name  string
		value string // the JSON value of "available"
		want  string // Decimal.String(); "" means absent
	}{
		{"decimal", `340.12`, "340.12"},
		{"integer", `500`, "500"},
		{"twenty digits", `12345678901234567890`, "12345678901234567890"},
		{"beyond float64 precision", `12345678901234567.89`, "12345678901234567.89"},
		{"trailing zero", `0.10`, "0.10"},
		{"negative", `-12.50`, "-12.50"},
		{"zero", `0`, "0"},
		{"exponent", `1.5e3`, "1.5e3"},
		{"string", `"340.12"`, "340.12"},
		{"string with trailing zero", `"0.10"`, "0.10"},
		{"string twenty digits", `"12345678901234567890"`, "12345678901234567890"},
		{"null", `null`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := balancesJSON(`{"currency":"USD","available":` + tt.value + `}`)
			id := MustDecodeIdentity(t, body)
			got := id.Accounts[0].Balances.Available
			if got.String() != tt.want {
				t.Errorf("DecodeIdentity(available=%s).Available = %q, want %q", tt.value, got.String(), tt.want)
			}
			if got.Valid() != (tt.want != "") {
				t.Errorf("DecodeIdentity(available=%s).Available.Valid() = %v, want %v", tt.value, got.Valid(), tt.want != "")
			}
			// Re-encoding must keep the digits exactly, as a JSON number.
			out, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == "" {
				want = "null"
			}
			if string(out) != want {
				t.Errorf("json.Marshal(Available) = %s, want %s", out, want)
			}
			if id.Accounts[0].Balances.Current.Valid() {
				t.Errorf("absent current is Valid, want absent")
			}
		})
	}
}

func TestDecodeIdentityBadAmounts(t *testing.T) {
	for _, value := range []string{`true`, `"abc"`, `""`, `{}`, `[]`, `[1]`, `"null"`, `" 1"`, `"1,5"`, `"NaN"`, `"+1"`} {
		body := balancesJSON(`{"available":` + value + `}`)
		if _, err := upstream.DecodeIdentity([]byte(body)); err == nil {
			t.Errorf("DecodeIdentity(available=%s): nil error, want an error", value)
		}
	}
}

func TestNewDecimal(t *testing.T) {
	for _, s := range []string{"0", "340.12", "500", "0.10", "-0.5", "12345678901234567890", "1e-7", "1E+2"} {
		d, err := upstream.NewDecimal(s)
		if err != nil {
			t.Errorf("NewDecimal(%q): %v, want nil error", s, err)
			continue
		}
		if d.String() != s || !d.Valid() {
			t.Errorf("NewDecimal(%q) = %q (valid %v), want %q (valid true)", s, d.String(), d.Valid(), s)
		}
	}
	for _, s := range []string{"true", `"abc"`, "abc", "null", `""`, "", "{}", "[]", "-", "01", "1.", ".5", "+1", "NaN", "Infinity", "0x10", " 1", "1 2"} {
		if d, err := upstream.NewDecimal(s); err == nil {
			t.Errorf("NewDecimal(%q) = %q, nil error; want an error", s, d.String())
		}
	}
}

func TestNewDecimalSurroundingSpace(t *testing.T) {
	for _, s := range []string{"1 ", "1\n", "0.10\t"} {
		if d, err := upstream.NewDecimal(s); err == nil {
			t.Errorf("NewDecimal(%q) = %q, nil error; want an error", s, d.String())
		}
	}
	body := balancesJSON(`{"available":"12.50 "}`)
	if id, err := upstream.DecodeIdentity([]byte(body)); err == nil {
		t.Errorf("DecodeIdentity(available=\"12.50 \") = %q, nil error; want an error", id.Accounts[0].Balances.Available.String())
	}
}
