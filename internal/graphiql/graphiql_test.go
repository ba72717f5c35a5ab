package graphiql

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"html"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

var testOptions = Options{
	Endpoint:     "/graphql",
	Prefix:       "/graphiql/",
	SandboxLinks: []Link{{"mk_seed", "The seed."}, {"mk_other", "Another <one> & more."}},
}

// fakeBundle is what web/build.mjs writes, in miniature.
func fakeBundle() fstest.MapFS {
	js := strings.Repeat("console.log('GraphiQL');\n", 200)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, js)
	zw.Close()
	return fstest.MapFS{
		"main-ABCDEF23.js.gz": {Data: gz.Bytes()},
		"manifest.json": {Data: []byte(`{"js": "main-ABCDEF23.js", "css": "main-QWERTY45.css",
			"workers": {"editor": "editor.worker-AAAAAAAA.js", "json": "json.worker-BBBBBBBB.js", "graphql": "graphql.worker-CCCCCCCC.js"},
			"files": ["main-ABCDEF23.js", "main-QWERTY45.css", "editor.worker-AAAAAAAA.js", "json.worker-BBBBBBBB.js",
			          "graphql.worker-CCCCCCCC.js", "codicon-DDDDDDDD.ttf", "licenses.txt"]}`)},
		"main-ABCDEF23.js":           {Data: []byte(js)},
		"main-QWERTY45.css":          {Data: []byte("body{margin:0}")},
		"editor.worker-AAAAAAAA.js":  {Data: []byte("self.onmessage=null")},
		"json.worker-BBBBBBBB.js":    {Data: []byte("self.onmessage=null")},
		"graphql.worker-CCCCCCCC.js": {Data: []byte("self.onmessage=null")},
		"codicon-DDDDDDDD.ttf":       {Data: []byte("\x00\x01\x00\x00font")},
		"licenses.txt":               {Data: []byte("react 19 (MIT)\n")},
		".keep":                      {},
	}
}

// serve runs h the way routes.go mounts it.
func serve(t *testing.T, h *Handler, method, target string, header ...string) *http.Response {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", h.Page())
	mux.Handle("GET /graphiql/", h.Assets())
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	scriptTag = regexp.MustCompile(`<script\b[^>]*>`)
	srcAttr   = regexp.MustCompile(`\b(?:src|href)="([^"]*)"`)
	configTag = regexp.MustCompile(`data-config="([^"]*)"`)
)

