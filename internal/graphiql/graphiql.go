// Package graphiql serves GraphiQL from the binary: the page, whose
// configuration (endpoint, default tab) comes from the server, and the
// bundle that `make graphiql` builds from the npm packages pinned in
// web/package-lock.json into dist/, embedded here. Nothing is loaded from
// another origin.
//
// A binary built without the bundle (plain `go build` where Node.js was not
// run) still serves a page: it says, in plain HTML, how to build it.
package graphiql

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// dist is the bundle. all: keeps dist/.keep, so the pattern matches in a
// checkout where the bundle was never built.
//
//go:embed all:dist
var dist embed.FS

// bundle is dist's content: the files web/build.mjs wrote, or only .keep.
var bundle = func() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path
	}
	return sub
}()

// Link is a link id the default tab lists.
type Link struct {
	ID    string
	About string
}

// Options configure the page.
type Options struct {
	// Endpoint is the GraphQL endpoint the page POSTs to, e.g. "/graphql".
	Endpoint string
	// Prefix is the path the assets are served under, with both slashes,
	// e.g. "/graphiql/".
	Prefix string
	// SandboxLinks are the embedded sandbox's link ids, the first of them
	// the example's; empty when the upstream is MoneyKit (the example then
	// has a placeholder id).
	SandboxLinks []Link
	// JWT says end users authenticate with Authorization: Bearer <JWT>; the
	// headers tab then holds that header, to fill in.
	JWT bool
	// Subscriptions is the path of the graphql-transport-ws endpoint on this
	// origin (e.g. "/graphql"); GraphiQL then runs subscriptions over it and
	// opens two more tabs, the refresh loop's: watch a link, refresh it.
	// Empty: no subscriptions.
	Subscriptions string
}

// manifest is dist/manifest.json, written by web/build.mjs.
type manifest struct {
	JS      string            `json:"js"`
	CSS     string            `json:"css"`
	Workers map[string]string `json:"workers"`
	Files   []string          `json:"files"`
}

// Handler serves the page and the assets.
type Handler struct {
	page   []byte
	built  bool
	prefix string
	files  map[string]*file
}

// New reads the embedded bundle and renders the page for o. A bundle whose
// manifest names a file it lacks is an error; no bundle at all is not (the
// page then says how to build it).
func New(o Options) (*Handler, error) { return newFrom(bundle, o) }

// newFrom is New over the bundle in fsys (tests give their own).
func newFrom(fsys fs.FS, o Options) (*Handler, error) {
	if !strings.HasPrefix(o.Prefix, "/") || !strings.HasSuffix(o.Prefix, "/") {
		return nil, fmt.Errorf("graphiql: prefix %q must start and end with /", o.Prefix)
	}
	h := &Handler{prefix: o.Prefix, files: map[string]*file{}}
	raw, err := fs.ReadFile(fsys, "manifest.json")
	if errors.Is(err, fs.ErrNotExist) {
		h.page = []byte(fallbackPage(o))
		return h, nil
	}
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("graphiql: dist/manifest.json: %w", err)
	}
	for _, name := range m.Files {
		// Flat names only: the map is all the asset handler serves, so
		// nothing outside dist (or in a subfolder) can be reached.
		if !fs.ValidPath(name) || strings.Contains(name, "/") || strings.HasPrefix(name, ".") {
			return nil, fmt.Errorf("graphiql: dist/manifest.json names %q", name)
		}
		if _, err := fs.Stat(fsys, name); err != nil {
			return nil, fmt.Errorf("graphiql: the bundle is incomplete (run make graphiql again): %w", err)
		}
		_, err := fs.Stat(fsys, name+".gz")
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		h.files[name] = &file{fsys: fsys, name: name, gz: err == nil, hashed: hashedName.MatchString(name)}
	}
	for _, name := range append([]string{m.JS, m.CSS}, m.Workers["editor"], m.Workers["json"], m.Workers["graphql"]) {
		if h.files[name] == nil {
			return nil, fmt.Errorf("graphiql: dist/manifest.json does not list %q among its files", name)
		}
	}
	workers := map[string]string{}
	for k, v := range m.Workers {
		workers[k] = o.Prefix + v
	}
	query, headers := DefaultTab(o)
	config, err := json.Marshal(map[string]any{
		"endpoint": o.Endpoint,
		"query":    query,
		"headers":  headers,
		"sandbox":  len(o.SandboxLinks) > 0,
		"jwt":      o.JWT,
		"workers":  workers,
		// The WebSocket URL is made by the page from its own location
		// (ws: or wss: as the page was served), never from a Host header.
		"subscriptions": o.Subscriptions,
		"tabs":          LoopTabs(o),
	})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, map[string]any{
		"JS":       o.Prefix + m.JS,
		"CSS":      o.Prefix + m.CSS,
		"Licenses": o.Prefix + "licenses.txt",
		"Config":   string(config),
	}); err != nil {
		return nil, err
	}
	h.page = b.Bytes()
	h.built = true
	return h, nil
}

// Built reports whether the binary holds the bundle.
func (h *Handler) Built() bool { return h.built }

// Page serves the GraphiQL page (or, without the bundle, how to build it).
// It is not cached: it carries the server's configuration.
func (h *Handler) Page() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(h.page)
	})
}

