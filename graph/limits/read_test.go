package limits

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/url"
	"testing"
)

// objectSeeds are request bodies whose reading is easy to get wrong.
var objectSeeds = []string{
	`{}`,
	`{"query":"{a}"}`,
	` { "query" : "{a}" , "operationName" : "A" } `,
	`{"query":"{a}","query":"{b}"}`,
	`{"query":"{a}","query":null}`,
	`{"query":null,"query":"{b}"}`,
	`{"Query":"{a}","OPERATIONNAME":"X"}`,
	`{"\u0071uery":"{a}","operation\u004eame":"X"}`,
	`{"quer\u0079":"{a}","query\u0000":"{b}"}`,
	`{"query":"{a(s: \"\\\"\")}"}`,
	`{"query":"\\\\\"","x":"\\"}`,
	`{"query":"\ud83d\ude00 \ud83d \u00e9 \n\t\/"}`,
	"{\"query\":\"\xff\xfe{a}\"}",
	`{"variables":{"a":[1,{"b":"]}\"{"}],"c":null},"query":"{a}"}`,
	`{"variables":[[[[]]]],"query":"{a}","extensions":{"persistedQuery":{"version":1}}}`,
	`{"query":"{a}"} trailing`,
	`{"query":"{a}"}{"query":"{b}"}`,
	`{"query":5}`,
	`{"query":"{a}","operationName":true}`,
	`{"query":"{a}",}`,
	`{"query" "{a}"}`,
	`{"query":"{a}"`,
	`{"query":"{a}","x":nul}`,
	`{"query":"{a}","x":-1.5e3,"y":true,"z":false}`,
	`{"query":"{a}","x":01}`,
	"{\"query\":\"a\tb\"}",
}

