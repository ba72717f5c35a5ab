package graph

import (
	"bytes"
	"encoding/json"
	"testing"
)

// htmlSafe must never say safe where HTMLEscape would change something.
func FuzzHTMLSafe(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `"<"`, `">"`, `"&"`, "\"\u2028\"", "\"\u2029\"", "\"€\"", `"plain"`, ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var out bytes.Buffer
		json.HTMLEscape(&out, b)
		if htmlSafe(b) && !bytes.Equal(out.Bytes(), b) {
			t.Fatalf("htmlSafe(%q) but HTMLEscape gives %q", b, out.Bytes())
		}
	})
}

func TestHTMLSafe(t *testing.T) {
	for _, tc := range []struct {
		in   string
		safe bool
	}{
		{`{"data":{"a":"b"}}`, true},
		{`"a<b"`, false}, {`"a>b"`, false}, {`"a&b"`, false},
		{"\"\u2028\"", false}, {"\"\u2029\"", false},
		{"\"é\"", true},
		{"\"€\"", false}, // 0xE2: escaped to be sure (HTMLEscape leaves it)
	} {
		if got := htmlSafe([]byte(tc.in)); got != tc.safe {
			t.Errorf("htmlSafe(%q) = %v, want %v", tc.in, got, tc.safe)
		}
	}
}
