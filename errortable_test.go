package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// errorTableSkips are the README rows no request from outside can produce:
// each is a bug or needs the process to be broken. Keep it short: a row
// that can be triggered belongs in errorTriggers.
var errorTableSkips = map[string]string{
	"facade.internal": "a bug (recovered panic); graph's TestPanickingFetcher pins it",
}

// errorTableRow is one row of the README's Errors table.
type errorTableRow struct {
	codes    []string // the backquoted codes of the first cell, or the cell itself
	statuses []int    // the HTTP response statuses of the second cell
}

// readErrorTable parses the README's Errors table.
func readErrorTable(t *testing.T) []errorTableRow {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "<!-- errors table")
	end := strings.Index(text, "<!-- end of errors table -->")
	if start < 0 || end < start {
		t.Fatal("README.md: no errors table between its markers")
	}
	codeRE := regexp.MustCompile("^`([^`]+)`$")
	statusRE := regexp.MustCompile(`\b[1-5][0-9][0-9]\b`)
	var rows []errorTableRow
	for i, line := range strings.Split(text[start:end], "\n") {
		if !strings.HasPrefix(line, "| ") || i <= 2 { // the marker, the header, the separator
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		if len(cells) != 4 {
			t.Fatalf("README errors table: %d cells, want 4: %s", len(cells), line)
		}
		var row errorTableRow
		for part := range strings.SplitSeq(strings.TrimSpace(cells[0]), ", ") {
			if m := codeRE.FindStringSubmatch(part); m != nil {
				row.codes = append(row.codes, m[1])
			}
		}
		if row.codes == nil {
			row.codes = []string{strings.TrimSpace(cells[0])}
		}
		for _, s := range statusRE.FindAllString(cells[1], -1) {
			n, _ := strconv.Atoi(s)
			if !slices.Contains(row.statuses, n) {
				row.statuses = append(row.statuses, n)
			}
		}
		if row.statuses == nil {
			t.Fatalf("README errors table: no HTTP response status in %q", line)
		}
		rows = append(rows, row)
	}
	if len(rows) < 20 {
		t.Fatalf("README errors table: %d rows", len(rows))
	}
	return rows
}

// errorTrigger is a request that answers a row's code.
type errorTrigger struct {
	env    string // the server it goes to (errorTableEnvs)
	method string // POST when empty
	body   string // POST body, or GET query string
	header []string
	// repeat sends the request this many times (a budget spent) and checks
	// the last; 0: once.
	repeat int
}

// queryTrigger returns a POST trigger of the query q.
func queryTrigger(env, q string, header ...string) errorTrigger {
	b, _ := json.Marshal(map[string]string{"query": q})
	return errorTrigger{env: env, body: string(b), header: header}
}

// Link ids of the fault upstream (faultUpstream).
const (
	faultExpired = "mk_fault_expired"
	faultNovel   = "mk_fault_novel"
)

