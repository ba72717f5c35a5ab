package limits_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/mkgraph/mkgraph/graph/limits"
	"github.com/mkgraph/mkgraph/internal/apierr"
)

func TestMiddleware(t *testing.T) {
	deep := nest(11) // over the default depth
	tests := []struct {
		name string
		cfg  limits.Config
		req  func(t *testing.T) *http.Request
		want string // code; "" when next must get the request
	}{
		{"GET allowed", limits.Config{}, func(t *testing.T) *http.Request {
			return get(url.Values{"query": {"{link(id: \"x\") {id}}"}})
		}, ""},
		{"GET refused", limits.Config{}, func(t *testing.T) *http.Request {
			return get(url.Values{"query": {deep}})
		}, apierr.CodeQueryTooDeep},
		{"GET too large", limits.Config{}, func(t *testing.T) *http.Request {
			return get(url.Values{"query": {sized(limits.DefaultMaxQueryBytes + 1)}})
		}, apierr.CodeQueryTooLarge},
		{"GET at the size limit, escaped", limits.Config{MaxQueryBytes: 40}, func(t *testing.T) *http.Request {
			return get(url.Values{"query": {`{a(s: "` + strings.Repeat("%", 30) + `")}`}}) // 40 bytes, 112 escaped
		}, ""},
		{"GET over the size limit, escaped", limits.Config{MaxQueryBytes: 40}, func(t *testing.T) *http.Request {
			return get(url.Values{"query": {`{a(s: "` + strings.Repeat("%", 31) + `")}`}})
		}, apierr.CodeQueryTooLarge},
		{"GET operationName", limits.Config{MaxDepth: 3, MaxAliases: 2}, func(t *testing.T) *http.Request {
			return get(url.Values{"query": {"query A " + nest(4) + " query B " + aliases(3)}, "operationName": {"B"}})
		}, apierr.CodeTooManyAliases},
		{"GET first query wins", limits.Config{}, func(t *testing.T) *http.Request {
			return httptest.NewRequest(http.MethodGet, "/graphql?query="+url.QueryEscape(deep)+"&query=%7Ba%7D", nil)
		}, apierr.CodeQueryTooDeep},
		{"GET escaped key", limits.Config{}, func(t *testing.T) *http.Request {
			return httptest.NewRequest(http.MethodGet, "/graphql?%71uery="+url.QueryEscape(deep), nil)
		}, apierr.CodeQueryTooDeep},
		{"GET bad escape elsewhere", limits.Config{}, func(t *testing.T) *http.Request {
			return httptest.NewRequest(http.MethodGet, "/graphql?x=%zz&query="+url.QueryEscape(deep), nil)
		}, apierr.CodeQueryTooDeep},
		{"GET query after a semicolon", limits.Config{}, func(t *testing.T) *http.Request {
			return httptest.NewRequest(http.MethodGet, "/graphql?x=1;query="+url.QueryEscape(deep), nil)
		}, ""},
		{"GET persisted query by hash", limits.Config{}, func(t *testing.T) *http.Request {
			return get(url.Values{"extensions": {`{"persistedQuery":{"version":1,"sha256Hash":"ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"}}`}})
		}, ""},

		{"POST allowed", limits.Config{}, func(t *testing.T) *http.Request {
			return post(jsonBody(t, map[string]any{"query": mustRead(t, "testdata/everything.graphql"), "variables": map[string]any{"ids": []string{"a", "b"}}}), "application/json")
		}, ""},
		{"POST refused", limits.Config{}, func(t *testing.T) *http.Request {
			return post(jsonBody(t, map[string]any{"query": deep}), "application/json")
		}, apierr.CodeQueryTooDeep},
		{"POST operationName", limits.Config{MaxDepth: 3, MaxAliases: 2}, func(t *testing.T) *http.Request {
			return post(jsonBody(t, map[string]any{"query": "query A " + nest(4) + " query B " + aliases(3), "operationName": "B"}), "application/json")
		}, apierr.CodeTooManyAliases},
		{"POST too large", limits.Config{}, func(t *testing.T) *http.Request {
			return post(jsonBody(t, map[string]any{"query": sized(1 << 20)}), "application/json")
		}, apierr.CodeQueryTooLarge},
		{"POST too large, escaped", limits.Config{}, func(t *testing.T) *http.Request {
			return post(jsonBody(t, map[string]any{"query": "{" + strings.Repeat("a\n\"<", 1<<18) + "}"}), "application/json")
		}, apierr.CodeQueryTooLarge},
		{"POST at the size limit, escaped", limits.Config{MaxQueryBytes: 40}, func(t *testing.T) *http.Request {
			return post(`{"query": "{a(s: \"`+strings.Repeat(`\u00e9`, 15)+`\")}"}`, "application/json") // 40 bytes decoded, 102 escaped
		}, ""},
		{"POST over the size limit, escaped", limits.Config{MaxQueryBytes: 40}, func(t *testing.T) *http.Request {
			return post(`{"query": "{a(s: \"`+strings.Repeat(`\u00e9`, 15)+` \")}"}`, "application/json")
		}, apierr.CodeQueryTooLarge},
		{"POST escapes decoded", limits.Config{MaxDepth: 3}, func(t *testing.T) *http.Request {
			return post(`{"query":"{a\n{b\t{c{\u0064\u007d}}}"}`, "application/json")
		}, apierr.CodeQueryTooDeep},
		{"POST other members skipped", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"variables": {"a": [1, {"b": "]}\"{"}], "c": null, "d": -1.5e3, "e": true}, "query": "`+deep+`", "extensions": {}}`, "application/json")
		}, apierr.CodeQueryTooDeep},
		{"POST key in capitals", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"QUERY": "`+deep+`"}`, "application/json")
		}, apierr.CodeQueryTooDeep},
		{"POST escaped key", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"\u0071uery": "`+deep+`"}`, "application/json")
		}, apierr.CodeQueryTooDeep},
		{"POST last query wins", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"query": "{a}", "query": "`+deep+`"}`, "application/json")
		}, apierr.CodeQueryTooDeep},
		{"POST last query wins, the other way", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"query": "`+deep+`", "query": "{a}"}`, "application/json")
		}, ""},
		{"POST null query keeps the earlier one", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"query": "`+deep+`", "query": null}`, "application/json")
		}, apierr.CodeQueryTooDeep},
		{"POST trailing data after the object", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"query": "`+deep+`"} trailing`, "application/json")
		}, apierr.CodeQueryTooDeep},
		{"POST escaped key in capitals", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"QU\u0045RY": "`+deep+`"}`, "application/json")
		}, apierr.CodeQueryTooDeep},
		{"POST query beside variables of the wrong type", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"query": "`+deep+`", "variables": 5}`, "application/json")
		}, apierr.CodeQueryTooDeep},
		{"POST BOM", limits.Config{}, func(t *testing.T) *http.Request {
			return post("\xef\xbb\xbf"+jsonBody(t, map[string]any{"query": deep}), "application/json") // not JSON: the transport refuses it
		}, ""},
		{"POST any Content-Type", limits.Config{}, func(t *testing.T) *http.Request {
			return post(jsonBody(t, map[string]any{"query": deep}), "text/plain")
		}, apierr.CodeQueryTooDeep},
		{"POST persisted query by hash", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"}}}`, "application/json")
		}, ""},
		{"POST persisted query registration", limits.Config{}, func(t *testing.T) *http.Request {
			return post(jsonBody(t, map[string]any{"query": deep, "extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": "x"}}}), "application/json")
		}, apierr.CodeQueryTooDeep},
		{"POST malformed JSON", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"query": "`+deep, "application/json")
		}, ""},
		{"POST not JSON", limits.Config{}, func(t *testing.T) *http.Request {
			return post("query="+deep, "application/x-www-form-urlencoded")
		}, ""},
		{"POST query of the wrong type", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`{"query": ["`+deep+`"]}`, "application/json")
		}, ""},
		{"POST empty body", limits.Config{}, func(t *testing.T) *http.Request {
			return post("", "application/json")
		}, ""},

		{"batch refused by default", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`[{"query": "{a}"}]`, "application/json")
		}, apierr.CodeBatchingDisabled},
		{"batch refused by default, even malformed", limits.Config{}, func(t *testing.T) *http.Request {
			return post(`  [{"query": `, "application/json")
		}, apierr.CodeBatchingDisabled},
		{"batch at the cap", limits.Config{MaxBatch: 2}, func(t *testing.T) *http.Request {
			return post(`[{"query": "{a}"}, {"query": "{b}", "variables": {"x": [1, 2]}}]`, "application/json")
		}, ""},
		{"batch over the cap", limits.Config{MaxBatch: 2}, func(t *testing.T) *http.Request {
			return post(`[{"query": "{a}"}, {"query": "{b}"}, {"query": "{c}"}]`, "application/json")
		}, apierr.CodeBatchingDisabled},
		{"batch over the cap, the rest malformed", limits.Config{MaxBatch: 2}, func(t *testing.T) *http.Request {
			return post(`[{"query": "{a}"}, {"query": "{b}"}, {"query": `, "application/json")
		}, apierr.CodeBatchingDisabled},
		{"batch with a hostile operation", limits.Config{MaxBatch: 2}, func(t *testing.T) *http.Request {
			return post(`[{"query": "{a}"}, {"query": "`+deep+`"}]`, "application/json")
		}, apierr.CodeQueryTooDeep},
		{"batch with an element not a request", limits.Config{MaxBatch: 2}, func(t *testing.T) *http.Request {
			return post(`[{"query": "{a}"}, 5]`, "application/json")
		}, ""},
		{"batch with a hostile operation beside variables of the wrong type", limits.Config{MaxBatch: 2}, func(t *testing.T) *http.Request {
			return post(`[{"query": "{a}"}, {"query": "`+deep+`", "variables": []}]`, "application/json")
		}, apierr.CodeQueryTooDeep},
		{"empty batch", limits.Config{MaxBatch: 2}, func(t *testing.T) *http.Request {
			return post(`[ ]`, "application/json")
		}, ""},

		{"other methods pass", limits.Config{}, func(t *testing.T) *http.Request {
			return httptest.NewRequest(http.MethodOptions, "/graphql?query="+url.QueryEscape(deep), nil)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req(t)
			var sent []byte
			if r.Body != nil {
				sent, _ = io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(sent))
			}
			rec, seen := serve(t, tt.cfg, r)
			if tt.want == "" {
				if rec.Code != http.StatusTeapot {
					t.Fatalf("status %d, body %s; want the request passed to next", rec.Code, rec.Body)
				}
				if !bytes.Equal(seen, sent) {
					t.Errorf("next got body %.80q, want %.80q unchanged", seen, sent)
				}
				return
			}
			if seen != nil {
				t.Errorf("next was called; want the request refused with %s", tt.want)
			}
			if rec.Code != http.StatusBadRequest {
				t.Errorf("status %d, want 400", rec.Code)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			var got refusal
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("answer %s: %v", rec.Body, err)
			}
			if len(got.Errors) != 1 || got.Errors[0].Extensions.Code != tt.want || got.Errors[0].Message == "" || string(got.Data) != "null" {
				t.Errorf("answer %s, want one error with code %s and data null", rec.Body, tt.want)
			}
		})
	}
}

// TestMiddlewareConcurrent checks that requests served at once each reach
// next with their own body, though bodies are read into pooled buffers.
func TestMiddlewareConcurrent(t *testing.T) {
	h := limits.Config{}.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Header.Get("X-Want"))
		if string(b) != r.Header.Get("X-Want") {
			w.WriteHeader(http.StatusConflict)
		}
	}))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				body := fmt.Sprintf(`{"query": "{ link(id: \"%d-%d\") { id } }", "variables": {"pad": %q}}`, g, i, strings.Repeat("x", i*37))
				r := post(body, "application/json")
				r.Header.Set("X-Want", body)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if rec.Code != http.StatusOK {
					t.Errorf("request %d-%d: status %d", g, i, rec.Code)
					return
				}
			}
		})
	}
	wg.Wait()
}
