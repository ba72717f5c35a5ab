package edge_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"

	"github.com/mkgraph/mkgraph/internal/edge"
	"github.com/mkgraph/mkgraph/internal/obs/reqlog"
)

// accessLine sends a request for path with the operation name op through
// the access log and returns the line's fields and its raw text.
func accessLine(t *testing.T, path, op string) (map[string]any, string) {
	t.Helper()
	var buf bytes.Buffer
	h := edge.Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqlog.From(r.Context()).SetOperation(op)
		w.WriteHeader(http.StatusNotFound)
	}), hlog.NewHandler(zerolog.New(&buf)), reqlog.Middleware, hlog.AccessHandler(edge.AccessLog))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.URL.Path = path // as the server parsed it: any bytes
	h.ServeHTTP(httptest.NewRecorder(), r)
	var f map[string]any
	if err := json.Unmarshal(buf.Bytes(), &f); err != nil {
		t.Fatalf("access line %q: %v", buf.String(), err)
	}
	return f, buf.String()
}

// TestAccessLogHostile: a path or operation name chosen to smuggle an id, a
// secret or a huge line into the logs is logged as its route or "other",
// by the rules of the metrics labels.
func TestAccessLogHostile(t *testing.T) {
	const secretish = "mk_eqkWN34UEoa2NxyALG8pcV"
	paths := map[string]string{
		"/graphql":                          "/graphql",
		"/graphql/schema.graphql":           "/graphql/schema.graphql",
		"/healthz":                          "/healthz",
		"/":                                 "/",
		"/graphql/" + secretish:             "other",
		"/links/" + secretish + "/identity": "other",
		"/" + strings.Repeat("a", 9<<10):    "other",
		"/graphql\n{\"level\":\"error\"}":   "other",
		"/readyz/../graphql":                "other",
		"/%00":                              "other",
	}
	for path, want := range paths {
		f, raw := accessLine(t, path, "")
		if f["path"] != want {
			t.Errorf("path %.40q logged as %q, want %q", path, f["path"], want)
		}
		if len(raw) > 1024 || strings.Contains(raw, secretish) {
			t.Errorf("path %.40q: line of %d bytes: %.200s", path, len(raw), raw)
		}
	}
	ops := map[string]string{
		"SeedLink":                 "SeedLink",
		"":                         "",
		"Get_" + secretish:         "other",
		secretish:                  "other",
		"Account1234567":           "other",                 // a run of digits: an account or phone number
		"eqkWN34UEoa2NxyALG8pcV":   "other",                 // a random id
		strings.Repeat("Q", 9<<10): strings.Repeat("Q", 64), // cut by reqlog: bounded
		"john.smith@example.com":   "other",
		"Query\nwith newline":      "other",
		"Profile Query":            "other",
		"Ünïcode":                  "other",
	}
	for op, want := range ops {
		f, raw := accessLine(t, "/graphql", op)
		if f["operation"] != want {
			t.Errorf("operation %.40q logged as %q, want %q", op, f["operation"], want)
		}
		if len(raw) > 1024 || strings.Contains(raw, secretish) || strings.Contains(raw, "john.smith") || strings.Contains(raw, "1234567") {
			t.Errorf("operation %.40q: line of %d bytes: %.200s", op, len(raw), raw)
		}
	}
}
