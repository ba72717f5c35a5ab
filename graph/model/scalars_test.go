package model_test

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/graph/model"
)

func marshal(m interface{ MarshalGQL(w io.Writer) }) string {
	var b strings.Builder
	m.MarshalGQL(&b)
	return b.String()
}

func TestMarshalDateTime(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC), `"2023-02-16T09:14:11Z"`},
		{time.Date(2024, 11, 29, 23, 59, 59, 0, cet), `"2024-11-29T22:59:59Z"`},
		{time.Date(2025, 8, 20, 0, 1, 21, 281_000_000, time.UTC), `"2025-08-20T00:01:21.281Z"`},
	}
	for _, tt := range tests {
		got := marshal(model.MarshalDateTime(tt.in))
		if got != tt.want {
			t.Errorf("MarshalDateTime(%v) = %s, want %s", tt.in, got, tt.want)
		}
		var s string
		if err := json.Unmarshal([]byte(got), &s); err != nil {
			t.Errorf("MarshalDateTime(%v) = %s, not a JSON string: %v", tt.in, got, err)
		}
	}
}

func TestUnmarshalDateTime(t *testing.T) {
	tests := []struct {
		in      any
		want    time.Time
		wantErr bool
	}{
		{in: "2023-02-16T09:14:11Z", want: time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC)},
		{in: "2024-11-29T23:59:59+01:00", want: time.Date(2024, 11, 29, 22, 59, 59, 0, time.UTC)},
		{in: "2024-05-01T12:30:00", want: time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC)},
		{in: "2025-08-20T00:01:21.281Z", want: time.Date(2025, 8, 20, 0, 1, 21, 281_000_000, time.UTC)},
		{in: "yesterday", wantErr: true},
		{in: "", wantErr: true},
		{in: int64(1700000000), wantErr: true},
		{in: nil, wantErr: true},
	}
	for _, tt := range tests {
		got, err := model.UnmarshalDateTime(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("UnmarshalDateTime(%#v) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if tt.wantErr {
			continue
		}
		if !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("UnmarshalDateTime(%#v) = %v, want %v in UTC", tt.in, got, tt.want)
		}
		// Round trip.
		if back := marshal(model.MarshalDateTime(got)); back != `"`+tt.want.Format(time.RFC3339Nano)+`"` {
			t.Errorf("MarshalDateTime(UnmarshalDateTime(%#v)) = %s", tt.in, back)
		}
	}
}

func TestMarshalDecimal(t *testing.T) {
	for _, s := range []string{"340.12", "0.10", "12345678901234567.89", "-5", "500", "1500.00"} {
		got := marshal(model.MarshalDecimal(s))
		if want := `"` + s + `"`; got != want {
			t.Errorf("MarshalDecimal(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestUnmarshalDecimal(t *testing.T) {
	tests := []struct {
		in      any
		want    string
		wantErr bool
	}{
		{in: "340.12", want: "340.12"},
		{in: "0.10", want: "0.10"},
		{in: "12345678901234567.89", want: "12345678901234567.89"},
		{in: "-1.5", want: "-1.5"},
		{in: int64(42), want: "42"},
		{in: 7, want: "7"},
		{in: 340.12, wantErr: true}, // a float has already lost the digits
		{in: "abc", wantErr: true},
		{in: "", wantErr: true},
		{in: "NaN", wantErr: true},
		{in: "+1", wantErr: true},
		{in: "01", wantErr: true},
		{in: " 1", wantErr: true},
		{in: `"1"`, wantErr: true},
		{in: true, wantErr: true},
		{in: nil, wantErr: true},
	}
	for _, tt := range tests {
		got, err := model.UnmarshalDecimal(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("UnmarshalDecimal(%#v) = %q, %v; want error %v", tt.in, got, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("UnmarshalDecimal(%#v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
