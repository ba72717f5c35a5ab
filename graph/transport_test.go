package graph

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// TestWriteResponseMatchesMarshal: writeResponse writes the bytes gqlgen's
// own transport would (json.Marshal of the response).
func TestWriteResponseMatchesMarshal(t *testing.T) {
	yes := true
	tests := []struct {
		name string
		resp *graphql.Response
	}{
		{"data", &graphql.Response{Data: json.RawMessage(`{"link":{"id":"mk_1","tags":["a","b"],"n":1.50}}`)}},
		{"html and line separators escaped", &graphql.Response{Data: json.RawMessage("{\"s\":\"<script>&amp;\u2028\u2029é\\\"\"}")}},
		{"null data", &graphql.Response{}},
		{"literal null data", &graphql.Response{Data: json.RawMessage(`null`)}},
		{"errors and data", &graphql.Response{
			Errors: gqlerror.List{{Message: "You may not read <this> link.", Path: ast.Path{ast.PathName("link")}, Extensions: map[string]any{"code": "facade.forbidden"}}},
			Data:   json.RawMessage(`{"link":null}`),
		}},
		{"errors only", &graphql.Response{Errors: gqlerror.List{{Message: "bad"}}}},
		{"extensions", &graphql.Response{Data: json.RawMessage(`{}`), Extensions: map[string]any{"identityCache": map[string]any{"stale": true, "ageSeconds": 412}}}},
		{"incremental falls back", &graphql.Response{Data: json.RawMessage(`{}`), Label: "x", HasNext: &yes}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.Marshal(tt.resp)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			writeResponse(&got, tt.resp)
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("writeResponse:\n%s\njson.Marshal:\n%s", got.Bytes(), want)
			}
		})
	}
}

func TestResponseContentType(t *testing.T) {
	tests := []struct{ accept, want string }{
		{"", contentTypeJSON},
		{"*/*", contentTypeJSON},
		{"application/*", contentTypeJSON},
		{"application/json", contentTypeJSON},
		{"application/graphql-response+json, application/json", contentTypeGraphQLResponse},
		{"application/json, application/graphql-response+json", contentTypeGraphQLResponse},
		{"application/graphql-response+json", contentTypeGraphQLResponse},
		{"application/graphql-response+json;charset=utf-8", contentTypeGraphQLResponse},
		{"application/json;q=0.9, application/graphql-response+json;q=0.1", contentTypeGraphQLResponse},
		{"application/graphql-response+json;q=0", contentTypeJSON},
		{"text/html, application/json;q=0.9", contentTypeJSON},
		{"text/html", contentTypeJSON},
		{";;;, application/json", contentTypeJSON},
		{"nonsense", contentTypeJSON},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("POST", "/graphql", nil)
		r.Header.Set("Accept", tt.accept)
		if got := responseContentType(r); got != tt.want {
			t.Errorf("Accept %q: %q, want %q", tt.accept, got, tt.want)
		}
	}
}
