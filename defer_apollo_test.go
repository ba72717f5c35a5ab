package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// apolloDir holds the pinned Apollo Client 4 package and its script
// (make apollo installs node_modules).
const apolloDir = "testdata/js/apollo"

// TestDeferApolloClient: Apollo Client 4, with HttpLink and its
// Defer20220824Handler, gets issue 10's deferred fields from the facade,
// complete. On CI a missing node or node_modules fails the test.
func TestDeferApolloClient(t *testing.T) {
	node := requireNode(t, apolloDir, "@apollo/client")
	baseURL, logs, _ := startServer(t, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "defer.mjs", baseURL+"/graphql", sandbox.LinkSeed)
	cmd.Dir = apolloDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node defer.mjs: %v\nstdout: %s\nstderr: %s", err, stdout.Bytes(), stderr.Bytes())
	}
	var got struct {
		Data struct {
			Link *struct {
				ID       string `json:"id"`
				Accounts []struct {
					ID string `json:"id"`
				} `json:"accounts"`
			} `json:"link"`
		} `json:"data"`
		Error   string           `json:"error"`
		Updates []map[string]any `json:"updates"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("Apollo's result is not JSON: %v\n%s", err, stdout.Bytes())
	}
	if got.Error != "" || got.Data.Link == nil || got.Data.Link.ID != sandbox.LinkSeed ||
		len(got.Data.Link.Accounts) != 1 || got.Data.Link.Accounts[0].ID != "acc_6Tef269B6ZArSVpYrxtjBV" {
		t.Errorf("Apollo's final result is not complete: %s", stdout.Bytes())
	}
	line := logs.waitFor(t, "for Apollo's request", func(f map[string]any) bool {
		return f["message"] == "request" && f["operation"] == "IssueDefer"
	})
	if line["status"] != float64(http.StatusOK) {
		t.Errorf("access log line %v", line)
	}
}

// postDefer POSTs a query to the facade with an Accept header and returns
// the open response.
func postDefer(t *testing.T, c *http.Client, baseURL, query, accept string) *http.Response {
	t.Helper()
	b, _ := json.Marshal(gqlRequest{Query: query})
	req, err := http.NewRequest(http.MethodPost, baseURL+"/graphql", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", accept)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// multipartBodies reads a multipart/mixed response's parts.
func multipartBodies(t *testing.T, resp *http.Response) []string {
	t.Helper()
	mediaType, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/mixed" {
		t.Fatalf("HTTP %d Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	var out []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("part %d: %v", len(out), err)
		}
		b, _ := io.ReadAll(p)
		out = append(out, string(b))
	}
}

// TestDeferThroughTheServer: @defer through every middleware of /graphql:
// parts are flushed through the edge's writers; the deferred fragment's
// errors are at their path with their code and reach the access log (the
// request's record outlives the last part); plain JSON gets the merged
// answer; the operation limits see deferred selections.
func TestDeferThroughTheServer(t *testing.T) {
	baseURL, logs, _ := startServer(t, map[string]string{"MKGRAPH_MAX_ACCOUNTS_PER_REQUEST": "2", "MKGRAPH_MAX_DEPTH": "4"})
	c := newClient(t)
	const accept = "multipart/mixed;deferSpec=20220824,application/graphql-response+json,application/json;q=0.9"

	q := `query Split { ok: link(id: "` + sandbox.LinkSeed + `") { id ... @defer { accounts { id } } }
		big: link(id: "` + sandbox.LinkHousehold + `") { id ... @defer(label: "big") { accounts { id } } } }`
	parts := multipartBodies(t, postDefer(t, c, baseURL, q, accept))
	if len(parts) < 2 || !strings.Contains(parts[0], `"hasNext":true`) || !strings.HasSuffix(parts[len(parts)-1], `"hasNext":false}`) {
		t.Fatalf("parts %q", parts)
	}
	all := strings.Join(parts, "\n")
	for _, want := range []string{`"path":["big","accounts"]`, `"code":"facade.query_too_complex"`, `"label":"big"`} {
		if !strings.Contains(all, want) {
			t.Errorf("parts hold no %s: %q", want, parts)
		}
	}
	line := logs.waitFor(t, "for the deferred request", func(f map[string]any) bool {
		return f["message"] == "request" && f["operation"] == "Split"
	})
	codes, _ := line["error_codes"].([]any)
	if !slices.Contains(codes, any("facade.query_too_complex")) || line["status"] != float64(http.StatusOK) {
		t.Errorf("access log line %v: want status 200 and the deferred error's code", line)
	}

	// Plain JSON: one answer, merged, no hasNext.
	r := postGraphQL(t, c, baseURL, gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id ... @defer { accounts { id } } } }`})
	checkJSONContentType(t, "merged @defer answer", r)
	if want := `{"data":{"link":{"id":"mk_eqkWN34UEoa2NxyALG8pcV","accounts":[{"id":"acc_6Tef269B6ZArSVpYrxtjBV"}]}}}`; string(r.body) != want {
		t.Errorf("merged answer %s, want %s", r.body, want)
	}

	// SSE.
	resp := postDefer(t, c, baseURL, `{ link(id: "`+sandbox.LinkSeed+`") { id ... @defer { accounts { id } } } }`, "text/event-stream")
	body, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Content-Type") != "text/event-stream" || strings.Count(string(body), "event: next\n") != 2 || !strings.HasSuffix(string(body), "event: complete\ndata:\n\n") {
		t.Errorf("SSE answer %s %q", resp.Header.Get("Content-Type"), body)
	}

	// Depth 5 inside the deferred fragment: refused before parsing.
	resp = postDefer(t, c, baseURL, `{ link(id: "`+sandbox.LinkSeed+`") { ... @defer { accounts { owners { emails { address } } } } } }`, accept)
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "facade.query_too_deep") {
		t.Errorf("deep deferred selection: HTTP %d %s", resp.StatusCode, body)
	}
}
