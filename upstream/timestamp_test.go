package upstream_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/upstream"
)

func TestDecodeIdentityTimestamps(t *testing.T) {
	tests := []struct {
		name        string
		value       string // the JSON value of refreshed_at; "" leaves the field out
		want        time.Time
		wantInvalid bool
	}{
		{"zulu", `"2023-02-16T09:14:11Z"`, time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC), false},
		{"offset", `"2023-02-16T09:14:11+02:00"`, time.Date(2023, 2, 16, 7, 14, 11, 0, time.UTC), false},
		{"negative offset", `"2023-02-16T21:14:11-05:00"`, time.Date(2023, 2, 17, 2, 14, 11, 0, time.UTC), false},
		{"no zone is UTC", `"2023-02-16T09:14:11"`, time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC), false},
		{"fractional", `"2025-08-20T00:01:21.281Z"`, time.Date(2025, 8, 20, 0, 1, 21, 281_000_000, time.UTC), false},
		{"fractional no zone", `"2025-08-20T00:01:21.281"`, time.Date(2025, 8, 20, 0, 1, 21, 281_000_000, time.UTC), false},
		{"microseconds", `"2025-08-20T00:01:21.123456+00:00"`, time.Date(2025, 8, 20, 0, 1, 21, 123_456_000, time.UTC), false},
		{"space separator", `"2023-02-16 09:14:11"`, time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC), false},
		{"null", `null`, time.Time{}, false},
		{"empty string", `""`, time.Time{}, false},
		{"absent", ``, time.Time{}, false},
		{"unparseable", `"yesterday"`, time.Time{}, true},
		{"impossible date", `"2023-02-30T09:14:11Z"`, time.Time{}, true},
		{"slashes", `"16/02/2023"`, time.Time{}, true},
		{"number", `1676538851`, time.Time{}, true},
		{"bool", `true`, time.Time{}, true},
		{"object", `{"seconds":1}`, time.Time{}, true},
		{"array", `["2023-02-16T09:14:11Z"]`, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := `{"error_code":null}`
			if tt.value != "" {
				status = `{"refreshed_at":` + tt.value + `}`
			}
			id, err := upstream.DecodeIdentity([]byte(productJSON(status)))
			if err != nil {
				t.Fatalf("DecodeIdentity(refreshed_at=%s): %v, want nil error", tt.value, err)
			}
			got := id.Link.Products["identity"].RefreshedAt
			if !got.Time.Equal(tt.want) || got.Invalid != tt.wantInvalid {
				t.Errorf("DecodeIdentity(refreshed_at=%s) = {%v, Invalid: %v}, want {%v, Invalid: %v}", tt.value, got.Time, got.Invalid, tt.want, tt.wantInvalid)
			}
			if wantValid := !tt.want.IsZero(); got.Valid() != wantValid {
				t.Errorf("Valid() = %v, want %v", got.Valid(), wantValid)
			}
			if got.Valid() {
				if got.Time.Location() != time.UTC {
					t.Errorf("Location() = %v, want UTC", got.Time.Location())
				}
				if p := got.Ptr(); p == nil || !p.Equal(tt.want) {
					t.Errorf("Ptr() = %v, want %v", p, tt.want)
				}
			} else if got.Ptr() != nil {
				t.Errorf("Ptr() = %v, want nil", got.Ptr())
			}
		})
	}
}

func TestTimestampMarshalJSON(t *testing.T) {
	tests := []struct {
		in   upstream.Timestamp
		want string
	}{
		{upstream.Timestamp{}, `null`},
		{upstream.Timestamp{Invalid: true}, `null`},
		{upstream.Timestamp{Time: time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC)}, `"2023-02-16T09:14:11Z"`},
		{upstream.Timestamp{Time: time.Date(2025, 8, 20, 0, 1, 21, 281_000_000, time.UTC)}, `"2025-08-20T00:01:21.281Z"`},
		{upstream.Timestamp{Time: time.Date(2023, 2, 16, 11, 14, 11, 0, time.FixedZone("CEST", 2*3600))}, `"2023-02-16T09:14:11Z"`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(tt.in)
		if err != nil || string(got) != tt.want {
			t.Errorf("json.Marshal(%+v) = %s, %v; want %s, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2023-02-16T09:14:11Z", time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC)},
		{"2023-02-16T09:14:11+01:00", time.Date(2023, 2, 16, 8, 14, 11, 0, time.UTC)},
		{"2023-02-16T09:14:11", time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC)},
		{"2023-02-16T09:14:11.5", time.Date(2023, 2, 16, 9, 14, 11, 500_000_000, time.UTC)},
		{"2025-08-20T00:01:21.281Z", time.Date(2025, 8, 20, 0, 1, 21, 281_000_000, time.UTC)},
		{"2023-02-16 09:14:11Z", time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC)},
		{"2023-02-16 09:14:11-03:00", time.Date(2023, 2, 16, 12, 14, 11, 0, time.UTC)},
		{"2023-02-16 09:14:11", time.Date(2023, 2, 16, 9, 14, 11, 0, time.UTC)},
		{"2023-02-16", time.Date(2023, 2, 16, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		got, err := upstream.ParseTimestamp(tt.in)
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("ParseTimestamp(%q) = %v, %v; want %v, nil", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "yesterday", "2023-13-01T00:00:00Z", "2023-02-30", "16/02/2023", "1676538851", "2023-02-16T25:00:00Z", " 2023-02-16T09:14:11Z"} {
		if got, err := upstream.ParseTimestamp(in); err == nil {
			t.Errorf("ParseTimestamp(%q) = %v, nil error; want an error", in, got)
		}
	}
}
