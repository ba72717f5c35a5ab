package graph_test

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// marker is put in hostile inputs: no answer may quote it.
const marker = "HOSTILE-MARKER"

// TestHostileTransportRequests: whatever a request is (a body that is not a
// GraphQL request, bad GET parameters, another method or Content-Type, bad
// APQ extensions), every error of the answer has exactly one code, the
// status is the one expected (never 5xx), the Content-Type is negotiated,
// and nothing of the request (the body, a parameter) or of Go (type names)
// is quoted back.
func TestHostileTransportRequests(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, testOptions{APQCacheSize: 10})
	long := strings.Repeat(marker, 10_000) // 140 kB
	const bad = apierr.CodeBadRequest
	const invalid = apierr.CodeGraphQLValidationFailed
	get := func(rawQuery string) func() *http.Request {
		return func() *http.Request { return httptest.NewRequest(http.MethodGet, "/graphql?"+rawQuery, nil) }
	}
	body := func(method, contentType, b string) func() *http.Request {
		return func() *http.Request {
			r := httptest.NewRequest(method, "/graphql", strings.NewReader(b))
			if contentType != "" {
				r.Header.Set("Content-Type", contentType)
			}
			return r
		}
	}
	post := func(b string) func() *http.Request { return body(http.MethodPost, "application/json", b) }
	q := url.QueryEscape
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		code   string
	}{
		// Bodies.
		{"not JSON", post(`{ "not a JSON` + long), 400, bad},
		{"JSON string", post(`"` + long + `"`), 400, bad},
		{"JSON array", post(`[{"query":"{ __typename }"}, "` + marker + `"]`), 400, bad},
		{"null", post(`null`), 400, bad},
		{"empty body", post(``), 400, bad},
		{"number query", post(`{"query": 1, "x": "` + long + `"}`), 400, bad},
		{"object query", post(`{"query": {"` + marker + `": 1}}`), 400, bad},
		{"no query", post(`{"qeury": "{ __typename }"}`), 400, bad},
		{"null query", post(`{"query": null}`), 400, bad},
		{"string variables", post(`{"query": "{ __typename }", "variables": "` + marker + `"}`), 400, bad},
		{"array extensions", post(`{"query": "{ __typename }", "extensions": ["` + marker + `"]}`), 400, bad},
		{"number operationName", post(`{"query": "{ __typename }", "operationName": 7}`), 400, bad},
		{"several operations, no operationName", post(`{"query": "query A { __typename } query B { __typename }"}`), 200, invalid},
		{"unknown operationName", post(`{"query": "query A { __typename }", "operationName": "` + long + `"}`), 200, invalid},
		{"object literal for links(ids:)", post(`{"query": "{ links(ids: {}) { id } }"}`), 200, invalid},
		{"object literal for link(id:)", post(`{"query": "{ link(id: {}) { id } }"}`), 200, invalid},
		{"object literal for accounts(ids:)", post(`{"query": "{ link(id: \"` + sandbox.LinkSeed + `\") { accounts(ids: {}) { id } } }"}`), 200, invalid},
		{"object variable for links(ids:)", post(`{"query": "query($i: [ID!]!) { links(ids: $i) { id } }", "variables": {"i": [{"` + marker + `": 1}]}}`), 200, invalid},
		{"object variable for link(id:)", post(`{"query": "query($i: ID!) { link(id: $i) { id } }", "variables": {"i": {}}}`), 200, invalid},

		// Automatic persisted queries.
		{"APQ hash mismatch", post(`{"query": "{ __typename }", "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "` + marker + `"}}}`), 400, apierr.CodePersistedQueryHashMismatch},
		{"APQ extension not an object", post(`{"query": "{ __typename }", "extensions": {"persistedQuery": "` + marker + `"}}`), 400, bad},
		{"APQ hash not a string", post(`{"query": "{ __typename }", "extensions": {"persistedQuery": {"version": 1, "sha256Hash": 12}}}`), 400, bad},
		{"APQ version 2", post(`{"query": "{ __typename }", "extensions": {"persistedQuery": {"version": 2, "sha256Hash": "` + marker + `"}}}`), 400, bad},
		{"APQ version a string", post(`{"extensions": {"persistedQuery": {"version": "` + marker + `", "sha256Hash": "x"}}}`), 400, bad},
		{"APQ unknown hash", post(`{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "` + marker + `"}}}`), 200, apierr.CodePersistedQueryNotFound},

		// GET.
		{"GET invalid URL escape", get("query=%zz" + marker), 400, bad},
		{"GET variables not JSON", get("query=" + q("{ __typename }") + "&variables=" + q("{"+marker)), 400, bad},
		{"GET variables an array", get("query=" + q("{ __typename }") + "&variables=" + q(`["`+marker+`"]`)), 400, bad},
		{"GET extensions not JSON", get("query=" + q("{ __typename }") + "&extensions=" + q(marker)), 400, bad},
		{"GET no query", get("operationName=" + marker), 400, bad},
		{"GET several operations", get("query=" + q("query A { __typename } query B { __typename }")), 200, invalid},
		{"GET parse failure", get("query=" + q("{")), 200, apierr.CodeGraphQLParseFailed},

		// Methods, Content-Types, upgrades.
		{"PUT", body(http.MethodPut, "application/json", `{"query": "{ __typename }"}`), 405, bad},
		{"DELETE", body(http.MethodDelete, "", ``), 405, bad},
		{"PATCH", body(http.MethodPatch, "application/json", `{"query": "`+marker+`"}`), 405, bad},
		{"POST text/plain", body(http.MethodPost, "text/plain", `{"query": "{ __typename }"}`), 415, bad},
		{"POST no Content-Type", body(http.MethodPost, "", `{"query": "{ __typename }"}`), 415, bad},
		{"POST application/graphql", body(http.MethodPost, "application/graphql", `{ __typename }`), 415, bad},
		{"POST form", body(http.MethodPost, "application/x-www-form-urlencoded", "query="+marker), 415, bad},
		{"POST bad Content-Type", body(http.MethodPost, ";;"+marker, `{}`), 415, bad},
		{"WebSocket upgrade", func() *http.Request {
			r := get("query=" + q("{ __typename }"))()
			r.Header.Set("Upgrade", "websocket")
			r.Header.Set("Connection", "Upgrade")
			return r
		}, 400, bad},
	}
	for _, tt := range tests {
		for _, accept := range []string{"", "application/graphql-response+json"} {
			name := tt.name
			if accept != "" {
				name += " (graphql-response+json)"
			}
			t.Run(name, func(t *testing.T) {
				req := tt.req()
				if accept != "" {
					req.Header.Set("Accept", accept)
				}
				rec := httptest.NewRecorder()
				ts.handler.ServeHTTP(rec, req)
				checkHostileAnswer(t, rec, accept, tt.status, tt.code)
			})
		}
	}
}

