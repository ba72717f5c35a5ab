package graph_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/graph"
	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/obs/reqlog"
	"github.com/mkgraph/mkgraph/internal/testing/logtest"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// testOptions configures newTestServer. The zero value is the production
// shape: default concurrency and batch window, no latency.
type testOptions struct {
	Latency     time.Duration // sandbox latency per identity call
	Concurrency int           // loader.Config.Concurrency; 0: default
	MaxLinkIDs  int           // graph.HandlerConfig.MaxLinkIDs; 0: default
	Timeout     time.Duration // upstream per-attempt timeout; 0: default
	// BaseURL, when set, points the upstream client there instead of at the sandbox.
	BaseURL string
	// WrapFetcher, when set, wraps the upstream client given to the loaders.
	WrapFetcher func(loader.Fetcher) loader.Fetcher
	// Per-request limits; 0: the defaults.
	MaxLinks, MaxAccounts, MaxComplexity int
	// Authorize, when set, is graph.HandlerConfig.Authorize.
	Authorize func(ctx context.Context, linkID string) error
	// Trusted documents.
	APQCacheSize int
	Persisted    *graph.PersistedQueries
}

// testServer is the facade's GraphQL handler chain over a sandbox upstream.
type testServer struct {
	sbx     *sandbox.Server
	url     string // the sandbox's base URL
	handler http.Handler
	logs    *syncBuffer

	mu        sync.Mutex
	summaries []reqlog.Summary // one per request, in order
}

// newTestServer builds sandbox → httptest server → upstream client → loader
// factory → graph handler, with a zerolog logger and a reqlog.Record in every
// request's context, as server.go wires them.
func newTestServer(tb testing.TB, opts testOptions) *testServer {
	tb.Helper()
	sbx := sandbox.New(sandbox.Options{Latency: opts.Latency})
	hs := httptest.NewServer(sbx)
	tb.Cleanup(hs.Close)

	base := hs.URL
	if opts.BaseURL != "" {
		base = opts.BaseURL
	}
	up, err := upstream.New(upstream.Config{
		BaseURL:      base,
		ClientID:     sandbox.DefaultClientID,
		ClientSecret: sandbox.DefaultClientSecret,
		Timeout:      opts.Timeout,
	})
	if err != nil {
		tb.Fatalf("upstream.New: %v", err)
	}
	var fetcher loader.Fetcher = up
	if opts.WrapFetcher != nil {
		fetcher = opts.WrapFetcher(up)
	}
	factory := loader.NewFactory(loader.Config{Fetcher: fetcher, Concurrency: opts.Concurrency,
		MaxLinks: opts.MaxLinks, MaxAccounts: opts.MaxAccounts})
	gql := graph.NewHandler(graph.HandlerConfig{Introspection: true, Suggestions: true, MaxLinkIDs: opts.MaxLinkIDs,
		MaxComplexity: opts.MaxComplexity, Authorize: opts.Authorize, APQCacheSize: opts.APQCacheSize, Persisted: opts.Persisted})

	ts := &testServer{sbx: sbx, url: hs.URL, logs: &syncBuffer{}}
	logger := zerolog.New(ts.logs)
	withLogger := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(logger.WithContext(r.Context())))
		})
	}
	withRecord := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, rec := reqlog.NewContext(r.Context())
			next.ServeHTTP(w, r.WithContext(ctx))
			ts.mu.Lock()
			ts.summaries = append(ts.summaries, rec.Summary())
			ts.mu.Unlock()
		})
	}
	ts.handler = withLogger(withRecord(factory.Middleware(gql)))
	return ts
}

// lastSummary returns the reqlog summary of the latest request.
func (s *testServer) lastSummary() reqlog.Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.summaries) == 0 {
		return reqlog.Summary{}
	}
	return s.summaries[len(s.summaries)-1]
}

// post sends one GraphQL request, a new HTTP request each time so that it
// gets fresh loaders, and returns the HTTP status and body.
func (s *testServer) post(tb testing.TB, query string, vars map[string]any) (int, []byte) {
	tb.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		tb.Fatalf("marshal request: %v", err)
	}
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// gqlResponse is a GraphQL response with the data left raw.
type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// MustQuery posts query and decodes the response; the raw body is kept for
// checks on what must never appear in it.
func (s *testServer) MustQuery(tb testing.TB, query string, vars map[string]any) (gqlResponse, []byte) {
	tb.Helper()
	_, body := s.post(tb, query, vars)
	var resp gqlResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		tb.Fatalf("decode response %s: %v", body, err)
	}
	return resp, body
}

// MustData decodes resp.Data into v and fails on any error in resp.
func MustData(tb testing.TB, resp gqlResponse, v any) {
	tb.Helper()
	if len(resp.Errors) > 0 {
		tb.Fatalf("unexpected errors: %+v", resp.Errors)
	}
	if err := json.Unmarshal(resp.Data, v); err != nil {
		tb.Fatalf("decode data %s: %v", resp.Data, err)
	}
}

// allFieldsQuery selects every field of the schema.
const allFieldsQuery = `query AllFields($id: ID!) {
  link(id: $id) { ...LinkFields }
}

fragment LinkFields on Link {
  id
  institutionId
  institutionName
  institutionAvatar
  state
  errorCode
  provider
  tags
  webhook
  products {
    accounts { ...Status }
    accountNumbers { ...Status }
    identity { ...Status }
    transactions { ...Status }
    investments { ...Status }
    enrichment { ...Status }
  }
  availableProducts
  accounts {
    id
    type
    name
    nickname
    mask
    balances { currency available current limit balanceDate }
    originalId
    closed
    owners {
      names
      addresses { street city region postalCode country primary }
      phoneNumbers { number type primary }
      emails { address primary }
    }
  }
}

fragment Status on ProductStatus {
  refreshedAt
  lastAttemptedAt
  errorCode
  errorMessage
  unavailable
  lastEnriched
}
`