// TestPage: the page loads only files of the bundle, from this origin, runs
// no inline script and is not cached; its configuration is the server's.
func TestPage(t *testing.T) {
	h, err := newFrom(fakeBundle(), testOptions)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Built() {
		t.Fatal("Built() = false with a bundle")
	}
	resp := serve(t, h, "GET", "/")
	page := body(t, resp)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("page: %d, Cache-Control %q, Content-Type %q; want 200, no-store, text/html", resp.StatusCode, resp.Header.Get("Cache-Control"), resp.Header.Get("Content-Type"))
	}
	tags := scriptTag.FindAllString(page, -1)
	if len(tags) != 1 || !strings.Contains(tags[0], `src="/graphiql/main-ABCDEF23.js"`) {
		t.Errorf("script tags %q, want the bundle's one script", tags)
	}
	if strings.Contains(page, "<style") || strings.Contains(page, " style=") || strings.Contains(page, "</script>\n<script>") {
		t.Error("page has inline style or script")
	}
	for _, m := range srcAttr.FindAllStringSubmatch(page, -1) {
		u := html.UnescapeString(m[1])
		if u == "data:," {
			continue
		}
		if !strings.HasPrefix(u, "/graphiql/") {
			t.Errorf("page loads %q, not a file of the bundle", u)
			continue
		}
		if r := serve(t, h, "GET", u); r.StatusCode != 200 {
			t.Errorf("GET %s: %d", u, r.StatusCode)
		}
	}
	m := configTag.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("page has no data-config")
	}
	var config struct {
		Endpoint, Query, Headers string
		Sandbox, JWT             bool
		Workers                  map[string]string
	}
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &config); err != nil {
		t.Fatalf("data-config: %v", err)
	}
	if config.Endpoint != "/graphql" || !config.Sandbox || config.JWT || config.Headers != "" {
		t.Errorf("config = %+v", config)
	}
	if !strings.Contains(config.Query, `link(id: "mk_seed")`) || !strings.Contains(config.Query, "Another <one> & more.") {
		t.Errorf("config query = %q", config.Query)
	}
	for _, k := range []string{"editor", "json", "graphql"} {
		if r := serve(t, h, "GET", config.Workers[k]); r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/javascript") {
			t.Errorf("worker %s at %q: %d %q", k, config.Workers[k], r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
}

// TestAssetCaching: content-hashed names are immutable for a year, the rest
// revalidated; text is gzipped for clients that accept it.
func TestAssetCaching(t *testing.T) {
	h, err := newFrom(fakeBundle(), testOptions)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path, cache, ctype string
	}{
		{"/graphiql/main-ABCDEF23.js", "public, max-age=31536000, immutable", "text/javascript; charset=utf-8"},
		{"/graphiql/main-QWERTY45.css", "public, max-age=31536000, immutable", "text/css; charset=utf-8"},
		{"/graphiql/codicon-DDDDDDDD.ttf", "public, max-age=31536000, immutable", "font/ttf"},
		{"/graphiql/licenses.txt", "no-cache", "text/plain; charset=utf-8"},
	} {
		resp := serve(t, h, "GET", tt.path)
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != tt.cache || resp.Header.Get("Content-Type") != tt.ctype {
			t.Errorf("GET %s: %d, Cache-Control %q, Content-Type %q; want 200, %q, %q", tt.path, resp.StatusCode,
				resp.Header.Get("Cache-Control"), resp.Header.Get("Content-Type"), tt.cache, tt.ctype)
		}
		if resp.Header.Get("ETag") == "" {
			t.Errorf("GET %s: no ETag", tt.path)
		}
	}

	want, _ := fs.ReadFile(fakeBundle(), "main-ABCDEF23.js")
	plain := serve(t, h, "GET", "/graphiql/main-ABCDEF23.js")
	if got := body(t, plain); got != string(want) || plain.Header.Get("Content-Encoding") != "" {
		t.Errorf("without Accept-Encoding: %d bytes, Content-Encoding %q", len(got), plain.Header.Get("Content-Encoding"))
	}
	zipped := serve(t, h, "GET", "/graphiql/main-ABCDEF23.js", "Accept-Encoding", "br, gzip;q=0.8")
	if zipped.Header.Get("Content-Encoding") != "gzip" || zipped.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("Accept-Encoding gzip: Content-Encoding %q, Vary %q", zipped.Header.Get("Content-Encoding"), zipped.Header.Get("Vary"))
	}
	zr, err := gzip.NewReader(bytes.NewReader([]byte(body(t, zipped))))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(zr); !bytes.Equal(got, want) {
		t.Error("gzipped body does not decode to the file")
	}
	if r := serve(t, h, "GET", "/graphiql/main-ABCDEF23.js", "Accept-Encoding", "gzip;q=0"); r.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 was answered gzipped")
	}
	etag := plain.Header.Get("ETag")
	for _, enc := range []string{"", "gzip"} {
		if r := serve(t, h, "GET", "/graphiql/main-ABCDEF23.js", "If-None-Match", etag, "Accept-Encoding", enc); r.StatusCode != http.StatusNotModified {
			t.Errorf("If-None-Match (Accept-Encoding %q): %d, want 304", enc, r.StatusCode)
		}
	}
}

// TestAssetPaths: only the manifest's files are served; nothing else under
// the prefix, nothing outside the bundle.
func TestAssetPaths(t *testing.T) {
	h, err := newFrom(fakeBundle(), testOptions)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		"/graphiql/", "/graphiql/manifest.json", "/graphiql/.keep", "/graphiql/nope.js",
		"/graphiql/../graphiql.go", "/graphiql/..%2fgraphiql.go", "/graphiql/%2e%2e/go.mod",
		"/graphiql//etc/passwd", "/graphiql/./main-ABCDEF23.js/", "/graphiql/sub/main-ABCDEF23.js",
		"/graphiql/main-ABCDEF23.js%00", "/graphiql/MAIN-ABCDEF23.JS", "/graphiql/main-ABCDEF23.js.gz",
	} {
		resp := serve(t, h, "GET", p)
		if resp.StatusCode == http.StatusOK {
			t.Errorf("GET %s: 200, want no file", p)
		}
		if b := body(t, resp); strings.Contains(b, "package graphiql") || strings.Contains(b, "root:") {
			t.Errorf("GET %s served a file outside the bundle", p)
		}
	}
	for _, name := range []string{"../x.js", "sub/x.js", ".keep", "/abs.js"} {
		b := fakeBundle()
		b["manifest.json"] = &fstest.MapFile{Data: []byte(`{"js": "main-ABCDEF23.js", "files": ["` + name + `"]}`)}
		if _, err := newFrom(b, testOptions); err == nil {
			t.Errorf("a manifest naming %q was accepted", name)
		}
	}
	b := fakeBundle()
	delete(b, "json.worker-BBBBBBBB.js")
	if _, err := newFrom(b, testOptions); err == nil || !strings.Contains(err.Error(), "make graphiql") {
		t.Errorf("an incomplete bundle: %v, want an error saying to run make graphiql", err)
	}
}