func checkHostileAnswer(t *testing.T, rec *httptest.ResponseRecorder, accept string, status int, code string) {
	t.Helper()
	b := rec.Body.String()
	wantStatus := status
	if accept != "" && status == http.StatusOK {
		wantStatus = http.StatusBadRequest // GraphQL over HTTP: request errors under graphql-response+json
	}
	if rec.Code != wantStatus {
		t.Errorf("HTTP %d, want %d: %.300s", rec.Code, wantStatus, b)
	}
	if rec.Code >= 500 {
		t.Errorf("HTTP %d: a hostile request is the client's fault", rec.Code)
	}
	wantType := "application/json"
	if accept != "" {
		wantType = accept
	}
	if mt, _, _ := mime.ParseMediaType(rec.Header().Get("Content-Type")); mt != wantType {
		t.Errorf("Content-Type %q, want %s", rec.Header().Get("Content-Type"), wantType)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("not a JSON document: %v: %.300s", err, b)
	}
	if _, hasData := doc["data"]; hasData == (accept != "") {
		t.Errorf("data entry present: %v, want %v under %q: %.300s", hasData, accept == "", accept, b)
	}
	var errs []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	}
	if err := json.Unmarshal(doc["errors"], &errs); err != nil || len(errs) == 0 {
		t.Fatalf("no errors: %.300s", b)
	}
	for _, e := range errs {
		got, ok := e.Extensions["code"].(string)
		if !ok || got == "" {
			t.Errorf("error %q has no code", e.Message)
		} else if got != code {
			t.Errorf("code %s, want %s: %q", got, code, e.Message)
		}
	}
	for _, leak := range []string{marker, "RawParams", "interface {}", "map[", "json: ", "body:", " not found\""} {
		if strings.Contains(b, leak) {
			t.Errorf("answer quotes %q: %.300s", leak, b)
		}
	}
	if len(b) > 1024 {
		t.Errorf("answer is %d bytes: %.300s…", len(b), b)
	}
}
