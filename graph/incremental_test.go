package graph_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/graph"
	"github.com/mkgraph/mkgraph/graph/limits"
	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// issueQuery is issue 10's query.
const issueQuery = `{ link(id: "` + sandbox.LinkSeed + `") { id ... @defer { accounts { id } } } }`

const acceptDefer = "multipart/mixed;deferSpec=20220824,application/graphql-response+json,application/json;q=0.9" // Apollo Client 4's

// serve starts an HTTP server over h, closed at cleanup.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return hs.URL
}

// postAccept POSTs query to url with an Accept header and returns the open
// response.
func postAccept(t *testing.T, url, query, accept string) *http.Response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// readParts reads a multipart/mixed response with mime/multipart and
// returns each part's body, checking each part's Content-Type.
func readParts(t *testing.T, resp *http.Response) []string {
	t.Helper()
	mediaType, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/mixed" {
		t.Fatalf("Content-Type %q: not multipart/mixed (%v)", resp.Header.Get("Content-Type"), err)
	}
	if params["boundary"] != "-" || params["deferspec"] != "20220824" {
		t.Errorf("Content-Type params %v, want boundary - and deferSpec 20220824", params)
	}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	var parts []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("part %d: %v", len(parts), err)
		}
		if ct := p.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("part %d Content-Type %q", len(parts), ct)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) {
			t.Fatalf("part %d is not JSON: %q", len(parts), b)
		}
		parts = append(parts, string(b))
	}
	return parts
}

type sseEvent struct{ event, data string }