// faultUpstream is a MoneyKit that issues tokens like the sandbox and
// refuses identity calls: faultExpired with 401
// api_error.auth.expired_access_token (after any renewal), any other link
// with 400 and a code the facade does not know.
func faultUpstream(t *testing.T) string {
	sbx := sandbox.New(sandbox.Options{})
	return startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth/token" {
			sbx.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(r.URL.Path, faultExpired) {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error_code":"api_error.auth.expired_access_token","error_message":"The access token has expired."}`)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error_code":"api_error.novel_code","error_message":"Something new."}`)
	}))
}

const errorTableSecret = "error-table-test-hs256-secret-32-bytes!"

// TestErrorTable: each row of the README's Errors table is answered with
// its code, at a status its "HTTP response status" cell lists, and every
// status listed there is seen.
func TestErrorTable(t *testing.T) {
	rows := readErrorTable(t)
	user := "Bearer " + mustSign(t, jwt.SigningMethodHS256, []byte(errorTableSecret), jwt.MapClaims{
		"sub": "alice", "link_ids": []string{sandbox.LinkSeed}, "exp": time.Now().Add(time.Hour).Unix(),
	})
	const persistedBody = "query Allowed { __typename }"
	sum := sha256.Sum256([]byte(persistedBody))
	manifest := filepath.Join(t.TempDir(), "manifest.json")
	m, _ := json.Marshal(map[string]any{"format": "apollo-persisted-query-manifest", "version": 1,
		"operations": []map[string]string{{"id": hex.EncodeToString(sum[:]), "name": "Allowed", "body": persistedBody}}})
	if err := os.WriteFile(manifest, m, 0o644); err != nil {
		t.Fatal(err)
	}
	sbx := startUpstream(t, sandbox.New(sandbox.Options{}))
	envs := map[string]map[string]string{
		// The embedded sandbox, no auth, small limits.
		"sandbox": {
			"MKGRAPH_MAX_LINK_IDS": "2", "MKGRAPH_MAX_COMPLEXITY": "200", "MKGRAPH_MAX_LINKS_PER_REQUEST": "2",
			"MKGRAPH_MAX_BODY_BYTES": "65536", "MKGRAPH_INTROSPECTION": "false",
			"MKGRAPH_UPSTREAM_TIMEOUT": "2s", "MKGRAPH_REQUEST_TIMEOUT": "3s",
		},
		"jwt": {
			"MKGRAPH_AUTH": "jwt", "MKGRAPH_JWT_HS256_SECRET": errorTableSecret, "MKGRAPH_USER_RATE_LIMIT": "2",
		},
		"persisted": {"MKGRAPH_PERSISTED_QUERIES_FILE": manifest, "MKGRAPH_PERSISTED_QUERIES_ONLY": "true"},
		"badcreds":  {"MONEYKIT_BASE_URL": sbx, "MONEYKIT_CLIENT_ID": sandbox.DefaultClientID, "MONEYKIT_CLIENT_SECRET": "not-the-secret"},
		"fault":     {"MONEYKIT_BASE_URL": faultUpstream(t), "MONEYKIT_CLIENT_ID": sandbox.DefaultClientID, "MONEYKIT_CLIENT_SECRET": sandbox.DefaultClientSecret},
	}
	link := func(id string) string { return `{ link(id: "` + id + `") { id } }` }
	gr := []string{"Accept", "application/graphql-response+json"}
	many := func(n int, f func(i int) string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			b.WriteString(" " + f(i))
		}
		b.WriteString(" }")
		return b.String()
	}
	triggers := map[string][]errorTrigger{
		"link_error.not_found":                {queryTrigger("sandbox", link("mk_no_such_link"))},
		"link_error.unauthorized_access":      {queryTrigger("sandbox", link(sandbox.LinkUnauthorized))},
		"link_error.forbidden_action":         {queryTrigger("sandbox", link(sandbox.LinkForbidden))},
		"link_error.deleted":                  {queryTrigger("sandbox", link(sandbox.LinkDeleted))},
		"link_error.bad_state":                {queryTrigger("sandbox", link(sandbox.LinkBadState))},
		"api_error.rate_limit_exceeded":       {queryTrigger("sandbox", link(sandbox.LinkRateLimited))},
		"api_error.auth.unauthorized":         {queryTrigger("badcreds", link(sandbox.LinkSeed))},
		"api_error.auth.expired_access_token": {queryTrigger("fault", link(faultExpired))},
		"any other upstream `error_code`":     {queryTrigger("fault", link(faultNovel))},
		"facade.invalid_argument":             {queryTrigger("sandbox", link(""))},
		"facade.too_many_link_ids": {
			queryTrigger("sandbox", `{ links(ids: ["a", "b", "c"]) { id } }`),
			queryTrigger("sandbox", `{ links(ids: ["a", "b", "c"]) { id } }`, gr...),
		},
		"facade.upstream_unavailable":  {queryTrigger("sandbox", link(sandbox.LinkServerError))},
		"facade.upstream_timeout":      {queryTrigger("sandbox", link(sandbox.LinkFaultHang))},
		"facade.upstream_bad_response": {queryTrigger("sandbox", link(sandbox.LinkFaultHTML))},
		"facade.query_too_complex": {
			queryTrigger("sandbox", many(25, func(i int) string { return fmt.Sprintf(`l%d: link(id: "x%d") { id }`, i, i) })),
			queryTrigger("sandbox", many(25, func(i int) string { return fmt.Sprintf(`l%d: link(id: "x%d") { id }`, i, i) }), gr...),
			queryTrigger("sandbox", `{ links(ids: ["mk_sandbox_copy_1", "mk_sandbox_copy_2"]) { id } link(id: "mk_sandbox_copy_3") { id } }`),
		},
		"facade.query_too_large": {
			queryTrigger("sandbox", "{ __typename }"+strings.Repeat(" ", 70_000)),
			queryTrigger("sandbox", "{ __typename }"+strings.Repeat(" ", 20_000)),
		},
		"facade.too_many_tokens":      {queryTrigger("sandbox", "{"+strings.Repeat(" a", 2100)+" }")},
		"facade.query_too_deep":       {queryTrigger("sandbox", strings.Repeat("{ a ", 12)+strings.Repeat("}", 12))},
		"facade.too_many_aliases":     {queryTrigger("sandbox", many(31, func(i int) string { return fmt.Sprintf("a%d: f%d", i, i) }))},
		"facade.too_many_directives":  {queryTrigger("sandbox", "{ a"+strings.Repeat(" @d", 21)+" }")},
		"facade.too_many_root_fields": {queryTrigger("sandbox", many(31, func(i int) string { return fmt.Sprintf("f%d", i) }))},
		"facade.too_many_repeats":     {queryTrigger("sandbox", "{ a { "+strings.Repeat("b ", 25)+"} }")},
		"facade.batching_disabled":    {{env: "sandbox", body: `[{"query": "{ __typename }"}]`}},
		"facade.unauthenticated":      {queryTrigger("jwt", link(sandbox.LinkSeed))},
		"facade.forbidden":            {queryTrigger("jwt", link(sandbox.LinkHousehold), "Authorization", user)},
		"facade.rate_limit_exceeded":  {{env: "jwt", body: `{"query": "{ __typename }"}`, header: []string{"Authorization", user}, repeat: 3}},
		"facade.csrf_refused":         {{env: "sandbox", body: `{"query": "{ __typename }"}`, header: []string{"Content-Type", "text/plain"}}},
		"facade.persisted_query_not_allowed": {
			queryTrigger("persisted", "{ __typename }"),
			queryTrigger("persisted", "{ __typename }", gr...),
		},
		"PERSISTED_QUERY_NOT_FOUND": {
			{env: "sandbox", body: `{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "00"}}}`},
			{env: "sandbox", body: `{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "00"}}}`, header: gr},
		},
		"facade.persisted_query_hash_mismatch": {
			{env: "sandbox", body: `{"query": "{ __typename }", "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "00"}}}`},
		},
		"facade.introspection_disabled": {
			queryTrigger("sandbox", "{ __schema { types { name } } }"),
			queryTrigger("sandbox", "{ __schema { types { name } } }", gr...),
		},
		"facade.bad_request": {
			{env: "sandbox", body: `{ "not JSON`},
			{env: "sandbox", method: http.MethodPut, body: `{"query": "{ __typename }"}`},
			{env: "sandbox", body: `{"query": "{ __typename }"}`, header: []string{"Content-Type", "application/xml"}},
		},
		"GRAPHQL_PARSE_FAILED":      {queryTrigger("sandbox", "{"), queryTrigger("sandbox", "{", gr...)},
		"GRAPHQL_VALIDATION_FAILED": {queryTrigger("sandbox", "{ nope }"), queryTrigger("sandbox", "{ nope }", gr...)},
	}
	if len(errorTableSkips) > 2 {
		t.Errorf("errorTableSkips has %d rows: trigger them instead", len(errorTableSkips))
	}

	servers := map[string]string{}
	for name, env := range envs {
		servers[name], _, _ = startServer(t, env)
	}
	c := newClient(t)
	for _, row := range rows {
		for _, code := range row.codes {
			t.Run(code, func(t *testing.T) {
				if why, ok := errorTableSkips[code]; ok {
					t.Skipf("not triggered from outside: %s", why)
				}
				ts, ok := triggers[code]
				if !ok {
					t.Fatalf("README row %s has no trigger in TestErrorTable", code)
				}
				seen := map[int]bool{}
				for _, tr := range ts {
					base, ok := servers[tr.env]
					if !ok {
						t.Fatalf("no server %q", tr.env)
					}
					status, codes, body := sendTrigger(t, c, base, tr)
					if !slices.Contains(codes, code) && !(strings.HasPrefix(code, "any other") && slices.Contains(codes, "api_error.novel_code")) {
						t.Errorf("%s %.80s: codes %q, want %s: %.300s", tr.env, tr.body, codes, code, body)
					}
					if !slices.Contains(row.statuses, status) {
						t.Errorf("%s %.80s: HTTP %d, README says %v", tr.env, tr.body, status, row.statuses)
					}
					seen[status] = true
				}
				for _, s := range row.statuses {
					if !seen[s] {
						t.Errorf("README says HTTP %d for %s: no trigger answers it", s, code)
					}
				}
			})
		}
	}
	for code := range triggers {
		if !slices.ContainsFunc(rows, func(r errorTableRow) bool { return slices.Contains(r.codes, code) }) {
			t.Errorf("trigger for %s, which the README's table does not list", code)
		}
	}
}

// sendTrigger sends tr to base and returns the status and the codes.
func sendTrigger(t *testing.T, c *http.Client, base string, tr errorTrigger) (int, []string, []byte) {
	t.Helper()
	method := tr.method
	if method == "" {
		method = http.MethodPost
	}
	var r result
	for range max(tr.repeat, 1) {
		req, err := http.NewRequest(method, base+"/graphql", bytes.NewReader([]byte(tr.body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(tr.header); i += 2 {
			req.Header.Set(tr.header[i], tr.header[i+1])
		}
		r = do(t, c, req)
	}
	var doc struct {
		Errors []struct {
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("HTTP %d: not a GraphQL document: %.300s", r.status, r.body)
	}
	var codes []string
	for _, e := range doc.Errors {
		codes = append(codes, fmt.Sprint(e.Extensions["code"]))
	}
	return r.status, codes, r.body
}