// canonical re-indents a response with its data in response order and its
// errors sorted by path, so that golden files do not depend on the order in
// which concurrent resolvers failed.
func canonical(tb testing.TB, body []byte) []byte {
	tb.Helper()
	var resp struct {
		Data       json.RawMessage   `json:"data"`
		Errors     []json.RawMessage `json:"errors,omitempty"`
		Extensions json.RawMessage   `json:"extensions,omitempty"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		tb.Fatalf("decode response %s: %v", body, err)
	}
	key := func(raw json.RawMessage) string {
		var e struct {
			Path    []any  `json:"path"`
			Message string `json:"message"`
		}
		json.Unmarshal(raw, &e)
		var b strings.Builder
		for _, p := range e.Path {
			if f, ok := p.(float64); ok {
				fmt.Fprintf(&b, "/%08d", int(f))
			} else {
				fmt.Fprintf(&b, "/%v", p)
			}
		}
		return b.String() + "\x00" + e.Message
	}
	slices.SortStableFunc(resp.Errors, func(a, b json.RawMessage) int { return strings.Compare(key(a), key(b)) })
	out, err := json.MarshalIndent(resp, "", "  ")
	if err != nil {
		tb.Fatalf("indent: %v", err)
	}
	return append(out, '\n')
}

// MustMatchGolden compares got with testdata/name.golden, or rewrites the
// file under -update.
func MustMatchGolden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		tb.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

func TestGoldenFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, id string }{
		{"link_seed", sandbox.LinkSeed},
		{"link_household", sandbox.LinkHousehold},
		{"link_sparse", sandbox.LinkSparse},
		{"link_international", sandbox.LinkInternational},
		{"link_novel", sandbox.LinkNovel},
	}
	ts := newTestServer(t, testOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := ts.post(t, allFieldsQuery, map[string]any{"id": tt.id})
			if status != http.StatusOK {
				t.Errorf("HTTP status = %d, want 200", status)
			}
			var resp gqlResponse
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Fatal(err)
			}
			if len(resp.Errors) != 0 {
				t.Errorf("errors = %+v, want none", resp.Errors)
			}
			MustMatchGolden(t, tt.name, canonical(t, body))
		})
	}
}

// errorIDs are the sandbox's magic error ids plus an unknown one.
var errorIDs = []string{
	sandbox.LinkUnauthorized,
	sandbox.LinkForbidden,
	sandbox.LinkDeleted,
	sandbox.LinkBadState,
	sandbox.LinkRateLimited,
	sandbox.LinkServerError,
	sandbox.LinkUnavailable,
	"mk_sandbox_no_such_link",
}

func TestGoldenErrors(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, testOptions{})
	ids := append(slices.Clone(errorIDs), sandbox.LinkSeed, "..", sandbox.LinkDeleted)
	status, body := ts.post(t, `query Errors($ids: [ID!]!) { links(ids: $ids) { id state } }`, map[string]any{"ids": ids})
	if status != http.StatusOK {
		t.Errorf("HTTP status = %d, want 200", status)
	}
	MustMatchGolden(t, "links_errors", canonical(t, body))

	var resp gqlResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	var data struct{ Links []*struct{ ID string } }
	if err := json.Unmarshal(resp.Data, &data); err != nil {
		t.Fatal(err)
	}
	if len(data.Links) != len(ids) {
		t.Fatalf("links has %d entries, want %d (one per id)", len(data.Links), len(ids))
	}
	// Every id but LinkSeed fails, each with its own error at its index.
	var gotPaths, wantPaths []string
	for i, id := range ids {
		if id == sandbox.LinkSeed {
			if data.Links[i] == nil || data.Links[i].ID != id {
				t.Errorf("links[%d] = %v, want %s", i, data.Links[i], id)
			}
			continue
		}
		if data.Links[i] != nil {
			t.Errorf("links[%d] (%s) = %+v, want null", i, id, data.Links[i])
		}
		wantPaths = append(wantPaths, fmt.Sprint([]any{"links", float64(i)}))
	}
	for _, e := range resp.Errors {
		gotPaths = append(gotPaths, fmt.Sprint(e.Path))
	}
	slices.Sort(gotPaths)
	slices.Sort(wantPaths)
	if diff := cmp.Diff(wantPaths, gotPaths); diff != "" {
		t.Errorf("error paths mismatch (-want +got):\n%s", diff)
	}
	if got := ts.sbx.IdentityCallsFor(sandbox.LinkDeleted); got != 1 {
		t.Errorf("calls for repeated %s = %d, want 1", sandbox.LinkDeleted, got)
	}
	if got := ts.sbx.IdentityCallsFor(".."); got != 0 {
		t.Errorf("calls for invalid id = %d, want 0", got)
	}
}

// aliasQuery selects link(id:) n times under aliases l0, l1, ….
func aliasQuery(ids []string, selection string) string {
	var b strings.Builder
	b.WriteString("{\n")
	for i, id := range ids {
		fmt.Fprintf(&b, "  l%d: link(id: %q) %s\n", i, id, selection)
	}
	b.WriteString("}")
	return b.String()
}

func TestUpstreamCallCounts(t *testing.T) {
	t.Parallel()
	household := []string{"acc_2GqW7xJz4Lm9PdRt8VbN3K", "acc_7YhK2mQ9sXc4VnB8LpT6Wd", "acc_4RzN8kF3pJw6TqD2HcX9Ys"}
	tests := []struct {
		name  string
		query string
		vars  map[string]any
		want  map[string]int // calls per link id
	}{
		{
			name:  "10 aliases of one link",
			query: aliasQuery(slices.Repeat([]string{sandbox.LinkSeed}, 10), "{ id state accounts { id } }"),
			want:  map[string]int{sandbox.LinkSeed: 1},
		},
		{
			name:  "links with 10 ids, 3 distinct",
			query: `query($ids: [ID!]!) { links(ids: $ids) { id } }`,
			vars: map[string]any{"ids": []string{
				sandbox.LinkSeed, sandbox.LinkHousehold, sandbox.LinkSeed, sandbox.LinkSparse, sandbox.LinkSparse,
				sandbox.LinkSeed, sandbox.LinkHousehold, sandbox.LinkSeed, sandbox.LinkSparse, sandbox.LinkSeed,
			}},
			want: map[string]int{sandbox.LinkSeed: 1, sandbox.LinkHousehold: 1, sandbox.LinkSparse: 1},
		},
		{
			name: "fragments, alias and links mixing one id",
			query: `query($id: ID!) {
  link(id: $id) { ...F }
  again: link(id: $id) { id ... on Link { state } }
  inline: link(id: "` + sandbox.LinkHousehold + `") { ...F }
  links(ids: [$id, "` + sandbox.LinkHousehold + `", $id]) { ...F accounts { id } }
  more: links(ids: [$id]) { provider }
}
fragment F on Link { id institutionName products { identity { refreshedAt } } }`,
			vars: map[string]any{"id": sandbox.LinkHousehold},
			want: map[string]int{sandbox.LinkHousehold: 1},
		},
		{
			name: "accounts(ids:) selections on one link",
			query: `{
  link(id: "` + sandbox.LinkHousehold + `") {
    all: accounts { id }
    two: accounts(ids: ["` + household[1] + `", "` + household[0] + `"]) { id }
    one: accounts(ids: ["` + household[2] + `"]) { name }
    none: accounts(ids: ["zzz"]) { id }
  }
  other: link(id: "` + sandbox.LinkHousehold + `") { accounts(ids: ["` + household[0] + `"]) { id } }
}`,
			want: map[string]int{sandbox.LinkHousehold: 1},
		},
		{
			name:  "failing link selected twice",
			query: aliasQuery([]string{sandbox.LinkDeleted, sandbox.LinkDeleted, sandbox.LinkSeed}, "{ id }"),
			want:  map[string]int{sandbox.LinkDeleted: 1, sandbox.LinkSeed: 1},
		},
		{
			name:  "100 ids of one link (the maximum)",
			query: `query($ids: [ID!]!) { links(ids: $ids) { id } }`,
			vars:  map[string]any{"ids": slices.Repeat([]string{sandbox.LinkSeed}, 100)},
			want:  map[string]int{sandbox.LinkSeed: 1},
		},
		{
			name:  "empty links",
			query: `{ links(ids: []) { id } }`,
			want:  map[string]int{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, testOptions{})
			resp, body := ts.MustQuery(t, tt.query, tt.vars)
			if resp.Data == nil || string(resp.Data) == "null" {
				t.Fatalf("no data: %s", body)
			}
			total := 0
			for id, want := range tt.want {
				if got := ts.sbx.IdentityCallsFor(id); got != want {
					t.Errorf("upstream calls for %s = %d, want %d", id, got, want)
				}
				total += want
			}
			if got := ts.sbx.IdentityCalls(); got != total {
				t.Errorf("upstream calls = %d, want %d", got, total)
			}
			for id := range tt.want {
				if q := ts.sbx.LastIdentityQuery(id); q == nil {
					t.Errorf("no upstream call recorded for %s", id)
				} else if _, ok := q["account_ids"]; ok || len(q) != 0 {
					t.Errorf("upstream call for %s had query %v, want no account_ids (no query at all)", id, q)
				}
			}
		})
	}
}

func TestAccountsFilter(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, testOptions{})
	a0, a1, a2 := "acc_2GqW7xJz4Lm9PdRt8VbN3K", "acc_7YhK2mQ9sXc4VnB8LpT6Wd", "acc_4RzN8kF3pJw6TqD2HcX9Ys"

	// Through gqlgen's own test client, wrapping the same handler chain.
	c := client.New(ts.handler)
	var resp struct {
		Link struct {
			All, Some, Dup, None, Empty []struct{ ID string }
		}
	}
	c.MustPost(`query($some: [ID!], $dup: [ID!]) {
  link(id: "`+sandbox.LinkHousehold+`") {
    all: accounts { id }
    some: accounts(ids: $some) { id }
    dup: accounts(ids: $dup) { id }
    none: accounts(ids: ["zzz"]) { id }
    empty: accounts(ids: []) { id }
  }
}`, &resp, client.Var("some", []string{a2, "zzz", a0}), client.Var("dup", []string{a1, a0, "zzz", a0}))

	ids := func(as []struct{ ID string }) []string {
		out := []string{}
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	for _, tt := range []struct {
		name string
		got  []struct{ ID string }
		want []string
	}{
		{"all", resp.Link.All, []string{a0, a1, a2}},
		{"some", resp.Link.Some, []string{a2, a0}},
		{"dup", resp.Link.Dup, []string{a1, a0}},
		{"none", resp.Link.None, []string{}},
		{"empty", resp.Link.Empty, []string{}},
	} {
		if diff := cmp.Diff(tt.want, ids(tt.got)); diff != "" {
			t.Errorf("accounts %s mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
	if got := ts.sbx.IdentityCallsFor(sandbox.LinkHousehold); got != 1 {
		t.Errorf("upstream calls = %d, want 1", got)
	}
	if q := ts.sbx.LastIdentityQuery(sandbox.LinkHousehold); q.Has("account_ids") {
		t.Errorf("upstream query = %v, want no account_ids", q)
	}
}

func TestRequestsDoNotShareLoaders(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, testOptions{})
	for range 3 {
		ts.MustQuery(t, `{ link(id: "`+sandbox.LinkSeed+`") { id } }`, nil)
	}
	if got := ts.sbx.IdentityCallsFor(sandbox.LinkSeed); got != 3 {
		t.Errorf("upstream calls over 3 requests = %d, want 3 (one per request)", got)
	}
}

// TestDistinctLinksConcurrently checks that 10 distinct links at 50 ms
// upstream latency are fetched concurrently: sequential fetches take 500 ms.
// The contract figure (under 150 ms) is measured by
// BenchmarkTenDistinctLinks50ms; this bound only tells concurrent from
// sequential, with room for a loaded CI machine. Best of 3 runs.
func TestDistinctLinksConcurrently(t *testing.T) {
	const latency, limit = 50 * time.Millisecond, 400 * time.Millisecond
	ids := []string{
		sandbox.LinkSeed, sandbox.LinkHousehold, sandbox.LinkSparse, sandbox.LinkInternational, sandbox.LinkNovel,
		"mk_sandbox_missing_1", "mk_sandbox_missing_2", "mk_sandbox_missing_3", "mk_sandbox_missing_4", "mk_sandbox_missing_5",
	}
	queries := []struct {
		name, query string
		vars        map[string]any
	}{
		{"aliases", aliasQuery(ids, "{ id state accounts { id } }"), nil},
		{"links", `query($ids: [ID!]!) { links(ids: $ids) { id state accounts { id } } }`, map[string]any{"ids": ids}},
	}
	for _, q := range queries {
		t.Run(q.name, func(t *testing.T) {
			ts := newTestServer(t, testOptions{})
			// Warm up: the token and the sandbox's fixtures are one-time costs.
			ts.MustQuery(t, `{ link(id: "`+sandbox.LinkSeed+`") { id } }`, nil)
			ts.sbx.SetLatency(latency)

			best := time.Duration(1<<63 - 1)
			for run := range 3 {
				ts.sbx.Reset()
				start := time.Now()
				resp, _ := ts.MustQuery(t, q.query, q.vars)
				elapsed := time.Since(start)
				best = min(best, elapsed)
				t.Logf("run %d: %d links at %v latency: %v", run, len(ids), latency, elapsed)

				if got := len(resp.Errors); got != 5 {
					t.Errorf("errors = %d, want 5 (the unknown ids)", got)
				}
				for _, id := range ids {
					if got := ts.sbx.IdentityCallsFor(id); got != 1 {
						t.Errorf("upstream calls for %s = %d, want 1", id, got)
					}
				}
				if best < limit {
					break
				}
			}
			if best >= limit {
				t.Errorf("%d distinct links at %v latency took %v at best, want < %v", len(ids), latency, best, limit)
			}
		})
	}
}

// ext builds the expected extensions of an error, with JSON's number type.
func ext(code string, status int, kv ...any) map[string]any {
	m := map[string]any{"code": code}
	if status != 0 {
		m["status"] = float64(status)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

const (
	docsLinkErrors = "https://docs.moneykit.com/api/reference/link-errors"
	docsRateLimits = "https://docs.moneykit.com/api/reference/rate-limits"
	msgUnavailable = "The MoneyKit API is unavailable; try again later."
)

func TestUpstreamErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id      string
		message string
		ext     map[string]any
	}{
		{sandbox.LinkUnauthorized, "Unauthorized link access.", ext("link_error.unauthorized_access", 401, "documentationUrl", docsLinkErrors)},
		{sandbox.LinkForbidden, "Accounts access not permitted", ext("link_error.forbidden_action", 403, "documentationUrl", docsLinkErrors)},
		{sandbox.LinkDeleted, "This link was deleted at some earlier time.", ext("link_error.deleted", 410, "documentationUrl", docsLinkErrors)},
		{sandbox.LinkBadState, "The link is in a bad state; the user must reconnect it.", ext("link_error.bad_state", 422, "documentationUrl", docsLinkErrors, "linkErrorCode", "auth_expired")},
		{sandbox.LinkRateLimited, "Rate limit exceeded. Use the value of the Retry-After header as guidance for when to retry the request.", ext("api_error.rate_limit_exceeded", 429, "documentationUrl", docsRateLimits, "retryAfter", float64(30))},
		{sandbox.LinkServerError, msgUnavailable, ext(apierr.CodeUpstreamUnavailable, 500)},
		{sandbox.LinkUnavailable, msgUnavailable, ext(apierr.CodeUpstreamUnavailable, 503)},
		{"mk_sandbox_no_such_link", "Link not found.", ext("link_error.not_found", 404, "documentationUrl", docsLinkErrors)},
	}
	ts := newTestServer(t, testOptions{})
	for _, tt := range tests {
		for _, alias := range []string{"", "mine"} {
			t.Run(tt.id+"/"+cmpOr(alias, "link"), func(t *testing.T) {
				field := "link"
				if alias != "" {
					field = alias + ": link"
				}
				resp, body := ts.MustQuery(t, `query($id: ID!) { `+field+`(id: $id) { id accounts { id } } }`, map[string]any{"id": tt.id})
				wantData := `{"` + cmpOr(alias, "link") + `":null}`
				if string(resp.Data) != wantData {
					t.Errorf("data = %s, want %s", resp.Data, wantData)
				}
				if len(resp.Errors) != 1 {
					t.Fatalf("errors = %s, want exactly one", body)
				}
				e := resp.Errors[0]
				if e.Message != tt.message {
					t.Errorf("message = %q, want %q", e.Message, tt.message)
				}
				if diff := cmp.Diff([]any{cmpOr(alias, "link")}, e.Path); diff != "" {
					t.Errorf("path mismatch (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.ext, e.Extensions); diff != "" {
					t.Errorf("extensions mismatch (-want +got):\n%s", diff)
				}
				if got := ts.lastSummary().Codes; !slices.Contains(got, tt.ext["code"].(string)) {
					t.Errorf("request log codes = %q, want %s", got, tt.ext["code"])
				}
			})
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestPartialResults(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, testOptions{})
	resp, body := ts.MustQuery(t, `query Partial {
  good: link(id: "`+sandbox.LinkSeed+`") { id accounts { name } }
  bad: link(id: "`+sandbox.LinkDeleted+`") { id }
  list: links(ids: ["`+sandbox.LinkForbidden+`", "`+sandbox.LinkSeed+`"]) { id }
}`, nil)
	var data struct {
		Good *struct {
			ID       string
			Accounts []struct{ Name string }
		}
		Bad  *struct{ ID string }
		List []*struct{ ID string }
	}
	if err := json.Unmarshal(resp.Data, &data); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if data.Good == nil || data.Good.ID != sandbox.LinkSeed || len(data.Good.Accounts) != 1 || data.Good.Accounts[0].Name != "Premier Checking" {
		t.Errorf("good = %+v, want the seed link with its account", data.Good)
	}
	if data.Bad != nil {
		t.Errorf("bad = %+v, want null", data.Bad)
	}
	if len(data.List) != 2 || data.List[0] != nil || data.List[1] == nil || data.List[1].ID != sandbox.LinkSeed {
		t.Errorf("list = %s, want [null, seed]", body)
	}
	var got []string
	for _, e := range resp.Errors {
		got = append(got, fmt.Sprintf("%v %v", e.Path, e.Extensions["code"]))
	}
	slices.Sort(got)
	want := []string{"[bad] link_error.deleted", "[list 0] link_error.forbidden_action"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}
	if s := ts.lastSummary(); s.Operation != "Partial" {
		t.Errorf("request log operation = %q, want Partial", s.Operation)
	}
}

func TestHostileLinkIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		id    string
		code  string
		calls int // upstream calls for id
	}{
		{"129 bytes", strings.Repeat("a", 129), apierr.CodeInvalidArgument, 0},
		{"129 bytes of runes", strings.Repeat("€", 43), apierr.CodeInvalidArgument, 0},
		{"newline", "mk_a\nb", apierr.CodeInvalidArgument, 0},
		{"tab", "mk_a\tb", apierr.CodeInvalidArgument, 0},
		{"dot dot", "..", apierr.CodeInvalidArgument, 0},
		{"dot", ".", apierr.CodeInvalidArgument, 0},
		{"empty", "", apierr.CodeInvalidArgument, 0},
		{"128 bytes", strings.Repeat("a", 128), "link_error.not_found", 1},
		{"slash", "a/b", "link_error.not_found", 1},
		{"traversal", "../" + sandbox.LinkSeed, "link_error.not_found", 1},
		{"query smuggling", sandbox.LinkSeed + "?account_ids=x", "link_error.not_found", 1},
		{"fragment", sandbox.LinkSeed + "#x", "link_error.not_found", 1},
		{"percent", "%2e%2e", "link_error.not_found", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, testOptions{})
			for _, q := range []string{
				`query($id: ID!) { link(id: $id) { id } }`,
				`query($id: ID!) { links(ids: [$id]) { id } }`,
			} {
				ts.sbx.Reset()
				resp, body := ts.MustQuery(t, q, map[string]any{"id": tt.id})
				if len(resp.Errors) != 1 {
					t.Fatalf("%s: errors = %s, want one", q, body)
				}
				if got := resp.Errors[0].Extensions["code"]; got != tt.code {
					t.Errorf("%s: code = %v, want %s", q, got, tt.code)
				}
				if got := ts.sbx.IdentityCallsFor(tt.id); got != tt.calls {
					t.Errorf("%s: upstream calls for the id = %d, want %d", q, got, tt.calls)
				}
				if got := ts.sbx.IdentityCalls(); got != tt.calls {
					t.Errorf("%s: upstream calls = %d, want %d", q, got, tt.calls)
				}
				if tt.calls > 0 && ts.sbx.LastIdentityQuery(tt.id).Has("account_ids") {
					t.Errorf("%s: the id reached the upstream's query string", q)
				}
				// The message must not echo the hostile id back at length.
				if len(tt.id) > 100 && strings.Contains(resp.Errors[0].Message, tt.id) {
					t.Errorf("%s: message echoes the id: %q", q, resp.Errors[0].Message)
				}
			}
		})
	}
}

func TestLinksTooMany(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		max  int
		n    int
	}{
		{"default max 100", 0, 101},
		{"configured max 3", 3, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, testOptions{MaxLinkIDs: tt.max})
			ids := make([]string, tt.n)
			for i := range ids {
				ids[i] = fmt.Sprintf("mk_sandbox_%d", i)
			}
			resp, body := ts.MustQuery(t, `query($ids: [ID!]!) { links(ids: $ids) { id } }`, map[string]any{"ids": ids})
			if len(resp.Errors) != 1 {
				t.Fatalf("errors = %s, want one", body)
			}
			// Refused before execution: no path.
			e := resp.Errors[0]
			if diff := cmp.Diff(ext(apierr.CodeTooManyLinkIDs, 0), e.Extensions); diff != "" {
				t.Errorf("extensions mismatch (-want +got):\n%s", diff)
			}
			if e.Path != nil {
				t.Errorf("path = %v, want none (refused before execution)", e.Path)
			}
			if string(resp.Data) != "null" {
				t.Errorf("data = %s, want null (links is non-null)", resp.Data)
			}
			if got := ts.sbx.IdentityCalls(); got != 0 {
				t.Errorf("upstream calls = %d, want 0", got)
			}
			// One fewer is accepted.
			resp, body = ts.MustQuery(t, `query($ids: [ID!]!) { links(ids: $ids) { id } }`, map[string]any{"ids": ids[:tt.n-1]})
			for _, e := range resp.Errors {
				if e.Extensions["code"] != "link_error.not_found" {
					t.Errorf("%d ids: unexpected error %+v", tt.n-1, e)
				}
			}
			if len(resp.Errors) != tt.n-1 {
				t.Errorf("%d ids: %d errors, want %d not_found: %.300s", tt.n-1, len(resp.Errors), tt.n-1, body)
			}
		})
	}
}

func TestGraphQLErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		query  string
		code   string
		status int
	}{
		{"unterminated", `{ link(id: "x") { id }`, "GRAPHQL_PARSE_FAILED", http.StatusUnprocessableEntity},
		{"garbage", `}}}`, "GRAPHQL_PARSE_FAILED", http.StatusUnprocessableEntity},
		{"unknown field", `{ link(id: "x") { nope } }`, "GRAPHQL_VALIDATION_FAILED", http.StatusUnprocessableEntity},
		{"missing argument", `{ link { id } }`, "GRAPHQL_VALIDATION_FAILED", http.StatusUnprocessableEntity},
		{"float id", `{ link(id: 1.5) { id } }`, "GRAPHQL_VALIDATION_FAILED", http.StatusUnprocessableEntity},
	}
	ts := newTestServer(t, testOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := ts.post(t, tt.query, nil)
			var resp gqlResponse
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Fatal(err)
			}
			if status != tt.status {
				t.Errorf("HTTP status = %d, want %d", status, tt.status)
			}
			if len(resp.Errors) == 0 {
				t.Fatalf("no errors: %s", body)
			}
			for _, e := range resp.Errors {
				if e.Extensions["code"] != tt.code {
					t.Errorf("code = %v, want %s (%s)", e.Extensions["code"], tt.code, body)
				}
			}
			if got := ts.lastSummary().Codes; !slices.Contains(got, tt.code) {
				t.Errorf("request log codes = %q, want %s", got, tt.code)
			}
		})
	}
	if got := ts.sbx.IdentityCalls(); got != 0 {
		t.Errorf("upstream calls = %d, want 0", got)
	}
}

// panicFetcher panics for every link; its panic value must never reach a client.
type panicFetcher struct{}

func (panicFetcher) GetIdentity(context.Context, string) (*upstream.Identity, error) {
	panic("secret panic value 4711: token=abc")
}

// nilMapFetcher panics with a runtime error, like a real bug would.
type nilMapFetcher struct{}

func (nilMapFetcher) GetIdentity(_ context.Context, id string) (*upstream.Identity, error) {
	var m map[string]int
	m[id]++
	return nil, nil
}

func TestPanickingFetcher(t *testing.T) {
	t.Parallel()
	for _, f := range []loader.Fetcher{panicFetcher{}, nilMapFetcher{}} {
		t.Run(fmt.Sprintf("%T", f), func(t *testing.T) {
			ts := newTestServer(t, testOptions{WrapFetcher: func(loader.Fetcher) loader.Fetcher { return f }})
			resp, body := ts.MustQuery(t, `{ link(id: "`+sandbox.LinkSeed+`") { id } links(ids: ["a", "b"]) { id } }`, nil)
			if len(resp.Errors) != 3 {
				t.Fatalf("errors = %s, want 3", body)
			}
			for _, e := range resp.Errors {
				if e.Message != "Internal error." {
					t.Errorf("message = %q, want %q", e.Message, "Internal error.")
				}
				if diff := cmp.Diff(ext(apierr.CodeInternal, 0), e.Extensions); diff != "" {
					t.Errorf("extensions mismatch (-want +got):\n%s", diff)
				}
			}
			for _, leak := range []string{"secret", "4711", "panic", "goroutine", ".go:", "nil map", "runtime"} {
				if bytes.Contains(bytes.ToLower(body), []byte(leak)) {
					t.Errorf("response holds %q: %s", leak, body)
				}
			}
			if !strings.Contains(ts.logs.String(), "panic") {
				t.Errorf("panic not logged server side; logs:\n%s", ts.logs.String())
			}
		})
	}
}

// badUpstream serves the sandbox's token endpoint and answers every identity
// call with status, content type and body.
func badUpstream(tb testing.TB, status int, contentType, body string) string {
	tb.Helper()
	sbx := sandbox.New(sandbox.Options{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth/token" {
			sbx.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	tb.Cleanup(hs.Close)
	return hs.URL
}

func TestUpstreamFailures(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name    string
		opts    func(tb testing.TB) testOptions
		message string
		ext     map[string]any
	}{
		{
			name:    "connection refused",
			opts:    func(testing.TB) testOptions { return testOptions{BaseURL: closedURL} },
			message: msgUnavailable,
			ext:     ext(apierr.CodeUpstreamUnavailable, 0),
		},
		{
			name: "timeout",
			opts: func(testing.TB) testOptions {
				return testOptions{Latency: 2 * time.Second, Timeout: 50 * time.Millisecond}
			},
			message: "The MoneyKit API did not answer in time; try again later.",
			ext:     ext(apierr.CodeUpstreamTimeout, 0),
		},
		{
			name: "truncated JSON",
			opts: func(tb testing.TB) testOptions {
				return testOptions{BaseURL: badUpstream(tb, http.StatusOK, "application/json", `{"link": {"link_id": "mk_`)}
			},
			message: "The MoneyKit API sent a response the facade cannot read.",
			ext:     ext(apierr.CodeUpstreamBadResponse, 200),
		},
		{
			name: "HTML 200",
			opts: func(tb testing.TB) testOptions {
				return testOptions{BaseURL: badUpstream(tb, http.StatusOK, "text/html", `<html>hi</html>`)}
			},
			message: "The MoneyKit API sent a response the facade cannot read.",
			ext:     ext(apierr.CodeUpstreamBadResponse, 200),
		},
		{
			name: "404 without MoneyKit error JSON",
			opts: func(tb testing.TB) testOptions {
				return testOptions{BaseURL: badUpstream(tb, http.StatusNotFound, "text/plain", `nope`)}
			},
			message: "The MoneyKit API sent a response the facade cannot read.",
			ext:     ext(apierr.CodeUpstreamBadResponse, 404),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, tt.opts(t))
			resp, body := ts.MustQuery(t, `{ link(id: "`+sandbox.LinkSeed+`") { id } }`, nil)
			if string(resp.Data) != `{"link":null}` {
				t.Errorf("data = %s, want link null", resp.Data)
			}
			if len(resp.Errors) != 1 {
				t.Fatalf("errors = %s, want one", body)
			}
			e := resp.Errors[0]
			if e.Message != tt.message {
				t.Errorf("message = %q, want %q", e.Message, tt.message)
			}
			if diff := cmp.Diff(tt.ext, e.Extensions); diff != "" {
				t.Errorf("extensions mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]any{"link"}, e.Path); diff != "" {
				t.Errorf("path mismatch (-want +got):\n%s", diff)
			}
			for _, leak := range []string{"127.0.0.1", "dial", "html", "unexpected EOF", "context deadline"} {
				if strings.Contains(string(body), leak) {
					t.Errorf("response leaks %q: %s", leak, body)
				}
			}
		})
	}
}