// readEvents reads a text/event-stream response.
func readEvents(t *testing.T, resp *http.Response) []sseEvent {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q, want text/event-stream", ct)
	}
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur != (sseEvent{}) {
				out = append(out, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			cur.event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			cur.data += strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// canonical re-encodes JSON with sorted keys.
func canonicalJSON(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

var deferDirective = regexp.MustCompile(`\.\.\. @defer(\([^)]*\))? \{`)

// withoutDefer is query with its @defer fragments made plain inline
// fragments, blanked out so that error locations do not move.
func withoutDefer(query string) string {
	return deferDirective.ReplaceAllStringFunc(query, func(s string) string {
		return "... " + strings.Repeat(" ", len(s)-len("... {")) + "{"
	})
}

func TestDeferMultipart(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	url := serve(t, ts.handler)
	resp := postAccept(t, url, issueQuery, acceptDefer)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Content-Type"); got != `multipart/mixed; boundary="-"; deferSpec=20220824` {
		t.Errorf("Content-Type %q", got)
	}
	want := []string{
		`{"data":{"link":{"id":"mk_eqkWN34UEoa2NxyALG8pcV","accounts":null}},"hasNext":true}`,
		`{"incremental":[{"data":{"accounts":[{"id":"acc_6Tef269B6ZArSVpYrxtjBV"}]},"path":["link"]}],"hasNext":false}`,
	}
	if diff := cmp.Diff(want, readParts(t, resp)); diff != "" {
		t.Errorf("parts (-want +got):\n%s", diff)
	}
	if n := ts.sbx.IdentityCallsFor(sandbox.LinkSeed); n != 1 {
		t.Errorf("%d upstream calls, want 1", n)
	}
}

func TestDeferSSE(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	url := serve(t, ts.handler)
	resp := postAccept(t, url, `{ link(id: "`+sandbox.LinkSeed+`") { id ... @defer(label: "acc") { accounts { id } } } }`, "text/event-stream")
	want := []sseEvent{
		{"next", `{"data":{"link":{"id":"mk_eqkWN34UEoa2NxyALG8pcV","accounts":null}},"hasNext":true}`},
		{"next", `{"incremental":[{"data":{"accounts":[{"id":"acc_6Tef269B6ZArSVpYrxtjBV"}]},"path":["link"],"label":"acc"}],"hasNext":false}`},
		{"complete", ""},
	}
	if diff := cmp.Diff(want, readEvents(t, resp), cmp.AllowUnexported(sseEvent{})); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// deferQueries are the operations whose merged answer must equal the
// answer without @defer.
var deferQueries = map[string]string{
	"issue":    issueQuery,
	"label":    `{ link(id: "` + sandbox.LinkHousehold + `") { id ... @defer(label: "slow") { accounts { id name } } institutionName } }`,
	"if false": `{ link(id: "` + sandbox.LinkHousehold + `") { id ... @defer(if: false) { accounts { id } } } }`,
	"in a list": `{ links(ids: ["` + sandbox.LinkSeed + `", "` + sandbox.LinkHousehold + `", "` + sandbox.LinkSeed + `"]) { id
		... @defer(label: "acc") { accounts { id mask } } } }`,
	"inside list items": `{ link(id: "` + sandbox.LinkHousehold + `") { accounts { id ... @defer { owners { names } } } } }`,
	"nested": `{ link(id: "` + sandbox.LinkHousehold + `") { id ... @defer(label: "outer") { state
		accounts(ids: ["acc_2GqW7xJz4Lm9PdRt8VbN3K"]) { id ... @defer(label: "inner") { owners { names emails { address } } } } } } }`,
	"aliases, two fragments": `{ a: link(id: "` + sandbox.LinkSeed + `") { id ... @defer(label: "x") { accounts { id } } }
		b: link(id: "` + sandbox.LinkInternational + `") { id ... @defer(label: "y") { accounts { balances { current currency } } } ... @defer(label: "z") { all: accounts { id } } } }`,
	"all fields": `{ link(id: "` + sandbox.LinkInternational + `") { id ... @defer { accounts { id type name nickname mask balances { currency available current limit balanceDate } originalId closed
		owners { names addresses { street city region postalCode country primary } phoneNumbers { number type primary } emails { address primary } } } } products { identity { refreshedAt } } } }`,
}

// TestDeferMergedJSON: a plain JSON request with @defer gets one answer,
// the deferred data merged at its place: the bytes of the answer without
// @defer.
func TestDeferMergedJSON(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	for name, q := range deferQueries {
		t.Run(name, func(t *testing.T) {
			_, plain := ts.post(t, withoutDefer(q), nil)
			if strings.Contains(string(plain), `"errors"`) {
				t.Fatalf("the query without @defer fails: %s", plain)
			}
			for _, accept := range []string{"", "application/json", "application/graphql-response+json"} {
				body, _ := json.Marshal(map[string]any{"query": q})
				req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", accept)
				rec := httptest.NewRecorder()
				ts.handler.ServeHTTP(rec, req)
				got := rec.Body.Bytes()
				if !bytes.Equal(got, plain) {
					t.Errorf("Accept %q: merged answer\n%s\nwant (without @defer)\n%s", accept, got, plain)
				}
				if canonicalJSON(t, got) != canonicalJSON(t, plain) {
					t.Errorf("Accept %q: canonical forms differ", accept)
				}
			}
		})
	}
}

// TestDeferStreamsMergeToPlain: the parts of every deferQueries operation,
// merged as Apollo Client does, give the answer without @defer.
func TestDeferStreamsMergeToPlain(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	url := serve(t, ts.handler)
	for name, q := range deferQueries {
		t.Run(name, func(t *testing.T) {
			_, plain := ts.post(t, withoutDefer(q), nil)
			got := applyParts(t, readParts(t, postAccept(t, url, q, acceptDefer)))
			if canonicalJSON(t, got) != canonicalJSON(t, plain) {
				t.Errorf("parts merged:\n%s\nwant:\n%s", got, plain)
			}
			var events []string
			for _, e := range readEvents(t, postAccept(t, url, q, "text/event-stream")) {
				if e.event == "next" {
					events = append(events, e.data)
				}
			}
			if got := applyParts(t, events); canonicalJSON(t, got) != canonicalJSON(t, plain) {
				t.Errorf("events merged:\n%s\nwant:\n%s", got, plain)
			}
		})
	}
}

// applyParts merges incremental payloads into the initial one as a client
// does (objects merged at the path), checking the last says hasNext false.
func applyParts(t *testing.T, parts []string) []byte {
	t.Helper()
	var initial struct {
		Data    map[string]any `json:"data"`
		Errors  []any          `json:"errors"`
		HasNext *bool          `json:"hasNext"`
	}
	if err := json.Unmarshal([]byte(parts[0]), &initial); err != nil {
		t.Fatal(err)
	}
	hasNext := initial.HasNext != nil && *initial.HasNext
	for _, p := range parts[1:] {
		if !hasNext {
			t.Fatalf("a part after hasNext false: %s", p)
		}
		var sub struct {
			Incremental []struct {
				Data   map[string]any `json:"data"`
				Path   []any          `json:"path"`
				Errors []any          `json:"errors"`
			} `json:"incremental"`
			HasNext bool `json:"hasNext"`
		}
		if err := json.Unmarshal([]byte(p), &sub); err != nil {
			t.Fatal(err)
		}
		for _, inc := range sub.Incremental {
			var at any = initial.Data
			for _, el := range inc.Path {
				switch el := el.(type) {
				case string:
					at = at.(map[string]any)[el]
				case float64:
					at = at.([]any)[int(el)]
				}
			}
			obj, ok := at.(map[string]any)
			if !ok {
				t.Fatalf("path %v of %s is not an object yet", inc.Path, p)
			}
			for k, v := range inc.Data {
				obj[k] = v
			}
			initial.Errors = append(initial.Errors, inc.Errors...)
		}
		hasNext = sub.HasNext
	}
	if hasNext {
		t.Errorf("the last part says hasNext true")
	}
	out := map[string]any{"data": initial.Data}
	if len(initial.Errors) > 0 {
		out["errors"] = initial.Errors
	}
	b, _ := json.Marshal(out)
	return b
}

// TestDeferErrors: errors in deferred fragments are at their paths with
// their codes: the account budget spent inside a deferred fragment nulls its
// link as it would without @defer, and an upstream error is where it is
// without @defer.
func TestDeferErrors(t *testing.T) {
	ts := newTestServer(t, testOptions{MaxAccounts: 2})
	url := serve(t, ts.handler)
	q := `{ ok: link(id: "` + sandbox.LinkSeed + `") { id ... @defer(label: "ok") { state } }
		big: link(id: "` + sandbox.LinkHousehold + `") { id ... @defer(label: "big") { accounts { id } } }
		limited: link(id: "` + sandbox.LinkRateLimited + `") { id ... @defer { accounts { id } } } }`

	_, plain := ts.post(t, withoutDefer(q), nil)
	_, merged := ts.post(t, q, nil)
	if sortedErrors(t, merged) != sortedErrors(t, plain) {
		t.Errorf("merged answer\n%s\nwant (without @defer, errors in any order)\n%s", merged, plain)
	}
	resp := mustDecode(t, merged)
	if string(resp.Data) != `{"ok":{"id":"mk_eqkWN34UEoa2NxyALG8pcV","state":"CONNECTED"},"big":null,"limited":null}` {
		t.Errorf("merged data %s", resp.Data)
	}
	codes := map[string]string{}
	for _, e := range resp.Errors {
		b, _ := json.Marshal(e.Path)
		codes[string(b)] = e.Extensions["code"].(string)
	}
	want := map[string]string{`["big","accounts"]`: apierr.CodeQueryTooComplex, `["limited"]`: "api_error.rate_limit_exceeded"}
	if diff := cmp.Diff(want, codes); diff != "" {
		t.Errorf("error codes by path (-want +got):\n%s", diff)
	}

	parts := readParts(t, postAccept(t, url, q, acceptDefer))
	initial := mustDecode(t, []byte(parts[0]))
	if len(initial.Errors) != 1 || initial.Errors[0].Extensions["code"] != "api_error.rate_limit_exceeded" {
		t.Errorf("initial part errors %+v", initial.Errors)
	}
	var big map[string]any
	for _, p := range parts[1:] {
		var sub struct {
			Incremental []map[string]any `json:"incremental"`
		}
		json.Unmarshal([]byte(p), &sub)
		for _, inc := range sub.Incremental {
			if inc["label"] == "big" {
				big = inc
			}
		}
	}
	if big == nil || big["data"] != nil {
		t.Fatalf("no failed payload for label big in %q", parts)
	}
	errs, _ := big["errors"].([]any)
	if len(errs) != 1 {
		t.Fatalf("big payload errors %v", big["errors"])
	}
	e := errs[0].(map[string]any)
	if e["extensions"].(map[string]any)["code"] != apierr.CodeQueryTooComplex || canonicalJSON(t, mustJSON(e["path"])) != `["big","accounts"]` {
		t.Errorf("big payload error %v", e)
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// sortedErrors is a response's canonical form with its errors sorted.
func sortedErrors(t *testing.T, body []byte) string {
	t.Helper()
	var v struct {
		Data   any               `json:"data"`
		Errors []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	var errs []string
	for _, e := range v.Errors {
		errs = append(errs, canonicalJSON(t, e))
	}
	slices.Sort(errs)
	b, _ := json.Marshal(v.Data)
	return canonicalJSON(t, b) + strings.Join(errs, "\n")
}

// TestDeferAuthorization: a link the caller may not read is refused at its
// path, whether or not its fields are deferred, and never loaded; a deferred
// fragment around a root field changes nothing.
func TestDeferAuthorization(t *testing.T) {
	forbidden := &apierr.Error{Code: apierr.CodeForbidden, Message: "You may not read this link."}
	ts := newTestServer(t, testOptions{Authorize: func(_ context.Context, id string) error {
		if id == sandbox.LinkSeed {
			return nil
		}
		return forbidden
	}})
	url := serve(t, ts.handler)
	q := `{ a: link(id: "` + sandbox.LinkSeed + `") { id ... @defer { accounts { id } } }
		b: link(id: "` + sandbox.LinkHousehold + `") { id ... @defer { accounts { id } } }
		... @defer { c: link(id: "` + sandbox.LinkSparse + `") { id } } }`
	parts := readParts(t, postAccept(t, url, q, acceptDefer))
	got := applyParts(t, parts)
	resp := mustDecode(t, got)
	if string(resp.Data) != `{"a":{"accounts":[{"id":"acc_6Tef269B6ZArSVpYrxtjBV"}],"id":"mk_eqkWN34UEoa2NxyALG8pcV"},"b":null,"c":null}` {
		t.Errorf("data %s (parts %q)", resp.Data, parts)
	}
	var paths []string
	for _, e := range resp.Errors {
		if e.Extensions["code"] != apierr.CodeForbidden {
			t.Errorf("unexpected error %+v", e)
		}
		paths = append(paths, string(mustJSON(e.Path)))
	}
	slices.Sort(paths)
	if diff := cmp.Diff([]string{`["b"]`, `["c"]`}, paths); diff != "" {
		t.Errorf("error paths (-want +got):\n%s", diff)
	}
	if ts.sbx.IdentityCallsFor(sandbox.LinkHousehold)+ts.sbx.IdentityCallsFor(sandbox.LinkSparse) != 0 {
		t.Errorf("a forbidden link reached the upstream")
	}
}

// TestDeferLimits: deferred selections count for the complexity limit and
// the operation limits as any other.
func TestDeferLimits(t *testing.T) {
	ts := newTestServer(t, testOptions{MaxComplexity: 35})
	url := serve(t, ts.handler)
	// link 10 + id 1 + accounts 10 x 1 = 21 without the deferred part;
	// + more: 10 x 2 = 41 with it.
	q := `{ link(id: "` + sandbox.LinkSeed + `") { id accounts { id } ... @defer { more: accounts { id mask } } } }`
	if resp := readParts(t, postAccept(t, url, `{ link(id: "`+sandbox.LinkSeed+`") { id ... @defer { accounts { id } } } }`, acceptDefer)); len(resp) != 2 {
		t.Errorf("a deferred operation under the limit: %q", resp)
	}
	calls := ts.sbx.IdentityCallsFor(sandbox.LinkSeed)
	resp := postAccept(t, url, q, acceptDefer)
	body, _ := io.ReadAll(resp.Body)
	// Refused before execution, in one JSON answer (its status is the
	// transport's business).
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/") || !strings.Contains(string(body), apierr.CodeQueryTooComplex) || strings.Contains(string(body), "hasNext") {
		t.Errorf("HTTP %d %s %s, want a JSON refusal %s", resp.StatusCode, resp.Header.Get("Content-Type"), body, apierr.CodeQueryTooComplex)
	}
	if n := ts.sbx.IdentityCallsFor(sandbox.LinkSeed); n != calls {
		t.Errorf("%d upstream calls for a refused operation", n-calls)
	}

	deep := `{ link(id: "x") { ... @defer { accounts { owners { emails { address } } } } } }` // depth 5 inside the fragment
	if e := (limits.Config{MaxDepth: 4}).Check(deep, ""); e == nil || e.Code != apierr.CodeQueryTooDeep {
		t.Errorf("depth inside a deferred fragment: %v, want %s", e, apierr.CodeQueryTooDeep)
	}
	aliased := `{ link(id: "x") { ... @defer { a: accounts { id } b: accounts { id } } } }`
	if e := (limits.Config{MaxAliases: 1}).Check(aliased, ""); e == nil || e.Code != apierr.CodeTooManyAliases {
		t.Errorf("aliases inside a deferred fragment: %v, want %s", e, apierr.CodeTooManyAliases)
	}
	if e := (limits.Config{MaxDirectives: 1}).Check(`{ link(id: "x") { ... @defer { id } ... @defer { state } } }`, ""); e == nil || e.Code != apierr.CodeTooManyDirectives {
		t.Errorf("two @defer under a limit of one directive: %v", e)
	}
}

// gatedServer is the graph handler with loaders whose large-answer gate the
// test can read, as the server wires them.
func gatedServer(t *testing.T, wrap func(http.Handler) http.Handler) (*loader.Factory, http.Handler) {
	t.Helper()
	return handlerWith(t, graph.HandlerConfig{}, wrap)
}

// handlerWith is gatedServer with a handler configuration.
func handlerWith(t *testing.T, cfg graph.HandlerConfig, wrap func(http.Handler) http.Handler) (*loader.Factory, http.Handler) {
	t.Helper()
	hs := httptest.NewServer(sandbox.New(sandbox.Options{}))
	t.Cleanup(hs.Close)
	up, err := upstream.New(upstream.Config{BaseURL: hs.URL, ClientID: sandbox.DefaultClientID, ClientSecret: sandbox.DefaultClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	f := loader.NewFactory(loader.Config{Fetcher: up, MaxAccountsInFlight: 2000})
	gql := graph.NewHandler(cfg)
	return f, wrap(f.Middleware(gql))
}

// partWriter records, at each write, what the test asks for.
type partWriter struct {
	http.ResponseWriter
	onWrite func([]byte)
}

func (w *partWriter) Write(b []byte) (int, error) {
	w.onWrite(b)
	return w.ResponseWriter.Write(b)
}
func (w *partWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestDeferReleasesLargeAfterLastPart: room taken for a large answer is
// held while deferred parts are still being built, and given back once the
// last part is built.
func TestDeferReleasesLargeAfterLastPart(t *testing.T) {
	var mu sync.Mutex
	var heldAtWrite []int64
	var factory *loader.Factory
	factory, h := gatedServer(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(&partWriter{ResponseWriter: w, onWrite: func([]byte) {
				a, _ := factory.Gate()
				mu.Lock()
				heldAtWrite = append(heldAtWrite, a)
				mu.Unlock()
			}}, r)
		})
	})
	url := serve(t, h)
	q := `{ big: link(id: "` + sandbox.LinkLarge + `") { accounts { id } } small: link(id: "` + sandbox.LinkSeed + `") { id ... @defer { accounts { id } } } }`
	parts := readParts(t, postAccept(t, url, q, acceptDefer))
	if len(parts) != 2 {
		t.Fatalf("%d parts, want 2", len(parts))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(heldAtWrite) < 2 || heldAtWrite[0] != 500 {
		t.Errorf("accounts held at each write %v: want 500 while the deferred part is pending", heldAtWrite)
	}
	if a, _ := factory.Gate(); a != 0 {
		t.Errorf("%d accounts still held after the request", a)
	}
	if last := heldAtWrite[len(heldAtWrite)-1]; last != 0 {
		t.Errorf("%d accounts held when the last part was written", last)
	}
}

// TestDeferMiddlewareOutlivesParts: the request's deadline and loaders are
// alive at every part's write: the handler returns only after the last.
func TestDeferMiddlewareOutlivesParts(t *testing.T) {
	var mu sync.Mutex
	var problems []string
	returned := false
	_, h := gatedServer(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second) // as edge.Timeout
			defer cancel()
			inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(&partWriter{ResponseWriter: w, onWrite: func(b []byte) {
					mu.Lock()
					defer mu.Unlock()
					// next holds the loaders' middleware: it has not
					// returned, so the loaders are alive.
					if ctx.Err() != nil || returned {
						problems = append(problems, "a part written after the middleware ended: "+string(b))
					}
				}}, r)
			})
			inner.ServeHTTP(w, r.WithContext(ctx))
			mu.Lock()
			returned = true
			mu.Unlock()
		})
	})
	url := serve(t, h)
	q := `{ links(ids: ["` + sandbox.LinkHousehold + `", "` + sandbox.LinkSeed + `"]) { id ... @defer { accounts { id } } } }`
	parts := readParts(t, postAccept(t, url, q, acceptDefer))
	if len(parts) < 2 {
		t.Fatalf("parts %q", parts)
	}
	if strings.Contains(strings.Join(parts, ""), `"errors"`) {
		t.Errorf("errors in parts %q", parts)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Error(problems)
	}
}

