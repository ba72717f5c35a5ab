package edge_test

import (
	"crypto/sha256"
	"encoding/base64"
	"html"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql/playground"

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
}

var (
	inlineScript = regexp.MustCompile(`(?s)<script>(.*?)</script>`)
	scriptSrc    = regexp.MustCompile(`(?s)<script\s+src="([^"]+)"`)
	stylesheet   = regexp.MustCompile(`(?s)<link\s+rel="stylesheet"\s+href="([^"]+)"`)
	anyScript    = regexp.MustCompile(`<script\b`)
)

// TestGraphiQLCSPAllowsPage renders gqlgen's GraphiQL page as the server
// serves it and checks that GraphiQLCSP allows each thing it loads or runs:
// a gqlgen upgrade that changes them fails here, naming what to put in.
func TestGraphiQLCSPAllowsPage(t *testing.T) {
	d := parseCSP(t, edge.GraphiQLCSP)
	for _, title := range []string{"mkgraph", "Another <title> & more"} {
		w := httptest.NewRecorder()
		edge.GraphiQL(playground.Handler(title, "/graphql")).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		if w.Code != http.StatusOK {
			t.Fatalf("GraphiQL page status = %d", w.Code)
		}
		if got := w.Header().Get("Content-Security-Policy"); got != edge.GraphiQLCSP {
			t.Errorf("Content-Security-Policy = %q, want GraphiQLCSP", got)
		}
		page := w.Body.String()

		inline := inlineScript.FindAllStringSubmatch(page, -1)
		external := scriptSrc.FindAllStringSubmatch(page, -1)
		if n := len(anyScript.FindAllString(page, -1)); n != len(inline)+len(external) || len(inline) == 0 || len(external) == 0 {
			t.Fatalf("page has %d <script> tags, of which %d inline and %d external: the test no longer understands the page", n, len(inline), len(external))
		}
		for _, m := range inline {
			sum := sha256.Sum256([]byte(m[1]))
			src := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
			if !slices.Contains(d["script-src"], src) {
				t.Errorf("title %q: script-src lacks %s, the hash of the page's inline script", title, src)
			}
		}
		for _, m := range external {
			if u := html.UnescapeString(m[1]); !slices.Contains(d["script-src"], u) {
				t.Errorf("script-src lacks %s, which the page loads", u)
			}
		}
		sheets := stylesheet.FindAllStringSubmatch(page, -1)
		if len(sheets) == 0 {
			t.Fatal("page has no stylesheet: the test no longer understands the page")
		}
		for _, m := range sheets {
			if u := html.UnescapeString(m[1]); !slices.Contains(d["style-src"], u) {
				t.Errorf("style-src lacks %s, which the page loads", u)
			}
		}
		if !strings.Contains(page, `integrity="sha256-`) {
			t.Error("page loads its CDN files without SRI")
		}
	}
}