func TestRequestDeadline(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, testOptions{})
	ts.MustQuery(t, `{ link(id: "`+sandbox.LinkSeed+`") { id } }`, nil) // token
	ts.sbx.SetLatency(5 * time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	body, _ := json.Marshal(map[string]any{"query": `{ link(id: "` + sandbox.LinkHousehold + `") { id } }`})
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	start := time.Now()
	ts.handler.ServeHTTP(rec, req)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("request took %v after its 50ms deadline: the upstream call did not end with it", elapsed)
	}
	var resp gqlResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("decode %s: %v", rec.Body, err)
	}
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != apierr.CodeUpstreamTimeout {
		t.Errorf("errors = %s, want one %s", rec.Body, apierr.CodeUpstreamTimeout)
	}
}

// TestOddTimestampTypeDoesNotFailLink: upstream.Timestamp documents that "a
// value that is not a time at all is kept as absent and reported by Invalid,
// so that one odd field cannot fail a whole link".
func TestOddTimestampTypeDoesNotFailLink(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"accounts":[],"link":{"link_id":"mk_x","state":"connected","products":{"identity":{"refreshed_at":1700000000}}}}`,
		`{"accounts":[{"account_id":"a","account_type":"t","name":"n","balances":{"current":1,"balance_date":true}}],"link":{"link_id":"mk_x","state":"connected"}}`,
	} {
		ts := newTestServer(t, testOptions{BaseURL: badUpstream(t, http.StatusOK, "application/json", body)})
		resp, out := ts.MustQuery(t, `{ link(id: "mk_x") { id products { identity { refreshedAt } } accounts { balances { current balanceDate } } } }`, nil)
		if len(resp.Errors) != 0 || !strings.Contains(string(resp.Data), `"id":"mk_x"`) {
			t.Errorf("upstream body %s\n  answered %s; want the link with the odd time null", body, out)
		}
	}
}

func TestUnknownValues(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, testOptions{})
	const q = `{ link(id: "` + sandbox.LinkNovel + `") {
  state availableProducts
  products { accounts { refreshedAt } identity { errorCode } transactions { refreshedAt } }
  accounts { owners { phoneNumbers { number type } } }
} }`
	for range 2 { // two requests
		resp, _ := ts.MustQuery(t, q, nil)
		var data struct {
			Link struct {
				State             string
				AvailableProducts []string
				Products          struct {
					Accounts     *struct{ RefreshedAt string }
					Identity     *struct{ ErrorCode string }
					Transactions *struct{ RefreshedAt string }
				}
				Accounts []struct {
					Owners []struct {
						PhoneNumbers []struct{ Number, Type string }
					}
				}
			}
		}
		MustData(t, resp, &data)
		if data.Link.State != "UNKNOWN" {
			t.Errorf("state = %q, want UNKNOWN", data.Link.State)
		}
		if diff := cmp.Diff([]string{"IDENTITY", "TRANSACTIONS"}, data.Link.AvailableProducts); diff != "" {
			t.Errorf("availableProducts mismatch (-want +got):\n%s", diff)
		}
		if p := data.Link.Products; p.Accounts == nil || p.Identity == nil || p.Identity.ErrorCode != "maintenance_window" || p.Transactions != nil {
			t.Errorf("products = %+v, want accounts and identity, transactions null", p)
		}
		if got := data.Link.Accounts[0].Owners[0].PhoneNumbers[1].Type; got != "fax" {
			t.Errorf("phone type = %q, want fax passed through", got)
		}
	}

	type warning struct{ Level, Kind, Value string }
	got := map[warning]int{}
	for line := range strings.SplitSeq(strings.TrimSpace(ts.logs.String()), "\n") {
		var w warning
		if err := json.Unmarshal([]byte(line), &w); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if w.Level == "warn" {
			got[w]++
		}
	}
	want := map[warning]int{
		{"warn", "link.state", "reconnecting"}:             1,
		{"warn", "link.products", "liabilities"}:           1,
		{"warn", "link.available_products", "liabilities"}: 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings over two requests mismatch (-want +got):\n%s", diff)
	}
}

func TestScalarsAndNulls(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, testOptions{})
	resp, body := ts.MustQuery(t, `{
  intl: link(id: "`+sandbox.LinkInternational+`") { accounts { balances { available current limit balanceDate } } }
  sparse: link(id: "`+sandbox.LinkSparse+`") {
    tags institutionAvatar webhook
    products { accounts { refreshedAt } identity { refreshedAt lastAttemptedAt } transactions { refreshedAt } }
    accounts { nickname balances { currency available current } owners { names addresses { city } emails { address } } }
  }
  seed: link(id: "`+sandbox.LinkSeed+`") { accounts { balances { available current limit } } products { transactions { lastEnriched } } }
}`, nil)
	if len(resp.Errors) != 0 {
		t.Fatalf("errors: %s", body)
	}
	var data struct {
		Intl struct {
			Accounts []struct {
				Balances struct {
					Available, Current, Limit *string
					BalanceDate               string
				}
			}
		}
		Sparse struct {
			Tags              []string
			InstitutionAvatar *string
			Webhook           *string
			Products          map[string]map[string]*string
			Accounts          []struct {
				Nickname *string
				Balances struct{ Currency, Available, Current *string }
				Owners   []struct {
					Names     []string
					Addresses []any
					Emails    []any
				}
			}
		}
		Seed struct {
			Accounts []struct {
				Balances struct{ Available, Current, Limit string }
			}
			Products struct{ Transactions struct{ LastEnriched string } }
		}
	}
	if err := json.Unmarshal(resp.Data, &data); err != nil {
		t.Fatal(err)
	}
	deref := func(s *string) string {
		if s == nil {
			return "<null>"
		}
		return *s
	}
	var gotAmounts []string
	for _, a := range data.Intl.Accounts {
		b := a.Balances
		gotAmounts = append(gotAmounts, deref(b.Available), deref(b.Current), deref(b.Limit), b.BalanceDate)
	}
	// The fixture's digits, as written: 0.10 keeps its zero, 1500.00 its
	// decimals, and 12345678901234567.89 is not rounded through a float.
	wantAmounts := []string{"0.10", "1250.75", "1500.00", "2024-11-29T22:59:59Z"}
	if len(gotAmounts) < 4 {
		t.Fatalf("international amounts = %q", gotAmounts)
	}
	if diff := cmp.Diff(wantAmounts, gotAmounts[:4]); diff != "" {
		t.Errorf("international first account mismatch (-want +got):\n%s", diff)
	}
	if !slices.Contains(gotAmounts, "12345678901234567.89") {
		t.Errorf("international amounts %q lack 12345678901234567.89", gotAmounts)
	}
	if !slices.Contains(gotAmounts, "2024-11-30T00:00:00Z") { // 09:00+09:00
		t.Errorf("international dates %q lack 2024-11-30T00:00:00Z (a +09:00 time in UTC)", gotAmounts)
	}

	s := data.Sparse
	if s.Tags == nil || len(s.Tags) != 0 {
		t.Errorf("sparse tags = %#v, want [] when absent", s.Tags)
	}
	if s.InstitutionAvatar != nil || s.Webhook != nil {
		t.Errorf("sparse avatar, webhook = %v, %v; want null", s.InstitutionAvatar, s.Webhook)
	}
	if got := deref(s.Products["accounts"]["refreshedAt"]); got != "2024-05-01T12:30:00Z" {
		t.Errorf("sparse zone-less refreshedAt = %s, want 2024-05-01T12:30:00Z", got)
	}
	if s.Products["identity"]["refreshedAt"] != nil || s.Products["transactions"] != nil {
		t.Errorf("sparse products = %s, want identity.refreshedAt and transactions null", body)
	}
	if a := s.Accounts[0]; a.Nickname != nil || a.Balances.Currency != nil || a.Balances.Available != nil || deref(a.Balances.Current) != "1023.5" {
		t.Errorf("sparse account = %+v, want only current 1023.5", a)
	}
	for _, a := range s.Accounts {
		for _, o := range a.Owners {
			if o.Names == nil || o.Addresses == nil || o.Emails == nil {
				t.Errorf("sparse owner has a null list: %+v", o)
			}
		}
	}
	if b := data.Seed.Accounts[0].Balances; b.Available != "340.12" || b.Current != "445.89" || b.Limit != "500" {
		t.Errorf("seed balances = %+v, want 340.12 445.89 500", b)
	}
	if got := data.Seed.Products.Transactions.LastEnriched; got != "2025-08-20T00:01:21.281Z" {
		t.Errorf("seed lastEnriched = %s", got)
	}
}

func TestSchemaDescriptions(t *testing.T) {
	t.Parallel()
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{}}).Schema()
	checked := 0
	for name, def := range schema.Types {
		if def.BuiltIn || strings.HasPrefix(name, "__") {
			continue
		}
		checked++
		if strings.TrimSpace(def.Description) == "" {
			t.Errorf("type %s has no description", name)
		}
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			if strings.TrimSpace(f.Description) == "" {
				t.Errorf("field %s.%s has no description", name, f.Name)
			}
			for _, a := range f.Arguments {
				if strings.TrimSpace(a.Description) == "" {
					t.Errorf("argument %s.%s(%s) has no description", name, f.Name, a.Name)
				}
			}
		}
		for _, v := range def.EnumValues {
			if strings.TrimSpace(v.Description) == "" {
				t.Errorf("enum value %s.%s has no description", name, v.Name)
			}
		}
	}
	// Query, Link, LinkState, Product, Products, ProductStatus, Account,
	// Balances, Owner, Address, PhoneNumber, Email, DateTime, Decimal.
	if checked < 14 {
		t.Errorf("checked %d types, want at least 14: the walk missed the schema", checked)
	}
}

func TestIntrospection(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, testOptions{})
	resp, _ := ts.MustQuery(t, `{ __type(name: "Link") { description fields { name description } } }`, nil)
	var data struct {
		Type struct {
			Description string
			Fields      []struct{ Name, Description string }
		} `json:"__type"`
	}
	MustData(t, resp, &data)
	if data.Type.Description == "" || len(data.Type.Fields) == 0 {
		t.Errorf("introspection of Link = %+v, want its description and fields", data.Type)
	}
}

// syncBuffer is a sink for a logger that the test reads.
type syncBuffer = logtest.Buffer

// TestRequestLimits: a request cannot cost more than its budgets, however it
// is written: the complexity limit refuses before any upstream call, the
// distinct-link and account budgets refuse at the path that overspends.
func TestRequestLimits(t *testing.T) {
	aliases := func(n int, id func(i int) string, sel string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, " a%d: link(id: %q) { %s }", i, id(i), sel)
		}
		b.WriteString(" }")
		return b.String()
	}
	copyID := func(i int) string { return sandbox.LinkCopyPrefix + strconv.Itoa(i) }
	large := func(int) string { return sandbox.LinkLarge }
	tests := []struct {
		name       string
		opts       testOptions
		query      string
		wantErrors int // errors with code facade.query_too_complex
		wantCalls  int
		wantData   bool
	}{
		{"5000 aliases of the large link: refused before execution",
			testOptions{}, aliases(5000, large, "accounts { id name owners { names } }"), 1, 0, false},
		{"complexity limit configurable",
			testOptions{MaxComplexity: 50}, aliases(5, copyID, "id accounts { id }"), 1, 0, false},
		{"distinct links over the budget",
			testOptions{MaxLinks: 3}, aliases(5, copyID, "id"), 2, 3, true},
		{"the same link many times costs one link of the budget",
			testOptions{MaxLinks: 1}, aliases(5, func(int) string { return sandbox.LinkSeed }, "id"), 0, 1, true},
		{"accounts over the budget",
			testOptions{MaxAccounts: 1000}, aliases(3, large, "accounts { id }"), 1, 1, true},
		{"accounts narrowed fit the budget",
			testOptions{MaxAccounts: 1000}, aliases(3, large, `accounts(ids: ["acc_large_0001"]) { id }`), 0, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, tt.opts)
			resp, _ := ts.MustQuery(t, tt.query, nil)
			n := 0
			for _, e := range resp.Errors {
				if e.Extensions["code"] == "facade.query_too_complex" {
					n++
				} else {
					t.Errorf("unexpected error %+v", e)
				}
			}
			if n != tt.wantErrors {
				t.Errorf("facade.query_too_complex errors = %d, want %d", n, tt.wantErrors)
			}
			if got := ts.sbx.IdentityCalls(); got != tt.wantCalls {
				t.Errorf("upstream calls = %d, want %d", got, tt.wantCalls)
			}
			if hasData := len(resp.Data) > 0 && string(resp.Data) != "null"; hasData != tt.wantData {
				t.Errorf("data present = %v, want %v: %.200s", hasData, tt.wantData, resp.Data)
			}
		})
	}
}

// TestFaultsThroughGraphQL: each way the upstream can fail reaches the
// client as a stable code at the link's path, never a hang, and costs the
// calls the retry rules allow: 502/504/resets are retried twice, a short
// Retry-After is waited out, everything else is tried once.
func TestFaultsThroughGraphQL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id        string
		code      string
		minCalls  int
		maxCalls  int
		retryWait bool // retryAfter in extensions
	}{
		{sandbox.LinkFault502, apierr.CodeUpstreamUnavailable, 3, 3, false},
		{sandbox.LinkFault504, apierr.CodeUpstreamUnavailable, 3, 3, false},
		{sandbox.LinkFaultReset, apierr.CodeUpstreamUnavailable, 3, 6, false}, // net/http may resend a reset GET itself
		{sandbox.LinkFaultHTML, apierr.CodeUpstreamBadResponse, 1, 1, false},
		{sandbox.LinkFaultTruncated, apierr.CodeUpstreamBadResponse, 1, 1, false},
		{sandbox.LinkFaultOversized, apierr.CodeUpstreamBadResponse, 1, 1, false},
		{sandbox.LinkFaultDrip, apierr.CodeUpstreamTimeout, 1, 1, false},
		{sandbox.LinkFaultHang, apierr.CodeUpstreamTimeout, 1, 1, false},
		{sandbox.LinkFaultSlow, apierr.CodeUpstreamTimeout, 1, 1, false},
		{sandbox.LinkRateLimitedDate, apierr.CodeRateLimitExceeded, 1, 1, true},
		{sandbox.LinkRateLimitedShort, apierr.CodeRateLimitExceeded, 3, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			t.Parallel()
			// A server per case: the breaker must not carry one case's
			// failures into the next.
			ts := newTestServer(t, testOptions{Timeout: time.Second})
			start := time.Now()
			resp, body := ts.MustQuery(t, `query($id: ID!) { link(id: $id) { id } }`, map[string]any{"id": tt.id})
			if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != tt.code || string(resp.Data) != `{"link":null}` {
				t.Fatalf("answer %s, want link null with one %s error", body, tt.code)
			}
			if _, ok := resp.Errors[0].Extensions["retryAfter"]; ok != tt.retryWait {
				t.Errorf("retryAfter present = %v, want %v: %s", ok, tt.retryWait, body)
			}
			if calls := ts.sbx.IdentityCallsFor(tt.id); calls < tt.minCalls || calls > tt.maxCalls {
				t.Errorf("upstream calls = %d, want %d to %d", calls, tt.minCalls, tt.maxCalls)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v: bounded by the 1 s per-attempt timeout and the retry rules", took)
			}
		})
	}
}

// TestAuthorizeBeforeLoading: a link the caller may not read is answered
// facade.forbidden at its own path and never reaches a loader or the
// upstream, while the links it may read are answered.
func TestAuthorizeBeforeLoading(t *testing.T) {
	forbidden := &apierr.Error{Code: apierr.CodeForbidden, Message: "You may not read this link."}
	ts := newTestServer(t, testOptions{Authorize: func(_ context.Context, id string) error {
		if id == sandbox.LinkSeed {
			return nil
		}
		return forbidden
	}})
	resp, body := ts.MustQuery(t, `{ a: link(id: "`+sandbox.LinkHousehold+`") { id }
		b: links(ids: ["`+sandbox.LinkSeed+`", "`+sandbox.LinkSparse+`", "`+sandbox.LinkSeed+`"]) { id } }`, nil)
	want := `{"a":null,"b":[{"id":"` + sandbox.LinkSeed + `"},null,{"id":"` + sandbox.LinkSeed + `"}]}`
	if string(resp.Data) != want {
		t.Errorf("data = %s, want %s", resp.Data, want)
	}
	var paths []string
	for _, e := range resp.Errors {
		if e.Extensions["code"] != apierr.CodeForbidden {
			t.Errorf("unexpected error %+v", e)
		}
		paths = append(paths, fmt.Sprint(e.Path))
	}
	slices.Sort(paths)
	if diff := cmp.Diff([]string{"[a]", "[b 1]"}, paths); diff != "" {
		t.Errorf("error paths mismatch (-want +got):\n%s\n%s", diff, body)
	}
	if ts.sbx.IdentityCallsFor(sandbox.LinkHousehold) != 0 || ts.sbx.IdentityCallsFor(sandbox.LinkSparse) != 0 {
		t.Errorf("forbidden links reached the upstream")
	}
}

// postRaw sends a raw JSON body.
func (s *testServer) postRaw(tb testing.TB, body string) gqlResponse {
	tb.Helper()
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	var resp gqlResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		tb.Fatalf("decode %s: %v", rec.Body, err)
	}
	return resp
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func apqBody(query, hash string) string {
	b, _ := json.Marshal(map[string]any{"query": query, "extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}})
	if query == "" {
		b, _ = json.Marshal(map[string]any{"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}})
	}
	return string(b)
}

// TestAPQ: Apollo's automatic persisted queries: a hash alone is
// PersistedQueryNotFound until the query is registered with it.
func TestAPQ(t *testing.T) {
	ts := newTestServer(t, testOptions{APQCacheSize: 10})
	q := `{ link(id: "` + sandbox.LinkSeed + `") { id } }`
	h := sha256Hex(q)
	if resp := ts.postRaw(t, apqBody("", h)); len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != "PERSISTED_QUERY_NOT_FOUND" {
		t.Errorf("unknown hash: %+v, want PERSISTED_QUERY_NOT_FOUND", resp.Errors)
	}
	if resp := ts.postRaw(t, apqBody(q, h)); len(resp.Errors) > 0 {
		t.Errorf("register: %+v", resp.Errors)
	}
	if resp := ts.postRaw(t, apqBody("", h)); len(resp.Errors) > 0 || !strings.Contains(string(resp.Data), sandbox.LinkSeed) {
		t.Errorf("hash only after registering: %s %+v", resp.Data, resp.Errors)
	}
	if resp := ts.postRaw(t, apqBody(q, sha256Hex("other"))); len(resp.Errors) == 0 {
		t.Errorf("a hash that does not match its query was accepted")
	}
}

// TestPersistedQueriesAllowlist: in allowlist mode only the manifest's
// operations run, by hash alone or in full; anything else is refused before
// parsing, and costs no upstream call.
func TestPersistedQueriesAllowlist(t *testing.T) {
	allowed := `query Profile { link(id: "` + sandbox.LinkSeed + `") { id } }`
	manifest := fmt.Sprintf(`{"format":"apollo-persisted-query-manifest","version":1,"operations":[{"id":%q,"name":"Profile","type":"query","body":%q}]}`, sha256Hex(allowed), allowed)
	path := filepath.Join(t.TempDir(), "manifest.json")
	if err := os.WriteFile(path, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	pq, err := graph.LoadPersistedQueries(path, true)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, testOptions{APQCacheSize: 10, Persisted: pq})
	if resp := ts.postRaw(t, apqBody("", sha256Hex(allowed))); len(resp.Errors) > 0 || !strings.Contains(string(resp.Data), sandbox.LinkSeed) {
		t.Errorf("manifest hash alone: %s %+v", resp.Data, resp.Errors)
	}
	if resp, _ := ts.MustQuery(t, allowed, nil); len(resp.Errors) > 0 {
		t.Errorf("manifest operation in full: %+v", resp.Errors)
	}
	before := ts.sbx.IdentityCalls()
	other := `{ link(id: "` + sandbox.LinkHousehold + `") { id } }`
	for _, body := range []string{apqBody(other, sha256Hex(other)), apqBody("", sha256Hex(other)), `{"query":` + strconv.Quote(other) + `}`} {
		if resp := ts.postRaw(t, body); len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != apierr.CodePersistedQueryNotAllowed {
			t.Errorf("%s: %+v, want %s", body, resp.Errors, apierr.CodePersistedQueryNotAllowed)
		}
	}
	if ts.sbx.IdentityCalls() != before {
		t.Errorf("a refused operation reached the upstream")
	}

	// A manifest whose id is not its body's hash is refused at load.
	bad := strings.Replace(manifest, sha256Hex(allowed), sha256Hex("x"), 1)
	os.WriteFile(path, []byte(bad), 0o600)
	if _, err := graph.LoadPersistedQueries(path, true); err == nil {
		t.Errorf("a manifest with a wrong id was accepted")
	}
}
