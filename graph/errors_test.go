package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
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

func TestGraphQLErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		query  string
		code   string
		status int
	}{
		// GraphQL over HTTP: 200 under application/json (no Accept here);
		// TestRequestErrorStatuses has graphql-response+json's 400.
		{"unterminated", `{ link(id: "x") { id }`, "GRAPHQL_PARSE_FAILED", http.StatusOK},
		{"garbage", `}}}`, "GRAPHQL_PARSE_FAILED", http.StatusOK},
		{"unknown field", `{ link(id: "x") { nope } }`, "GRAPHQL_VALIDATION_FAILED", http.StatusOK},
		{"missing argument", `{ link { id } }`, "GRAPHQL_VALIDATION_FAILED", http.StatusOK},
		{"float id", `{ link(id: 1.5) { id } }`, "GRAPHQL_VALIDATION_FAILED", http.StatusOK},
	}
	ts := newTestServer(t, testOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := ts.post(t, tt.query, nil)
			resp := mustDecode(t, body)
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