// decodeAsGqlgen decodes body as gqlgen's POST transport does.
func decodeAsGqlgen(body []byte) (query, operationName string, err error) {
	var p struct {
		Query         string         `json:"query"`
		OperationName string         `json:"operationName"`
		Variables     map[string]any `json:"variables"`
		Extensions    map[string]any `json:"extensions"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	err = dec.Decode(&p)
	return p.Query, p.OperationName, err
}

// checkObjectReading fails when readObject reads a body gqlgen accepts
// differently.
func checkObjectReading(t *testing.T, body []byte) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return
	}
	wantQuery, wantOp, err := decodeAsGqlgen(body)
	p, _, _, ok := readObject(body, i, -1)
	if err != nil || !ok {
		return // gqlgen refuses it, or Middleware decodes it as gqlgen does
	}
	var gotQuery, gotOp string
	if p.query != nil {
		if gotQuery, ok = unquote(p.query); !ok {
			return
		}
	}
	if p.operationName != nil {
		if gotOp, ok = unquote(p.operationName); !ok {
			return
		}
	}
	if gotQuery != wantQuery || gotOp != wantOp {
		t.Errorf("readObject(%q) = %q, %q; encoding/json reads %q, %q", body, gotQuery, gotOp, wantQuery, wantOp)
	}
}

func TestReadObject(t *testing.T) {
	for _, s := range objectSeeds {
		checkObjectReading(t, []byte(s))
	}
}

func FuzzReadObject(f *testing.F) {
	for _, s := range objectSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkObjectReading)
}

// checkStringScan fails when scanString finds the end of a JSON string
// elsewhere than encoding/json, or calls one too long that is not.
func checkStringScan(t *testing.T, b []byte, limit uint8) {
	if len(b) == 0 || b[0] != '"' {
		return
	}
	end, tooLong := scanString(b, 0, -1)
	if tooLong {
		t.Fatalf("scanString(%q, -1) reported a string too long", b)
	}
	var s string
	if end < 0 || json.Unmarshal(b[:end], &s) != nil {
		return // not a string gqlgen decodes: whatever scanString says is harmless
	}
	end2, tooLong := scanString(b, 0, int(limit))
	switch {
	case tooLong && len(s) <= int(limit):
		t.Errorf("scanString(%q, %d): too long, but it decodes to %d bytes", b, limit, len(s))
	case !tooLong && end2 != end:
		t.Errorf("scanString(%q, %d) = %d, want %d", b, limit, end2, end)
	}
}

var stringSeeds = []string{
	`""`, `"abc"`, `"a\"b"`, `"\\"`, `"\\\""`, `"\u00e9\u00e9"`, `"\ud83d\ude00"`, `"\ud83d"`,
	`"\n\t\/\b"`, "\"\xff\xfe\"", `"0123456789abcdef0123456789\"abcdef"`, `"unterminated`, `"a\`,
}

func TestScanString(t *testing.T) {
	for _, s := range stringSeeds {
		for _, limit := range []uint8{0, 1, 2, 3, 5, 8, 20} {
			checkStringScan(t, []byte(s), limit)
		}
	}
}

func FuzzScanString(f *testing.F) {
	for _, s := range stringSeeds {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(checkStringScan)
}

var queryStringSeeds = []string{
	"",
	"query=%7Ba%7D",
	"query=%7Ba%7D&query=%7Bb%7D&operationName=A&operationName=B",
	"%71uery=x&query=y",
	"query=a+b%20c&operationName=",
	"query",
	"query=x;y",
	"a=1;query=x&query=y",
	"query=%zz&query=y",
	"%zz=1&query=y",
	"&&query=x&",
	"query=x=y",
	"extensions=%7B%7D",
}

// checkQueryStringReading fails when readQueryString reads a query string
// url.ParseQuery accepts differently, or minUnescapedLen overestimates.
func checkQueryStringReading(t *testing.T, raw string) {
	vals, err := url.ParseQuery(raw)
	q, op, ok := readQueryString(raw)
	if err != nil {
		return // gqlgen refuses it
	}
	if ok != vals.Has("query") {
		t.Fatalf("readQueryString(%q) found a query: %t; url.ParseQuery: %t", raw, ok, vals.Has("query"))
	}
	if !ok {
		return
	}
	query, err1 := url.QueryUnescape(q)
	opName, err2 := url.QueryUnescape(op)
	if err1 != nil || err2 != nil {
		t.Fatalf("readQueryString(%q) = %q, %q: do not unescape (%v, %v)", raw, q, op, err1, err2)
	}
	if query != vals.Get("query") || opName != vals.Get("operationName") {
		t.Errorf("readQueryString(%q) = %q, %q; url.ParseQuery reads %q, %q", raw, query, opName, vals.Get("query"), vals.Get("operationName"))
	}
	if minUnescapedLen(q) > len(query) {
		t.Errorf("minUnescapedLen(%q) = %d, more than the %d bytes it decodes to", q, minUnescapedLen(q), len(query))
	}
}

func TestReadQueryString(t *testing.T) {
	for _, s := range queryStringSeeds {
		checkQueryStringReading(t, s)
	}
}

func FuzzReadQueryString(f *testing.F) {
	for _, s := range queryStringSeeds {
		f.Add(s)
	}
	f.Fuzz(checkQueryStringReading)
}

// stringEndSlow is stringEnd a byte at a time.
func stringEndSlow(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '"':
			return j + 1
		case '\\':
			j++
		}
	}
	return -1
}

// TestStringEnd compares the eight-bytes-at-a-time stringEnd with the
// plain loop on every string of quotes, backslashes and letters up to
// twelve bytes, and random longer ones.
func TestStringEnd(t *testing.T) {
	alphabet := []byte{'\\', '"', 'a', 'u'}
	check := func(b []byte) {
		for i := range min(len(b), 9) {
			if b[i] != '"' {
				continue
			}
			if got, want := stringEnd(b, i), stringEndSlow(b, i); got != want {
				t.Fatalf("stringEnd(%q, %d) = %d, want %d", b, i, got, want)
			}
		}
	}
	var all func(b []byte)
	all = func(b []byte) {
		check(b)
		if len(b) < 12 {
			for _, c := range alphabet {
				all(append(b, c))
			}
		}
	}
	all([]byte{'"'})
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		b := make([]byte, 1+r.IntN(80))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		b[r.IntN(min(len(b), 9))] = '"'
		check(b)
	}
}