// TestDeferResponseExtensions: the response extensions (the identity
// cache's stale notice) are computed for each part; the merged answer and
// the last part carry the last computation, made once every fragment has
// loaded.
func TestDeferResponseExtensions(t *testing.T) {
	var calls atomic.Int64
	_, h := handlerWith(t, graph.HandlerConfig{ResponseExtensions: func(context.Context) map[string]any {
		return map[string]any{"identityCache": map[string]any{"stale": true, "part": calls.Add(1)}}
	}}, func(h http.Handler) http.Handler { return h })
	url := serve(t, h)
	q := `{ link(id: "` + sandbox.LinkSeed + `") { id ... @defer { accounts { id } } } }`

	calls.Store(0)
	resp := postAccept(t, url, q, "application/json")
	body, _ := io.ReadAll(resp.Body)
	if want := `,"extensions":{"identityCache":{"part":2,"stale":true}}}`; !strings.HasSuffix(string(body), want) {
		t.Errorf("merged answer %s, want it to end %s", body, want)
	}

	calls.Store(0)
	parts := readParts(t, postAccept(t, url, q, acceptDefer))
	if len(parts) != 2 || !strings.Contains(parts[0], `"extensions":{"identityCache":{"part":1,"stale":true}}`) ||
		!strings.HasSuffix(parts[1], `"hasNext":false,"extensions":{"identityCache":{"part":2,"stale":true}}}`) {
		t.Errorf("parts %q: want the extensions of each part, the last one's at the top of the last", parts)
	}
}
