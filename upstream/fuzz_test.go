package upstream

// Native fuzz targets for the upstream decoders. Their seed corpora are
// checked in under testdata/fuzz/<FuzzName>/, so a plain `go test ./upstream/`
// runs every entry as a regular test. To look for new failures:
//
//	go test -run '^$' -fuzz '^FuzzDecodeIdentity$' -fuzztime 20s ./upstream/
//
// Keep a new interesting input by moving it from the fuzz cache (or from
// testdata/fuzz, where a failing input is written) into the curated set.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzDecodeIdentity checks that DecodeIdentity never panics, that what it
// accepts has the required ids, exact decimals and UTC times, and that the
// decoded value survives json.Marshal and a second DecodeIdentity unchanged
// (except Timestamp.Invalid, which by design marshals as null).
func FuzzDecodeIdentity(f *testing.F) {
	seeds := []string{filepath.Join("testdata", "identity_example.json")}
	fixtures, err := filepath.Glob(filepath.Join("sandbox", "fixtures", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	if len(fixtures) == 0 {
		f.Fatal("no sandbox fixtures found under sandbox/fixtures")
	}
	for _, path := range append(seeds, fixtures...) {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		id, err := DecodeIdentity(body)
		if err != nil {
			if id != nil {
				t.Fatalf("DecodeIdentity returned a value with error %v", err)
			}
			return
		}
		if id == nil {
			t.Fatal("DecodeIdentity returned nil, nil")
		}
		checkIdentity(t, id)

		out, err := json.Marshal(id)
		if err != nil {
			t.Fatalf("json.Marshal(decoded identity): %v", err)
		}
		id2, err := DecodeIdentity(out)
		if err != nil {
			t.Fatalf("DecodeIdentity(json.Marshal(decoded)): %v\nmarshaled: %.2000s", err, out)
		}
		checkIdentity(t, id2)
		walkValues(reflect.ValueOf(id2), "identity", func(path string, v any) {
			if ts, ok := v.(Timestamp); ok && ts.Invalid {
				t.Errorf("%s: Invalid after a marshal round trip (marshaled form %.2000s)", path, out)
			}
		})
		if diff := cmp.Diff(id, id2, identityCmpOptions...); diff != "" {
			t.Errorf("decode → marshal → decode changed the value (-first +second):\n%s\nmarshaled: %.2000s", diff, out)
		}
		out2, err := json.Marshal(id2)
		if err != nil {
			t.Fatalf("json.Marshal(second decode): %v", err)
		}
		if !bytes.Equal(out, out2) {
			t.Errorf("json.Marshal is not stable over a round trip:\nfirst:  %.2000s\nsecond: %.2000s", out, out2)
		}
	})
}

// identityCmpOptions compare two decoded identities: Decimal digits count,
// times compare by instant (time.Time.Equal), and Timestamp.Invalid is
// ignored because an unreadable time marshals as null by design.
var identityCmpOptions = []cmp.Option{
	cmp.AllowUnexported(Decimal{}),
	cmpopts.IgnoreFields(Timestamp{}, "Invalid"),
}

// checkIdentity checks the invariants of a successfully decoded identity.
func checkIdentity(t *testing.T, id *Identity) {
	t.Helper()
	if id.Link.LinkID == "" {
		t.Error("decoded identity has an empty link.link_id")
	}
	for i, a := range id.Accounts {
		if a.AccountID == "" {
			t.Errorf("decoded identity has an empty accounts[%d].account_id", i)
		}
	}
	walkValues(reflect.ValueOf(id), "identity", func(path string, v any) {
		switch v := v.(type) {
		case Decimal:
			checkDecimal(t, path, v)
		case Timestamp:
			checkTimestamp(t, path, v)
		}
	})
}

func checkDecimal(t *testing.T, path string, d Decimal) {
	t.Helper()
	if !d.Valid() {
		if d.String() != "" {
			t.Errorf("%s: invalid Decimal with digits %q", path, d.String())
		}
		return
	}
	d2, err := NewDecimal(d.String())
	if err != nil {
		t.Errorf("%s: NewDecimal(%q) of a decoded Decimal: %v", path, d.String(), err)
		return
	}
	if d2 != d {
		t.Errorf("%s: NewDecimal(%q) = %q, want the same digits", path, d.String(), d2.String())
	}
}

func checkTimestamp(t *testing.T, path string, ts Timestamp) {
	t.Helper()
	if loc := ts.Time.Location(); loc != time.UTC {
		t.Errorf("%s: Timestamp %v has location %v, want UTC", path, ts.Time, loc)
	}
	if ts.Invalid && !ts.Time.IsZero() {
		t.Errorf("%s: Timestamp is Invalid but holds %v", path, ts.Time)
	}
	if ts.Valid() != (ts.Ptr() != nil) {
		t.Errorf("%s: Valid() = %v but Ptr() = %v", path, ts.Valid(), ts.Ptr())
	}
	if !ts.Valid() {
		return
	}
	// What MarshalJSON writes must read back as the same instant.
	b, err := ts.MarshalJSON()
	if err != nil {
		t.Errorf("%s: MarshalJSON(%v): %v", path, ts.Time, err)
		return
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		t.Errorf("%s: MarshalJSON(%v) = %s, not a JSON string: %v", path, ts.Time, b, err)
		return
	}
	back, err := ParseTimestamp(s)
	if err != nil {
		t.Errorf("%s: Timestamp %v marshals as %s, which ParseTimestamp refuses: %v", path, ts.Time, b, err)
		return
	}
	if !back.Equal(ts.Time) {
		t.Errorf("%s: Timestamp %v marshals as %s, which parses back as %v", path, ts.Time, b, back)
	}
}

// FuzzTimestamp checks that ParseTimestamp never panics and returns UTC,
// that Timestamp.UnmarshalJSON and parseTimestamp agree with it, and that every readable time
// marshals to a string that ParseTimestamp reads back as the same instant.
func FuzzTimestamp(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		parsed, perr := ParseTimestamp(s)
		if perr == nil && parsed.Location() != time.UTC {
			t.Errorf("ParseTimestamp(%q) = %v, location %v; want UTC", s, parsed, parsed.Location())
		}
		if perr != nil && !parsed.IsZero() {
			t.Errorf("ParseTimestamp(%q) = %v with error %v; want the zero time", s, parsed, perr)
		}
		// DecodeIdentity's path: time.Time.UnmarshalText first.
		if fast, ferr := parseTimestamp([]byte(s)); (ferr == nil) != (perr == nil) || !fast.Equal(parsed) || fast.Location() != time.UTC {
			t.Errorf("parseTimestamp(%q) = %v (%v), %v; ParseTimestamp: %v, %v", s, fast, fast.Location(), ferr, parsed, perr)
		}

		quoted, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("json.Marshal(%q): %v", s, err)
		}
		var ts Timestamp
		if err := ts.UnmarshalJSON(quoted); err != nil {
			t.Fatalf("UnmarshalJSON(%s): %v; want nil, a bad time is kept as Invalid", quoted, err)
		}
		// json.Marshal turns invalid UTF-8 into U+FFFD: compare with what
		// the JSON string really holds.
		var unquoted string
		if err := json.Unmarshal(quoted, &unquoted); err != nil {
			t.Fatal(err)
		}
		want, werr := ParseTimestamp(unquoted)
		switch {
		case unquoted == "":
			if ts != (Timestamp{}) {
				t.Errorf("UnmarshalJSON(%s) = %+v, want absent", quoted, ts)
			}
		case werr != nil:
			if !ts.Invalid || !ts.Time.IsZero() {
				t.Errorf("UnmarshalJSON(%s) = %+v; want Invalid (ParseTimestamp: %v)", quoted, ts, werr)
			}
		default:
			if ts.Invalid || !ts.Time.Equal(want) {
				t.Errorf("UnmarshalJSON(%s) = %+v; want %v", quoted, ts, want)
			}
		}
		checkTimestamp(t, "timestamp", ts)
		if !ts.Valid() {
			return
		}
		b, err := json.Marshal(ts)
		if err != nil {
			t.Fatalf("json.Marshal(%+v): %v", ts, err)
		}
		var back Timestamp
		if err := json.Unmarshal(b, &back); err != nil || back.Invalid || !back.Time.Equal(ts.Time) {
			t.Errorf("Timestamp %v marshals as %s, which unmarshals as %+v, %v; want the same instant", ts.Time, b, back, err)
		}
	})
}

var (
	decimalType   = reflect.TypeFor[Decimal]()
	timestampType = reflect.TypeFor[Timestamp]()
)

// walkValues calls fn with every Decimal and Timestamp reachable from v, with
// a path for messages. New fields of those types are covered automatically.
func walkValues(v reflect.Value, path string, fn func(path string, v any)) {
	switch v.Type() {
	case decimalType, timestampType:
		fn(path, v.Interface())
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkValues(v.Elem(), path, fn)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				walkValues(v.Field(i), path+"."+v.Type().Field(i).Name, fn)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			walkValues(v.Index(i), fmt.Sprintf("%s[%d]", path, i), fn)
		}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			walkValues(v.MapIndex(k), fmt.Sprintf("%s[%q]", path, fmt.Sprint(k)), fn)
		}
	}
}
