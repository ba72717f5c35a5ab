package limits_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"

	"github.com/mkgraph/mkgraph/graph/limits"
)

// decodeAsTransport is the POST transport's decoding before DecodeBody
// replaced it, kept here as the reference DecodeBody must match.
func decodeAsTransport(body []byte) (graphql.RawParams, error) {
	var p graphql.RawParams
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	err := dec.Decode(&p)
	return p, err
}

// hostileBodies are bodies two JSON readers could read differently.
var hostileBodies = []string{
	`{}`,
	`{"query":"{a}"}`,
	` { "query" : "{a}" , "operationName" : "A" } `,
	`{"query":"{a}","query":"{b}"}`,
	`{"query":"{a}","query":null}`,
	`{"query":null,"query":"{b}"}`,
	`{"Query":"{a}","OPERATIONNAME":"X"}`,
	`{"qu\u0065ry":"{a}","operation\u004eame":"X"}`,
	`{"quer\u0079":"{a}","query\u0000":"{b}"}`,
	"\xef\xbb\xbf{\"query\":\"{a}\"}",
	`{"query":"{a(s: \"\\\"\")}"}`,
	`{"query":"\ud83d\ude00 \ud83d \u00e9 \n\t\/"}`,
	"{\"query\":\"\xff\xfe{a}\"}",
	`{"variables":{"a":[1,{"b":"]}\"{"}],"c":null,"n":1e400},"query":"{a}"}`,
	`{"variables":{"n":12345678901234567890123},"query":"{a}"}`,
	`{"query":"{a}"} trailing`,
	`{"query":"{a}"}{"query":"{b}"}`,
	`{"query":5}`,
	`{"query":"{a}","variables":5}`,
	`{"query":"{a}","operationName":true}`,
	`{"query":"{a}",}`,
	`{"query" "{a}"}`,
	`{"query":"{a}"`,
	`{"query":"{a}","x":01}`,
	"{\"query\":\"a\tb\"}",
	`"{a}"`,
	`null`,
	``,
	"  \n",
}

// TestDecodeBody: DecodeBody decodes every body as the transport did.
func TestDecodeBody(t *testing.T) {
	for _, body := range hostileBodies {
		got := limits.DecodeBody([]byte(body))
		want, err := decodeAsTransport([]byte(body))
		if (got.Err == nil) != (err == nil) || !reflect.DeepEqual(got.Params, want) {
			t.Errorf("DecodeBody(%q) = %+v, %v; the transport decoded %+v, %v", body, got.Params, got.Err, want, err)
		}
	}
}

// TestMiddlewareKeepsDecodedBody: next finds the body decoded (with
// DecodedBody) exactly when it is not a batch, as the transport decodes it,
// with the body itself still unread.
func TestMiddlewareKeepsDecodedBody(t *testing.T) {
	bodies := append([]string{`[{"query":"{a}"}]`, ` [`}, hostileBodies...)
	for _, body := range bodies {
		var got limits.Body
		var ok bool
		var rest []byte
		next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, ok = limits.DecodedBody(r)
			rest, _ = io.ReadAll(r.Body)
		})
		limits.Config{MaxBatch: 5}.Middleware(next).ServeHTTP(httptest.NewRecorder(), post(body, "application/json"))
		if string(rest) != body {
			t.Errorf("%q: next read %q", body, rest)
		}
		if batch := strings.HasPrefix(strings.TrimSpace(body), "["); ok == batch {
			t.Errorf("%q: decoded: %t, want %t", body, ok, !batch)
			continue
		}
		if !ok {
			continue
		}
		want, err := decodeAsTransport([]byte(body))
		got.Params.ReadTime = graphql.TraceTiming{}
		if (got.Err == nil) != (err == nil) || !reflect.DeepEqual(got.Params, want) {
			t.Errorf("%q: DecodedBody = %+v, %v; the transport decoded %+v, %v", body, got.Params, got.Err, want, err)
		}
	}
}

// TestDecodedBodyIsForItsBody: a decoding is given only with the body it
// decoded, to the request that crossed the Middleware.
func TestDecodedBodyIsForItsBody(t *testing.T) {
	const body = `{"query":"{a}"}`
	tests := []struct {
		name   string
		mw     bool
		method string
		next   func(r *http.Request) *http.Request // what reaches DecodedBody
		want   bool
	}{
		{"through the middleware", true, http.MethodPost, func(r *http.Request) *http.Request { return r }, true},
		{"body read already", true, http.MethodPost, func(r *http.Request) *http.Request { io.ReadAll(r.Body); return r }, true},
		{"no middleware", false, http.MethodPost, func(r *http.Request) *http.Request { return r }, false},
		{"GET", true, http.MethodGet, func(r *http.Request) *http.Request { return r }, false},
		{"body replaced", true, http.MethodPost, func(r *http.Request) *http.Request {
			r.Body = io.NopCloser(strings.NewReader(`{"query":"{b}"}`))
			return r
		}, false},
		{"another request, same context", true, http.MethodPost, func(r *http.Request) *http.Request {
			return httptest.NewRequestWithContext(r.Context(), http.MethodPost, "/graphql", strings.NewReader(`{"query":"{b}"}`))
		}, false},
		{"a copy of the request", true, http.MethodPost, func(r *http.Request) *http.Request { return r.Clone(r.Context()) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ok, checked bool
			var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r = tt.next(r)
				_, ok = limits.DecodedBody(r)
				checked = limits.Checked(r.Context())
			})
			if tt.mw {
				h = limits.Config{}.Middleware(h)
			}
			r := post(body, "application/json")
			if tt.method == http.MethodGet {
				r = get(url.Values{"query": {"{a}"}})
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if ok != tt.want || checked != tt.mw {
				t.Errorf("DecodedBody ok = %t, Checked = %t; want %t, %t", ok, checked, tt.want, tt.mw)
			}
		})
	}
}

// FuzzMiddlewareBody: whatever the body, the Middleware answers (no panic)
// with next called, or 400 and a code; next gets the body unchanged, and a
// decoding equal to the transport's.
func FuzzMiddlewareBody(f *testing.F) {
	for _, b := range hostileBodies {
		f.Add(b, 0)
	}
	f.Add(`[{"query":"{a}"},{"query":"{b}"}]`, 1)
	f.Fuzz(func(t *testing.T, body string, maxBatch int) {
		var called bool
		next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			called = true
			if rest, _ := io.ReadAll(r.Body); string(rest) != body {
				t.Errorf("next read %q, want %q", rest, body)
			}
			if got, ok := limits.DecodedBody(r); ok {
				want, err := decodeAsTransport([]byte(body))
				got.Params.ReadTime = graphql.TraceTiming{}
				if (got.Err == nil) != (err == nil) || !reflect.DeepEqual(got.Params, want) {
					t.Errorf("DecodedBody = %+v, %v; the transport decoded %+v, %v", got.Params, got.Err, want, err)
				}
			}
		})
		rec := httptest.NewRecorder()
		limits.Config{MaxBatch: maxBatch % 4, MaxDepth: 3}.Middleware(next).ServeHTTP(rec, post(body, "application/json"))
		if called {
			return
		}
		var got refusal
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusBadRequest || len(got.Errors) != 1 || got.Errors[0].Extensions.Code == "" {
			t.Errorf("answer %d %.200s, want 400 with a code", rec.Code, rec.Body)
		}
	})
}