// TestNoBundle: a binary built without the bundle says, on its page, how to
// build it, and serves no assets.
func TestNoBundle(t *testing.T) {
	h, err := newFrom(fstest.MapFS{".keep": {}}, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	if h.Built() {
		t.Error("Built() = true without a bundle")
	}
	resp := serve(t, h, "GET", "/")
	page := body(t, resp)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("page: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"<code>make graphiql</code>", "Node.js", "rebuild the binary", "/graphql", "mk_seed"} {
		if !strings.Contains(page, want) {
			t.Errorf("fallback page lacks %q:\n%s", want, page)
		}
	}
	if scriptTag.MatchString(page) {
		t.Error("fallback page has a script")
	}
	if strings.Contains(page, "Another <one>") {
		t.Error("fallback page does not escape the query")
	}
	if r := serve(t, h, "GET", "/graphiql/licenses.txt"); r.StatusCode != http.StatusNotFound {
		t.Errorf("asset without a bundle: %d, want 404", r.StatusCode)
	}
}

// TestEmbeddedBundle checks the bundle this binary holds, when it holds one
// (make graphiql): complete, with licenses.
func TestEmbeddedBundle(t *testing.T) {
	h, err := New(testOptions)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Built() {
		t.Skip("no bundle embedded (make graphiql builds it)")
	}
	for name, f := range h.files {
		if !f.hashed && name != "licenses.txt" {
			t.Errorf("%s has no content hash in its name: it would not be cached", name)
		}
	}
	lic := body(t, serve(t, h, "GET", "/graphiql/licenses.txt"))
	for _, want := range []string{"graphiql 5.", "react 19.", "react-dom 19.", "monaco-editor ", "graphql 16.", "MIT License"} {
		if !strings.Contains(lic, want) {
			t.Errorf("licenses.txt lacks %q", want)
		}
	}
}

func TestDefaultTab(t *testing.T) {
	q, headers := DefaultTab(testOptions)
	if headers != "" || !strings.Contains(q, "query Seed {") || !strings.Contains(q, `link(id: "mk_seed")`) ||
		!strings.Contains(q, "#   mk_other  Another <one> & more.") {
		t.Errorf("sandbox tab: %q, headers %q", q, headers)
	}
	q, headers = DefaultTab(Options{Endpoint: "/graphql", Prefix: "/graphiql/", JWT: true})
	if !strings.Contains(q, `link(id: "`+PlaceholderLinkID+`")`) || strings.Contains(q, "sandbox") {
		t.Errorf("MoneyKit tab: %q", q)
	}
	var h map[string]string
	if err := json.Unmarshal([]byte(headers), &h); err != nil || !strings.HasPrefix(h["Authorization"], "Bearer ") {
		t.Errorf("JWT headers = %q (%v), want an Authorization: Bearer header", headers, err)
	}
	for _, r := range h["Authorization"] {
		if r > 0x7e {
			t.Errorf("Authorization hint %q has a non-ASCII character: fetch would refuse it", h["Authorization"])
		}
	}
}

func TestLoopTabs(t *testing.T) {
	if tabs := LoopTabs(testOptions); tabs != nil {
		t.Errorf("without subscriptions: %d tabs, want none", len(tabs))
	}
	o := testOptions
	o.Subscriptions = "/graphql"
	tabs := LoopTabs(o)
	if len(tabs) != 2 ||
		!strings.Contains(tabs[0].Query, `subscription Watch {`) || !strings.Contains(tabs[0].Query, `linkEvents(linkId: "mk_seed")`) ||
		!strings.Contains(tabs[1].Query, `mutation Refresh {`) || !strings.Contains(tabs[1].Query, `refreshIdentity(linkId: "mk_seed")`) {
		t.Errorf("loop tabs = %+v", tabs)
	}
	o.JWT, o.SandboxLinks = true, nil
	tabs = LoopTabs(o)
	if len(tabs) != 2 || !strings.Contains(tabs[0].Query, PlaceholderLinkID) || !strings.Contains(tabs[0].Headers, "Bearer") {
		t.Errorf("MoneyKit, JWT loop tabs = %+v", tabs)
	}
}
