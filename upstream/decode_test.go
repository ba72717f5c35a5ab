package upstream

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decodeCases are answers where a JSON reader easily parts from
// encoding/json. Each is a test (TestDecodeIdentityMatchesReference) and a
// seed of FuzzDecodeIdentityDifferential.
var decodeCases = []struct{ name, body string }{
	{"minimal", `{"link":{"link_id":"mk_1"}}`},
	{"whitespace everywhere", " \t\r\n{ \"link\" : { \"link_id\" : \"mk_1\" } , \"accounts\" : [ ] } \n"},
	{"empty accounts", `{"accounts":[],"link":{"link_id":"mk_1"}}`},
	{"null accounts", `{"accounts":null,"link":{"link_id":"mk_1"}}`},
	{"null account", `{"accounts":[null],"link":{"link_id":"mk_1"}}`},
	{"null owner", `{"accounts":[{"account_id":"a","owners":[null,{}]}],"link":{"link_id":"mk_1"}}`},
	{"top-level null", `null`},
	{"trailing NUL", "{\"link\":{\"link_id\":\"mk_1\"}}\x00"},
	{"trailing comma", `{"link":{"link_id":"mk_1"},}`},
	{"missing colon", `{"link" {"link_id":"mk_1"}}`},
	{"missing comma", `{"accounts":[] "link":{"link_id":"mk_1"}}`},
	{"key not a string", `{link:{"link_id":"mk_1"}}`},
	{"case-insensitive keys", `{"LINK":{"Link_ID":"mk_1","STATE":"connected"},"Accounts":[{"ACCOUNT_ID":"a","Balances":{"CURRENT":1}}]}`},
	{"Kelvin sign and long s fold", `{"lin\u212a":{"link_id":"mk_1","\u017ftate":"x"},"accounts":[{"account_id":"a","owner\u017f":[{"name\u017f":["n"]}]}]}`},
	{"exact key after folded one", `{"link":{"LINK_ID":"mk_a","link_id":"mk_b"}}`},
	{"duplicate link merges", `{"link":{"link_id":"mk_1","state":"connected"},"link":{"provider":"mx"}}`},
	{"duplicate id", `{"link":{"link_id":"mk_1","link_id":"mk_2"}}`},
	{"null keeps a string", `{"link":{"link_id":"mk_1","link_id":null}}`},
	{"null clears a pointer", `{"link":{"link_id":"mk_1","webhook":"w","webhook":null}}`},
	{"duplicate balances merge", `{"accounts":[{"account_id":"a","balances":{"current":1},"balances":{"available":"2"}}],"link":{"link_id":"mk_1"}}`},
	{"balances null then object", `{"accounts":[{"account_id":"a","balances":{"current":1},"balances":null,"balances":{"limit":3}}],"link":{"link_id":"mk_1"}}`},
	{"duplicate accounts merge", `{"accounts":[{"account_id":"a","name":"A"},{"account_id":"b"}],"accounts":[{"account_type":"t"}],"link":{"link_id":"mk_1"}}`},
	{"stale elements come back", `{"link":{"link_id":"mk_1","available_products":["a","b","c"],"available_products":["d"],"available_products":["e",null,null,null]}}`},
	{"empty array drops stale elements", `{"link":{"link_id":"mk_1","available_products":["a","b"],"available_products":[],"available_products":[null,null]}}`},
	{"duplicate owners merge", `{"accounts":[{"account_id":"a","owners":[{"names":["x","y"]},{"emails":[{"address":"e"}]}],"owners":[{"names":[null]}]}],"link":{"link_id":"mk_1"}}`},
	{"duplicate products merge, product replaced", `{"link":{"link_id":"mk_1","products":{"identity":{"error_code":"x"},"accounts":null},"products":{"identity":{"unavailable":"y"}}}}`},
	{"products null", `{"link":{"link_id":"mk_1","products":{"identity":{}},"products":null}}`},
	{"products empty", `{"link":{"link_id":"mk_1","products":{}}}`},
	{"product not an object", `{"link":{"link_id":"mk_1","products":{"identity":[]}}}`},
	{"escapes", `{"link":{"link_id":"mk_\"1\\\/\b\f\n\r\t\u00e9\u0000","provider":"\ud83d\ude00"}}`},
	{"bad escape", `{"link":{"link_id":"mk_\x"}}`},
	{"single-quote escape", `{"link":{"link_id":"mk_\'"}}`},
	{"short unicode escape", `{"link":{"link_id":"mk_\u12"}}`},
	{"lone surrogates", `{"link":{"link_id":"a\ud800b\udc00c\ud800\u0041\ud800\ud800\udc00"}}`},
	{"surrogate then bad escape", `{"link":{"link_id":"a\ud800\uzzzz"}}`},
	{"invalid UTF-8", "{\"link\":{\"link_id\":\"mk_\xff\xc3\x28\xe2\x82\",\"state\":\"\xed\xa0\x80\"},\"\xffx\":1}"},
	{"control character in string", "{\"link\":{\"link_id\":\"mk_\t1\"}}"},
	{"control character in skipped string", "{\"x\":\"\n\",\"link\":{\"link_id\":\"mk_1\"}}"},
	{"unknown values", `{"x":{"a":[1,-0.5e+3,true,false,null,"s",{},[]],"b":{"c":{}}},"link":{"link_id":"mk_1","y":[[[]]]}}`},
	{"bad numbers", `{"x":01,"link":{"link_id":"mk_1"}}`},
	{"bad number dot", `{"x":1.,"link":{"link_id":"mk_1"}}`},
	{"bad number exponent", `{"x":1e+,"link":{"link_id":"mk_1"}}`},
	{"bad literal", `{"x":nul,"link":{"link_id":"mk_1"}}`},
	{"literal run-on", `{"x":truee,"link":{"link_id":"mk_1"}}`},
	{"decimals", `{"accounts":[{"account_id":"a","balances":{"available":"-0.5E+3","current":1e-7,"limit":"\u0031\u0032"}}],"link":{"link_id":"mk_1"}}`},
	{"decimal null after digits", `{"accounts":[{"account_id":"a","balances":{"current":1,"current":null,"available":"2","available":null,"limit":null,"limit":3}}],"link":{"link_id":"mk_1"}}`},
	{"decimal bool", `{"accounts":[{"account_id":"a","balances":{"current":true}}],"link":{"link_id":"mk_1"}}`},
	{"decimal object", `{"accounts":[{"account_id":"a","balances":{"current":{}}}],"link":{"link_id":"mk_1"}}`},
	{"decimal empty string", `{"accounts":[{"account_id":"a","balances":{"current":""}}],"link":{"link_id":"mk_1"}}`},
	{"timestamps", `{"link":{"link_id":"mk_1","products":{"identity":{"refreshed_at":"2024-09-12T10:00:00+02:00","last_attempted_at":"2024-09-12 10:00:00","last_enriched":""}}}}`},
	{"odd timestamps", `{"link":{"link_id":"mk_1","products":{"identity":{"refreshed_at":5,"last_attempted_at":{"a":[1]},"last_enriched":"yesterday"}}}}`},
	{"timestamp bad skipped value", `{"link":{"link_id":"mk_1","products":{"identity":{"refreshed_at":[1,]}}}}`},
	{"timestamp year out of range", `{"link":{"link_id":"mk_1","products":{"identity":{"refreshed_at":"9999-12-31T23:00:00-05:00","last_attempted_at":"0000-01-01T00:00:00+01:00"}}}}`},
	{"type mismatch string", `{"link":{"link_id":"mk_1","state":1}}`},
	{"type mismatch bool", `{"accounts":[{"account_id":"a","closed":"yes"}],"link":{"link_id":"mk_1"}}`},
	{"type mismatch list", `{"link":{"link_id":"mk_1","link_tags":"a"}}`},
	{"type mismatch element", `{"link":{"link_id":"mk_1","link_tags":[1]}}`},
	{"type mismatch object", `{"link":"mk_1"}`},
	{"bools", `{"accounts":[{"account_id":"a","closed":false,"owners":[{"emails":[{"address":"e","primary":true}]}]}],"link":{"link_id":"mk_1"}}`},
	{"deep but allowed", `{"x":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `,"link":{"link_id":"mk_1"}}`},
	{"too deep", `{"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `,"link":{"link_id":"mk_1"}}`},
	{"too deep objects", `{"x":` + strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000) + `,"link":{"link_id":"mk_1"}}`},
	{"truncated string", `{"link":{"link_id":"mk_1`},
	{"truncated escape", `{"link":{"link_id":"mk_1\`},
	{"truncated unicode escape", `{"link":{"link_id":"mk_1\u00`},
	{"truncated literal", `{"x":tru`},
	{"truncated number", `{"x":-`},
	{"truncated skipped object", `{"x":{"a":1`},
	{"truncated after key", `{"link"`},
}

func TestDecodeIdentityMatchesReference(t *testing.T) {
	for _, tt := range decodeCases {
		t.Run(tt.name, func(t *testing.T) { compareWithReference(t, []byte(tt.body)) })
	}
}

// FuzzDecodeIdentityDifferential checks DecodeIdentity against
// decodeIdentityReference (encoding/json): the same inputs refused, the same
// Identity for the others.
//
//	go test -run '^$' -fuzz '^FuzzDecodeIdentityDifferential$' -fuzztime 60s ./upstream/
func FuzzDecodeIdentityDifferential(f *testing.F) {
	fixtures, err := filepath.Glob(filepath.Join("sandbox", "fixtures", "*.json"))
	if err != nil || len(fixtures) == 0 {
		f.Fatalf("no sandbox fixtures: %v", err)
	}
	for _, path := range append(fixtures, filepath.Join("testdata", "identity_example.json")) {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, tt := range decodeCases {
		if len(tt.body) < 1000 {
			f.Add([]byte(tt.body))
		}
	}
	f.Fuzz(compareWithReference)
}

func compareWithReference(t *testing.T, body []byte) {
	got, err := DecodeIdentity(body)
	want, werr := decodeIdentityReference(body)
	if (err == nil) != (werr == nil) {
		t.Fatalf("DecodeIdentity(%.300q): error %v; encoding/json: error %v", body, err, werr)
	}
	if err != nil {
		if got != nil {
			t.Fatalf("DecodeIdentity returned a value with error %v", err)
		}
		return
	}
	checkIdentity(t, got)
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(Decimal{})); diff != "" {
		t.Fatalf("DecodeIdentity(%.300q) differs from encoding/json (-json +DecodeIdentity):\n%s", body, diff)
	}
	wantJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	gotJSON, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(wantJSON, gotJSON) {
		t.Fatalf("DecodeIdentity(%.300q) marshals differently:\njson: %.1000s\nours: %.1000s", body, wantJSON, gotJSON)
	}
}

// TestDecodeStringEveryByte puts each byte that ends the fast path of
// decoder.str (and a few that do not) at every offset of an eight-byte window.
func TestDecodeStringEveryByte(t *testing.T) {
	special := []byte{0, 0x1f, ' ', '!', '"', '#', '\\', ']', 0x7f, 0x80, 0xbf, 0xc3, 0xe2, 0xff}
	for _, c := range special {
		for off := range 18 {
			id := strings.Repeat("a", off) + string(c) + strings.Repeat("b", 17-off)
			body := `{"link":{"link_id":"` + id + `","state":"` + id + `\u00e9"}}`
			compareWithReference(t, []byte(body))
		}
	}
}

// TestDecodeNamesMatchTags keeps the readers' field names in step with the
// structs' json tags: a field added to a struct must be added to its reader.
func TestDecodeNamesMatchTags(t *testing.T) {
	tests := []struct {
		typ   reflect.Type
		names []string
	}{
		{reflect.TypeFor[Identity](), identityNames},
		{reflect.TypeFor[Account](), accountNames},
		{reflect.TypeFor[Balances](), balancesNames},
		{reflect.TypeFor[Owner](), ownerNames},
		{reflect.TypeFor[Address](), addressNames},
		{reflect.TypeFor[PhoneNumber](), phoneNames},
		{reflect.TypeFor[Email](), emailNames},
		{reflect.TypeFor[Link](), linkNames},
		{reflect.TypeFor[ProductStatus](), productStatusNames},
	}
	for _, tt := range tests {
		var tags []string
		for f := range tt.typ.Fields() {
			tags = append(tags, f.Tag.Get("json"))
		}
		if diff := cmp.Diff(tags, tt.names); diff != "" {
			t.Errorf("%s: reader names differ from the json tags (-tags +names):\n%s", tt.typ, diff)
		}
	}
}