// Assets serves the bundle's files under the prefix: content-hashed names
// for a year (immutable), the rest (licenses.txt) revalidated each time;
// gzipped (as build.mjs compressed them) to clients that accept it.
// Only the files the manifest lists are served; anything else is a 404.
func (h *Handler) Assets() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, h.prefix)
		f := h.files[name]
		if !ok || f == nil {
			http.NotFound(w, r)
			return
		}
		f.serve(w, r)
	})
}

// hashedName matches the names esbuild gives with [name]-[hash].
var hashedName = regexp.MustCompile(`-[A-Z0-9]{8}\.[a-z0-9]+$`)

// contentTypes are the types of what the bundle holds; others are
// application/octet-stream (and nosniff, set by the edge, keeps them so).
var contentTypes = map[string]string{
	".js":    "text/javascript; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".txt":   "text/plain; charset=utf-8",
	".ttf":   "font/ttf",
	".woff":  "font/woff",
	".woff2": "font/woff2",
	".svg":   "image/svg+xml",
	".png":   "image/png",
}

// file is one asset, with its gzip form when build.mjs wrote one (name.gz).
// It is read from the bundle for each request, never copied into the heap:
// the embedded files are in the binary already, and copies of them (10 MB)
// were most of the facade's live heap. Its ETag is computed on first use, so
// that a server start (every test starts several) does not pay for it.
type file struct {
	fsys   fs.FS
	name   string
	gz     bool // name.gz exists
	hashed bool

	once sync.Once
	etag string
}

func (f *file) prepare() {
	sum := sha256.New()
	if r, err := f.fsys.Open(f.name); err == nil {
		io.Copy(sum, r)
		r.Close()
	}
	f.etag = `"` + base64.RawURLEncoding.EncodeToString(sum.Sum(nil)[:12]) + `"`
}

// content opens name for http.ServeContent: embed.FS's files seek; a file
// system whose files do not is read into memory.
func (f *file) content(name string) (io.ReadSeeker, func(), error) {
	r, err := f.fsys.Open(name)
	if err != nil {
		return nil, nil, err
	}
	if rs, ok := r.(io.ReadSeeker); ok {
		return rs, func() { r.Close() }, nil
	}
	r.Close()
	data, err := fs.ReadFile(f.fsys, name)
	return bytes.NewReader(data), func() {}, err
}

func (f *file) serve(w http.ResponseWriter, r *http.Request) {
	f.once.Do(f.prepare)
	h := w.Header()
	h.Set("Content-Type", cmpOr(contentTypes[path.Ext(f.name)], "application/octet-stream"))
	if f.hashed {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	h.Set("ETag", f.etag)
	if f.gz {
		h.Set("Vary", "Accept-Encoding")
	}
	if !f.gz || !acceptsGzip(r.Header.Values("Accept-Encoding")) {
		content, done, err := f.content(f.name)
		if err != nil {
			http.Error(w, "Not Found", http.StatusNotFound)
			return
		}
		defer done()
		http.ServeContent(w, r, f.name, time.Time{}, content)
		return
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, f.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	gz, done, err := f.content(f.name + ".gz")
	if err != nil {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	defer done()
	size, err := gz.Seek(0, io.SeekEnd)
	if err == nil {
		_, err = gz.Seek(0, io.SeekStart)
	}
	if err != nil {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	h.Set("Content-Encoding", "gzip")
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	if r.Method == http.MethodHead {
		return
	}
	io.Copy(w, gz)
}

// acceptsGzip reports whether an Accept-Encoding allows gzip (not q=0).
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
				continue
			}
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// pageTemplate is the page: no inline script or style (the CSP allows none
// but GraphiQL's runtime <style> elements); its configuration is JSON in
// data-config, escaped by html/template.
var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mkgraph · GraphiQL</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{{.CSS}}">
<script defer src="{{.JS}}"></script>
<link rel="license" href="{{.Licenses}}">
</head>
<body>
<div id="graphiql" data-config="{{.Config}}">Loading GraphiQL…</div>
<noscript>GraphiQL needs JavaScript. Without it, POST application/json to /graphql.</noscript>
</body>
</html>
`))

// fallbackPage is served by a binary built without the bundle.
func fallbackPage(o Options) string {
	query, _ := DefaultTab(o)
	return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mkgraph · GraphiQL is not built</title>
</head>
<body>
<h1>GraphiQL is not in this binary</h1>
<p>This binary was built without GraphiQL's bundle. To serve GraphiQL here:</p>
<ol>
<li>run <code>make graphiql</code> in the repository (it needs Node.js and npm: it installs the
packages pinned in <code>internal/graphiql/web/package-lock.json</code> with <code>npm ci</code> and
bundles them into <code>internal/graphiql/dist</code>);</li>
<li>then rebuild the binary (<code>make run</code>, or <code>go build</code>).</li>
</ol>
<p>The GraphQL endpoint works without it: POST <code>application/json</code> to
<code>` + template.HTMLEscapeString(o.Endpoint) + `</code>, for example this query:</p>
<pre>` + template.HTMLEscapeString(query) + `</pre>
</body>
</html>
`
}
