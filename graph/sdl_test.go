package graph_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/mkgraph/mkgraph/graph"
)

func TestSDL(t *testing.T) {
	sdl := graph.SDL()
	for _, want := range []string{
		`scalar DateTime @specifiedBy(url: "https://scalars.graphql.org/andimarek/date-time")`,
		`scalar Decimal @specifiedBy(url: "https://www.rfc-editor.org/rfc/rfc8259#section-6")`,
		"type Query {",
		"An exact amount as a string",
	} {
		if !strings.Contains(sdl, want) {
			t.Errorf("SDL lacks %q", want)
		}
	}
	if strings.Contains(sdl, "__Schema") || strings.Contains(sdl, "directive @skip") {
		t.Error("SDL holds built-in types or directives")
	}
	// It parses back into the schema the server executes.
	s, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: sdl})
	if err != nil {
		t.Fatalf("SDL does not load: %v", err)
	}
	if s.Types["Decimal"] == nil || s.Types["Decimal"].Directives.ForName("specifiedBy") == nil {
		t.Error("reloaded Decimal has no @specifiedBy")
	}
	for name, def := range graph.NewExecutableSchema(graph.Config{}).Schema().Types {
		if def.BuiltIn {
			continue
		}
		if got := s.Types[name]; got == nil || len(got.Fields) != len(def.Fields) {
			t.Errorf("type %s differs after a round trip", name)
		}
	}
}

func TestSchemaHandler(t *testing.T) {
	w := httptest.NewRecorder()
	graph.SchemaHandler(true).ServeHTTP(w, httptest.NewRequest(http.MethodGet, graph.SchemaPath, nil))
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/plain; charset=utf-8" || w.Body.String() != graph.SDL() {
		t.Fatalf("allowed: HTTP %d, Content-Type %q, body %.80q", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	etag := w.Header().Get("ETag")
	r := httptest.NewRequest(http.MethodGet, graph.SchemaPath, nil)
	r.Header.Set("If-None-Match", etag)
	w = httptest.NewRecorder()
	graph.SchemaHandler(true).ServeHTTP(w, r)
	if etag == "" || w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match %s: HTTP %d, want 304", etag, w.Code)
	}

	w = httptest.NewRecorder()
	graph.SchemaHandler(false).ServeHTTP(w, httptest.NewRequest(http.MethodGet, graph.SchemaPath, nil))
	var doc struct {
		Errors []struct {
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || w.Code != http.StatusNotFound || len(doc.Errors) != 1 ||
		doc.Errors[0].Extensions["code"] != "facade.introspection_disabled" {
		t.Errorf("refused: HTTP %d, body %s, want 404 with facade.introspection_disabled", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), "type Query") {
		t.Error("the refusal shows the schema")
	}
}
