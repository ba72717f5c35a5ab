package edge_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/internal/edge"
)

// parseCSP splits a policy into directive name → source list, failing on a
// directive given twice (browsers ignore the second).
func parseCSP(t *testing.T, policy string) map[string][]string {
	t.Helper()
	d := map[string][]string{}
	for part := range strings.SplitSeq(policy, ";") {
		fields := strings.Fields(part)
		if len(fields) == 0 {
			t.Errorf("policy %q has an empty directive", policy)
			continue
		}
		name := strings.ToLower(fields[0])
		if _, dup := d[name]; dup {
			t.Errorf("policy %q sets %s twice", policy, name)
		}
		d[name] = fields[1:]
	}
	return d
}

func TestCSPSanity(t *testing.T) {
	for _, tt := range []struct {
		name, policy string
	}{
		{"APICSP", edge.APICSP},
		{"GraphiQLCSP", edge.GraphiQLCSP},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := parseCSP(t, tt.policy)
			if got := d["default-src"]; !slices.Equal(got, []string{"'none'"}) {
				t.Errorf("default-src = %q, want 'none'", got)
			}
			if got := d["frame-ancestors"]; !slices.Equal(got, []string{"'none'"}) {
				t.Errorf("frame-ancestors = %q, want 'none'", got)
			}
			for name, sources := range d {
				for _, s := range sources {
					if strings.Contains(s, "*") || s == "https:" || s == "http:" || s == "blob:" {
						t.Errorf("%s allows %q: any host", name, s)
					}
					if s == "'unsafe-eval'" || s == "'unsafe-hashes'" || s == "'strict-dynamic'" {
						t.Errorf("%s allows %s", name, s)
					}
					if s == "'unsafe-inline'" && name != "style-src" {
						t.Errorf("%s allows 'unsafe-inline'", name)
					}
					if strings.HasPrefix(s, "http://") {
						t.Errorf("%s allows %q over plain HTTP", name, s)
					}
				}
			}
		})
	}
	d := parseCSP(t, edge.GraphiQLCSP)
	for name, want := range map[string][]string{
		"connect-src": {"'self'"},
		"base-uri":    {"'none'"},
		"form-action": {"'none'"},
	} {
		if got := d[name]; !slices.Equal(got, want) {
			t.Errorf("GraphiQLCSP %s = %q, want %q", name, got, want)
		}
	}
	if _, ok := d["object-src"]; ok {
		t.Errorf("GraphiQLCSP sets object-src: default-src 'none' covers it")
	}
	// GraphiQL is served from this origin: no source names a host or a
	// scheme but data:, and only style-src has 'unsafe-inline'.
	for name, sources := range d {
		for _, s := range sources {
			switch {
			case s == "'self'", s == "'none'", s == "'unsafe-inline'":
			case s == "data:" && (name == "font-src" || name == "img-src"):
			default:
				t.Errorf("GraphiQLCSP %s allows %q: only 'self' (and data: for fonts and images)", name, s)
			}
		}
	}
	for _, name := range []string{"script-src", "worker-src", "style-src", "font-src", "img-src", "connect-src"} {
		if !slices.Contains(d[name], "'self'") {
			t.Errorf("GraphiQLCSP %s = %q, want 'self' in it", name, d[name])
		}
	}
}

func TestGraphiQLSetsCSP(t *testing.T) {
	w := httptest.NewRecorder()
	h := edge.SecurityHeaders(edge.GraphiQL(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "<!DOCTYPE html>")
	})))
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if got := w.Result().Header.Values("Content-Security-Policy"); !slices.Equal(got, []string{edge.GraphiQLCSP}) {
		t.Errorf("Content-Security-Policy = %q, want [GraphiQLCSP]", got)
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q: GraphiQL must leave the handler's own", got)
	}
}
