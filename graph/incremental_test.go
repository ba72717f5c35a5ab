package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/graph"
	"github.com/mkgraph/mkgraph/graph/limits"
	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

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
