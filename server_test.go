package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/goleak"

	"github.com/mkgraph/mkgraph/internal/edge/auth"
	"github.com/mkgraph/mkgraph/internal/testing/logtest"
	"github.com/mkgraph/mkgraph/internal/testing/redistest"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// callMainEnv makes TestMainExitStatus, in a re-executed test binary, call
// main() with the configuration given in the environment.
const callMainEnv = "MKGRAPH_TEST_CALL_MAIN"

// TestMain fails the run when goroutines outlive the tests: every server,
// sandbox and client the tests start must be stopped.
func TestMain(m *testing.M) {
	if os.Getenv(callMainEnv) != "" {
		os.Exit(m.Run())
	}
	// The signal goroutine belongs to main()'s signal.NotifyContext, which
	// TestMainExitStatus runs only in a child process; ignore it anyway.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("os/signal.signal_recv"))
}

// syncBuffer is a server's log, read by the test while it is written.
type syncBuffer struct{ logtest.Buffer }

// logLine is one line of output; fields is nil when it is not a JSON object.
type logLine struct {
	raw    string
	fields map[string]any
}

// lines returns the complete lines written so far.
func (s *syncBuffer) lines() []logLine {
	text := s.String()
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	} else {
		return nil
	}
	var out []logLine
	for _, raw := range strings.Split(text, "\n") {
		l := logLine{raw: raw}
		if err := json.Unmarshal([]byte(raw), &l.fields); err != nil {
			l.fields = nil
		}
		out = append(out, l)
	}
	return out
}

// find returns the first JSON line for which match is true.
func (s *syncBuffer) find(match func(map[string]any) bool) (map[string]any, bool) {
	for _, l := range s.lines() {
		if l.fields != nil && match(l.fields) {
			return l.fields, true
		}
	}
	return nil, false
}

// waitFor waits up to 5 s for a JSON line for which match is true: the
// access log line is written after the response has gone out.
func (s *syncBuffer) waitFor(t *testing.T, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if f, ok := s.find(match); ok {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line %s within 5s; logs:\n%s", what, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func message(msg string) func(map[string]any) bool {
	return func(f map[string]any) bool { return f["message"] == msg }
}

// startRun runs run(ctx, args, env, logs) in a goroutine and waits (5 s at
// most) for its "listening" line. stop cancels ctx and returns run's error;
// it is also called at cleanup.
func startRun(t *testing.T, env map[string]string, args ...string) (addr string, logs *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs = &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, func(k string) string { return env[k] }, logs) }()

	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(15 * time.Second):
				runErr = errors.New("run did not return within 15s of cancellation")
			}
		})
		return runErr
	}

	deadline := time.After(5 * time.Second)
	for addr == "" {
		if f, ok := logs.find(func(f map[string]any) bool {
			msg := fmt.Sprint(f["message"])
			return strings.Contains(msg, "listening") && !strings.HasPrefix(msg, "admin") && f["addr"] != nil
		}); ok {
			addr, _ = f["addr"].(string)
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("run(%q) returned %v before listening; logs:\n%s", args, err, logs)
		case <-deadline:
			stop()
			t.Fatalf("run(%q) logged no listening line within 5s; logs:\n%s", args, logs)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		stop()
		t.Fatalf("listening addr %q: %v", addr, err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return addr, logs, stop
}

// startServer runs the facade on a free loopback port with env as its
// environment and args after "-addr 127.0.0.1:0".
//
// Tests that point it at a MoneyKit of their own and are not about end-user
// auth run it with MKGRAPH_AUTH=none (the default there is jwt).
func startServer(t *testing.T, env map[string]string, args ...string) (baseURL string, logs *syncBuffer, stop func() error) {
	t.Helper()
	if env["MONEYKIT_BASE_URL"] != "" && env["MKGRAPH_AUTH"] == "" && env["MKGRAPH_ENV"] == "" {
		env = maps.Clone(env)
		env["MKGRAPH_AUTH"] = "none"
	}
	addr, logs, stop := startRun(t, env, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	return "http://" + addr, logs, stop
}

// newClient returns a client of the test's own whose idle connections are
// closed at cleanup, so that no connection goroutine outlives the test.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// result is a read HTTP response.
type result struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, c *http.Client, req *http.Request) result {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return result{resp.StatusCode, resp.Header, body}
}

// get sends a GET with the header that lets GraphQL GETs past CSRF
// prevention, as Apollo Client does.
func get(t *testing.T, c *http.Client, url string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Apollo-Require-Preflight", "true")
	return do(t, c, req)
}

// gqlRequest is a GraphQL POST body.
type gqlRequest struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName,omitempty"`
	Variables     map[string]any `json:"variables,omitempty"`
}

// postGraphQL POSTs q to /graphql with the given header pairs.
func postGraphQL(t *testing.T, c *http.Client, baseURL string, q gqlRequest, header ...string) result {
	t.Helper()
	return postJSON(t, c, baseURL, q, header...)
}

// postJSON POSTs any JSON body to /graphql with the given header pairs.
func postJSON(t *testing.T, c *http.Client, baseURL string, body any, header ...string) result {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, baseURL+"/graphql", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, c, req)
}

// gqlResponse is a GraphQL response document.
type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

func decodeGQL(t *testing.T, r result) gqlResponse {
	t.Helper()
	var g gqlResponse
	if err := json.Unmarshal(r.body, &g); err != nil {
		t.Fatalf("response (HTTP %d) is not a GraphQL document: %v\n%s", r.status, err, r.body)
	}
	return g
}

// errorCodes returns extensions.code of each error.
func (g gqlResponse) errorCodes() []string {
	var codes []string
	for _, e := range g.Errors {
		codes = append(codes, fmt.Sprint(e.Extensions["code"]))
	}
	return codes
}

// linkAllFields selects every field of a link.
const linkAllFields = `id institutionId institutionName institutionAvatar state errorCode provider tags webhook
  products { accounts { refreshedAt lastAttemptedAt errorCode errorMessage unavailable lastEnriched } identity { refreshedAt } transactions { lastEnriched } }
  availableProducts
  accounts { id type name nickname mask balances { currency available current limit balanceDate } originalId closed
    owners { names addresses { street city region postalCode country primary } phoneNumbers { number type primary } emails { address primary } } }`

var seedQuery = `{ link(id: "` + sandbox.LinkSeed + `") { ` + linkAllFields + ` } }`

// checkGolden compares got, indented, with testdata/name, or rewrites the
// file with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	var indented bytes.Buffer
	if err := json.Indent(&indented, got, "", "  "); err != nil {
		t.Fatalf("golden %s: output is not JSON: %v\n%s", name, err, got)
	}
	indented.WriteByte('\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, indented.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), indented.String()); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

func checkJSONContentType(t *testing.T, what string, r result) {
	t.Helper()
	mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		t.Errorf("%s: Content-Type = %q, want application/json", what, r.header.Get("Content-Type"))
	}
	if n := len(r.header.Values("Content-Type")); n != 1 {
		t.Errorf("%s: %d Content-Type headers %q, want one", what, n, r.header.Values("Content-Type"))
	}
}

func checkNoSniff(t *testing.T, what string, r result) {
	t.Helper()
	if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options = %q, want nosniff", what, got)
	}
}

func TestSeedAllFieldsEndToEnd(t *testing.T) {
	baseURL, _, _ := startServer(t, nil)
	c := newClient(t)

	post := postGraphQL(t, c, baseURL, gqlRequest{Query: seedQuery})
	if post.status != http.StatusOK {
		t.Fatalf("POST /graphql: HTTP %d, want 200\n%s", post.status, post.body)
	}
	if g := decodeGQL(t, post); len(g.Errors) > 0 {
		t.Errorf("POST /graphql: errors %s", post.body)
	}
	checkJSONContentType(t, "POST /graphql", post)
	if got := post.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("POST /graphql: Cache-Control = %q, want no-store", got)
	}
	checkNoSniff(t, "POST /graphql", post)
	checkGolden(t, "seed_all_fields.golden", post.body)

	getRes := get(t, c, baseURL+"/graphql?"+url.Values{"query": {seedQuery}}.Encode())
	if getRes.status != http.StatusOK {
		t.Fatalf("GET /graphql: HTTP %d, want 200\n%s", getRes.status, getRes.body)
	}
	checkJSONContentType(t, "GET /graphql", getRes)
	if got := getRes.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("GET /graphql: Cache-Control = %q, want no-store", got)
	}
	checkNoSniff(t, "GET /graphql", getRes)
	if diff := cmp.Diff(string(post.body), string(getRes.body)); diff != "" {
		t.Errorf("GET and POST answers differ (-post +get):\n%s", diff)
	}

	// Every response carries nosniff, whatever the route and status.
	for _, path := range []string{"/", "/healthz", "/readyz", "/no/such/path", "/graphql"} {
		checkNoSniff(t, "GET "+path, get(t, c, baseURL+path))
	}
	req, _ := http.NewRequest(http.MethodOptions, baseURL+"/graphql", nil)
	checkNoSniff(t, "OPTIONS /graphql", do(t, c, req))
}

// recordingUpstream wraps a sandbox and remembers every access token it
// issued or was shown.
type recordingUpstream struct {
	sbx *sandbox.Server
	mu  sync.Mutex
	tok map[string]bool
}

func (u *recordingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		u.add(tok)
	}
	if r.URL.Path != "/auth/token" {
		u.sbx.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	u.sbx.ServeHTTP(rec, r)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(rec.Body.Bytes(), &tr) == nil {
		u.add(tr.AccessToken)
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

func (u *recordingUpstream) add(tok string) {
	if tok == "" {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.tok == nil {
		u.tok = map[string]bool{}
	}
	u.tok[tok] = true
}

func (u *recordingUpstream) tokens() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for tok := range u.tok {
		out = append(out, tok)
	}
	return out
}

// startUpstream serves sbx on an httptest server closed at cleanup (after
// any facade started later in the test has stopped).
func startUpstream(t *testing.T, h http.Handler) string {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestExternalUpstream(t *testing.T) {
	t.Run("valid credentials", func(t *testing.T) {
		sbx := sandbox.New(sandbox.Options{})
		upstreamURL := startUpstream(t, sbx)
		baseURL, logs, _ := startServer(t, map[string]string{
			"MONEYKIT_BASE_URL":      upstreamURL,
			"MONEYKIT_CLIENT_ID":     sandbox.DefaultClientID,
			"MONEYKIT_CLIENT_SECRET": sandbox.DefaultClientSecret,
		})
		c := newClient(t)

		r := postGraphQL(t, c, baseURL, gqlRequest{Query: seedQuery})
		if r.status != http.StatusOK {
			t.Fatalf("HTTP %d, want 200\n%s", r.status, r.body)
		}
		checkGolden(t, "seed_all_fields.golden", r.body)
		if got := sbx.IdentityCallsFor(sandbox.LinkSeed); got != 1 {
			t.Errorf("external sandbox saw %d identity calls for the seed link, want 1", got)
		}
		if _, ok := logs.find(func(f map[string]any) bool { return strings.Contains(fmt.Sprint(f["message"]), "embedded sandbox") }); ok {
			t.Errorf("with MONEYKIT_BASE_URL set, the embedded sandbox was started; logs:\n%s", logs)
		}
	})

	t.Run("wrong credentials", func(t *testing.T) {
		sbx := sandbox.New(sandbox.Options{})
		upstreamURL := startUpstream(t, sbx)
		baseURL, _, _ := startServer(t, map[string]string{
			"MONEYKIT_BASE_URL":      upstreamURL,
			"MONEYKIT_CLIENT_ID":     sandbox.DefaultClientID,
			"MONEYKIT_CLIENT_SECRET": "not-the-secret",
		})
		g := decodeGQL(t, postGraphQL(t, newClient(t), baseURL, gqlRequest{Query: seedQuery}))
		if diff := cmp.Diff([]string{"api_error.auth.unauthorized"}, g.errorCodes()); diff != "" {
			t.Errorf("error codes mismatch (-want +got):\n%s", diff)
		}
		if string(g.Data) != `{"link":null}` {
			t.Errorf("data = %s, want {\"link\":null}", g.Data)
		}
		if sbx.TokenCalls() == 0 {
			t.Errorf("external sandbox saw no token call")
		}
	})
}

func TestRoutes(t *testing.T) {
	baseURL, _, _ := startServer(t, nil)
	c := newClient(t)

	r := get(t, c, baseURL+"/")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !bytes.Contains(r.body, []byte("/graphql")) {
		t.Errorf("GET /: HTTP %d, Content-Type %q, mentions /graphql: %v; want 200, text/html, true",
			r.status, r.header.Get("Content-Type"), bytes.Contains(r.body, []byte("/graphql")))
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if r := get(t, c, baseURL+path); r.status != http.StatusOK {
			t.Errorf("GET %s: HTTP %d, want 200\n%s", path, r.status, r.body)
		}
	}
	if r := get(t, c, baseURL+"/no/such/path"); r.status != http.StatusNotFound {
		t.Errorf("GET /no/such/path: HTTP %d, want 404", r.status)
	}

	noGraphiQL, _, _ := startServer(t, map[string]string{"MKGRAPH_GRAPHIQL": "false"})
	if r := get(t, c, noGraphiQL+"/"); r.status != http.StatusNotFound {
		t.Errorf("MKGRAPH_GRAPHIQL=false: GET /: HTTP %d, want 404", r.status)
	}
	if r := get(t, c, noGraphiQL+"/healthz"); r.status != http.StatusOK {
		t.Errorf("MKGRAPH_GRAPHIQL=false: GET /healthz: HTTP %d, want 200", r.status)
	}
}

var generatedIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

func TestRequestIDAndAccessLog(t *testing.T) {
	baseURL, logs, _ := startServer(t, nil)
	c := newClient(t)
	accessLine := func(id string) func(map[string]any) bool {
		return func(f map[string]any) bool { return f["message"] == "request" && f["request_id"] == id }
	}

	t.Run("well-formed id is kept", func(t *testing.T) {
		const id = "req-42_abc.DEF:9"
		r := postGraphQL(t, c, baseURL, gqlRequest{
			Query:         `query SeedLink { link(id: "` + sandbox.LinkSeed + `") { id } } query Other { link(id: "x") { id } }`,
			OperationName: "SeedLink",
		}, "X-Request-Id", id)
		if r.status != http.StatusOK {
			t.Fatalf("HTTP %d\n%s", r.status, r.body)
		}
		if got := r.header.Get("X-Request-Id"); got != id {
			t.Errorf("X-Request-Id = %q, want %q", got, id)
		}
		f := logs.waitFor(t, "request with id "+id, accessLine(id))
		for k, want := range map[string]any{"method": "POST", "path": "/graphql", "status": 200.0, "operation": "SeedLink"} {
			if f[k] != want {
				t.Errorf("access log %s = %v, want %v; line %v", k, f[k], want, f)
			}
		}
		if d, ok := f["duration"].(float64); !ok || d < 0 {
			t.Errorf("access log duration = %v, want a number", f["duration"])
		}
		if n, ok := f["upstream_calls"].(float64); !ok || n <= 0 {
			t.Errorf("access log upstream_calls = %v, want > 0", f["upstream_calls"])
		}
		if codes, ok := f["error_codes"].([]any); !ok || len(codes) != 0 {
			t.Errorf("access log error_codes = %#v, want []", f["error_codes"])
		}
	})

	t.Run("error codes", func(t *testing.T) {
		const id = "req-unknown-link"
		g := decodeGQL(t, postGraphQL(t, c, baseURL, gqlRequest{Query: `{ link(id: "mk_no_such_link") { id } }`}, "X-Request-Id", id))
		if diff := cmp.Diff([]string{"link_error.not_found"}, g.errorCodes()); diff != "" {
			t.Errorf("response error codes mismatch (-want +got):\n%s", diff)
		}
		f := logs.waitFor(t, "request with id "+id, accessLine(id))
		if diff := cmp.Diff([]any{"link_error.not_found"}, f["error_codes"]); diff != "" {
			t.Errorf("access log error_codes mismatch (-want +got):\n%s", diff)
		}
		if n, ok := f["upstream_calls"].(float64); !ok || n <= 0 {
			t.Errorf("access log upstream_calls = %v, want > 0", f["upstream_calls"])
		}
	})

	for _, hostile := range []string{"a b", "a b\t<script>", strings.Repeat("x", 200), "id/../../etc"} {
		t.Run(fmt.Sprintf("hostile %.20q", hostile), func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, baseURL+"/healthz", nil)
			req.Header.Set("X-Request-Id", hostile)
			r := do(t, c, req)
			got := r.header.Get("X-Request-Id")
			if got == hostile || !generatedIDPattern.MatchString(got) {
				t.Fatalf("X-Request-Id = %q, want a generated id in place of %q", got, hostile)
			}
			f := logs.waitFor(t, "request with id "+got, accessLine(got))
			if f["path"] != "/healthz" || f["status"] != 200.0 {
				t.Errorf("access log line %v, want path /healthz and status 200", f)
			}
			if strings.Contains(logs.String(), hostile) {
				t.Errorf("the hostile id %q reached the log", hostile)
			}
		})
	}

	// Go's client refuses to send a line feed in a header; a raw connection
	// can. The server either refuses the request or replaces the id.
	t.Run("hostile raw line feed", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(baseURL, "http://"), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: a b\n\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		t.Logf("HTTP %d, X-Request-Id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
		switch got := resp.Header.Get("X-Request-Id"); {
		case resp.StatusCode == http.StatusBadRequest:
		case resp.StatusCode == http.StatusOK && generatedIDPattern.MatchString(got) && !strings.Contains(got, " "):
		default:
			t.Errorf("HTTP %d, X-Request-Id %q; want 400, or 200 with a generated id", resp.StatusCode, got)
		}
	})

	t.Run("absent id is generated", func(t *testing.T) {
		r := get(t, c, baseURL+"/readyz")
		if got := r.header.Get("X-Request-Id"); !generatedIDPattern.MatchString(got) {
			t.Errorf("X-Request-Id = %q, want a generated id", got)
		}
	})
}

// piiKeys are the response fields that hold identity data.
var piiKeys = map[string]bool{"names": true, "street": true, "city": true, "postalCode": true, "number": true, "address": true}

// collectPII adds every identity value in a decoded response to out.
func collectPII(v any, key string, out map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			collectPII(x, k, out)
		}
	case []any:
		for _, x := range v {
			collectPII(x, key, out)
		}
	case string:
		if piiKeys[key] {
			out[v] = true
		}
	}
}

// logStrings returns every string value (and key) in the log, decoded; a line
// that is not JSON counts as one string.
func logStrings(logs *syncBuffer) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				out = append(out, k)
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case string:
			out = append(out, v)
		}
	}
	for _, l := range logs.lines() {
		if l.fields == nil {
			out = append(out, l.raw)
			continue
		}
		walk(l.fields)
	}
	return out
}

// TestLogsHoldNoPIIOrSecrets is a contract: at debug level, over every
// fixture and error, nothing of the credentials, the access token or the
// identity data answered reaches the log.
func TestLogsHoldNoPIIOrSecrets(t *testing.T) {
	const clientID, secret = "pii-test-client", "s3cr3t-VALUE-xyz"
	up := &recordingUpstream{sbx: sandbox.New(sandbox.Options{ClientID: clientID, ClientSecret: secret})}
	baseURL, logs, stop := startServer(t, map[string]string{
		"MKGRAPH_LOG_LEVEL":      "debug",
		"MONEYKIT_BASE_URL":      startUpstream(t, up),
		"MONEYKIT_CLIENT_ID":     clientID,
		"MONEYKIT_CLIENT_SECRET": secret,
	})
	c := newClient(t)

	var ids []string
	for _, l := range sandbox.Links() {
		if !l.Fault { // faults carry no new data, and some only time out
			ids = append(ids, l.ID)
		}
	}
	linkQuery := `query One($id: ID!) { link(id: $id) { ` + linkAllFields + ` } }`
	var requests []gqlRequest
	for _, id := range append(ids, "mk_no_such_link", "", strings.Repeat("x", 300), "a\x00b", "..", "../auth/token", "%2F..%2F", "mk_\u202eevil") {
		requests = append(requests, gqlRequest{Query: linkQuery, OperationName: "One", Variables: map[string]any{"id": id}})
	}
	requests = append(requests,
		gqlRequest{Query: `query Many($ids: [ID!]!) { links(ids: $ids) { ` + linkAllFields + ` } }`, Variables: map[string]any{"ids": ids}},
		gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { accounts(ids: ["acc_6Tef269B6ZArSVpYrxtjBV", "nope", ""]) { id owners { names } } } }`},
		gqlRequest{Query: `query One($id: ID!) { link(id: $id) { id } }`, Variables: map[string]any{"id": 42}},
		gqlRequest{Query: `query One($id: ID!) { link(id: $id) { id } }`, Variables: map[string]any{"id": map[string]any{"john": "smith"}}},
		gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { nosuchfield } }`},
		gqlRequest{Query: `{ link(id: `},
		gqlRequest{Query: `{ __schema { types { name } } }`},
	)
	var responses []gqlResponse
	for _, q := range requests {
		r := postGraphQL(t, c, baseURL, q)
		if r.status >= 500 {
			t.Errorf("query %.80q %v: HTTP %d\n%.500s", q.Query, q.Variables, r.status, r.body)
		}
		responses = append(responses, decodeGQL(t, r))
	}
	// GET carries the query in the URL, which the access log must not copy.
	for _, id := range []string{sandbox.LinkSeed, sandbox.LinkInternational} {
		q := `{ link(id: "` + id + `") { ` + linkAllFields + ` } }`
		responses = append(responses, decodeGQL(t, get(t, c, baseURL+"/graphql?"+url.Values{"query": {q}}.Encode())))
	}
	// The access log line of the last request is written after its response: stop
	// the server so that every line is in.
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}

	pii := map[string]bool{}
	for _, g := range responses {
		var data any
		if len(g.Data) > 0 {
			if err := json.Unmarshal(g.Data, &data); err != nil {
				t.Fatal(err)
			}
		}
		collectPII(data, "", pii)
	}
	// The check is only as good as what it looks for.
	for _, want := range []string{"John Smith", "john.smith@example.com", "6175551212", "12 Park Street", "02108", "José Ñúñez García", "Calle de Alcalá 42, 3º Izq.", "Priya Natarajan"} {
		if !pii[want] {
			t.Errorf("identity value %q was not collected from the responses", want)
		}
	}
	if len(pii) < 1000 {
		t.Errorf("collected %d identity values, want > 1000 (LinkLarge)", len(pii))
	}
	tokens := up.tokens()
	if len(tokens) == 0 {
		t.Fatal("no access token was issued: the check of tokens in the log checks nothing")
	}

	text := logs.String()
	for _, s := range append([]string{secret}, tokens...) {
		if strings.Contains(text, s) {
			t.Errorf("the log holds the credential %.12q…", s)
		}
	}
	strs := logStrings(logs)
	for v := range pii {
		for _, s := range strs {
			if strings.Contains(s, v) {
				t.Errorf("the log holds identity value %q in %.200q", v, s)
				break
			}
		}
	}
	if n := strings.Count(text, `"message":"request"`); n < len(requests) {
		t.Errorf("%d access log lines for %d requests: the check saw too little of the log", n, len(requests))
	}
	if !strings.Contains(text, `"message":"upstream call"`) {
		t.Errorf("no debug line: the log level was not debug")
	}

	cfg, ok := logs.find(message("configuration"))
	if !ok {
		t.Fatalf("no configuration line; logs:\n%s", text)
	}
	if cfg["MONEYKIT_CLIENT_SECRET_SET"] != true {
		t.Errorf("configuration MONEYKIT_CLIENT_SECRET_SET = %v, want true", cfg["MONEYKIT_CLIENT_SECRET_SET"])
	}
	if _, ok := cfg["MONEYKIT_CLIENT_SECRET"]; ok {
		t.Errorf("configuration line has a MONEYKIT_CLIENT_SECRET field: %v", cfg)
	}
	if cfg["MONEYKIT_CLIENT_ID"] != clientID {
		t.Errorf("configuration MONEYKIT_CLIENT_ID = %v, want %q", cfg["MONEYKIT_CLIENT_ID"], clientID)
	}
}

// TestConfigLogMasksURLPassword: a password in MONEYKIT_BASE_URL is a
// credential like MONEYKIT_CLIENT_SECRET.
func TestConfigLogMasksURLPassword(t *testing.T) {
	const password = "pa55w0rd-XYZ"
	upstreamURL, err := url.Parse(startUpstream(t, sandbox.New(sandbox.Options{})))
	if err != nil {
		t.Fatal(err)
	}
	upstreamURL.User = url.UserPassword("user", password)
	_, logs, _ := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":      upstreamURL.String(),
		"MONEYKIT_CLIENT_ID":     sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET": sandbox.DefaultClientSecret,
	})
	if strings.Contains(logs.String(), password) {
		t.Errorf("the log holds the password of MONEYKIT_BASE_URL:\n%s", logs)
	}
}

// TestConfigLogMasksRedisSecrets: the Redis password and the encryption
// key never reach the log, even at debug level.
func TestConfigLogMasksRedisSecrets(t *testing.T) {
	const password, key = "redis-PW-4567", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	u, err := url.Parse(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("", password) // refused by a Redis without auth: a warning, still no password
	_, logs, _ := startServer(t, map[string]string{
		"MKGRAPH_REDIS_URL":            u.String(),
		"MKGRAPH_REDIS_ENCRYPTION_KEY": key,
		"MKGRAPH_LOG_LEVEL":            "debug",
	})
	for _, s := range []string{password, key, key[:20]} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the log holds %q:\n%s", s, logs)
		}
	}
	if !strings.Contains(logs.String(), `"MKGRAPH_REDIS_ENCRYPTION_KEY_SET":true`) {
		t.Errorf("the configuration line does not say the key is set:\n%s", logs)
	}
}

// runOnce runs run with a cancelled context: a bad configuration fails at
// once and a good one returns nil after starting, without serving.
func runOnce(args []string, env map[string]string) (string, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out syncBuffer
	err := run(ctx, args, func(k string) string { return env[k] }, &out)
	return out.String(), err
}

func TestConfigErrors(t *testing.T) {
	creds := map[string]string{"MONEYKIT_CLIENT_ID": "id", "MONEYKIT_CLIENT_SECRET": "secret"}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // in the message
	}{
		{name: "log format", env: map[string]string{"MKGRAPH_LOG_FORMAT": "xml"}, want: "MKGRAPH_LOG_FORMAT"},
		{name: "log level", env: map[string]string{"MKGRAPH_LOG_LEVEL": "loud"}, want: "MKGRAPH_LOG_LEVEL"},
		{name: "upstream timeout", env: map[string]string{"MKGRAPH_UPSTREAM_TIMEOUT": "abc"}, want: "MKGRAPH_UPSTREAM_TIMEOUT"},
		{name: "negative timeout", env: map[string]string{"MKGRAPH_REQUEST_TIMEOUT": "-1s"}, want: "MKGRAPH_REQUEST_TIMEOUT"},
		{name: "upstream concurrency", env: map[string]string{"MKGRAPH_UPSTREAM_CONCURRENCY": "0"}, want: "MKGRAPH_UPSTREAM_CONCURRENCY"},
		{name: "max body bytes", env: map[string]string{"MKGRAPH_MAX_BODY_BYTES": "-5"}, want: "MKGRAPH_MAX_BODY_BYTES"},
		{name: "boolean", env: map[string]string{"MKGRAPH_INTROSPECTION": "maybe"}, want: "MKGRAPH_INTROSPECTION"},
		{name: "base URL without credentials", env: map[string]string{"MONEYKIT_BASE_URL": "http://127.0.0.1:1"}, want: "MONEYKIT_CLIENT_SECRET"},
		{name: "base URL with id only", env: map[string]string{"MONEYKIT_BASE_URL": "http://127.0.0.1:1", "MONEYKIT_CLIENT_ID": "id"}, want: "MONEYKIT_CLIENT_SECRET"},
		{name: "secret only", env: map[string]string{"MONEYKIT_CLIENT_SECRET": "secret"}, want: "MONEYKIT_CLIENT_ID"},
		{name: "ftp base URL", env: merge(creds, map[string]string{"MONEYKIT_BASE_URL": "ftp://x"}), want: "MONEYKIT_BASE_URL"},
		{name: "base URL with query", env: merge(creds, map[string]string{"MONEYKIT_BASE_URL": "https://api.example.com/?a=1"}), want: "MONEYKIT_BASE_URL"},
		{name: "address", env: map[string]string{"MKGRAPH_ADDR": "256.0.0.1:99999"}, want: "MKGRAPH_ADDR"},
		{name: "redis URL", env: map[string]string{"MKGRAPH_REDIS_URL": "http://127.0.0.1:6379"}, want: "MKGRAPH_REDIS_URL"},
		{name: "redis key too short", env: map[string]string{"MKGRAPH_REDIS_ENCRYPTION_KEY": "c2hvcnQ="}, want: "MKGRAPH_REDIS_ENCRYPTION_KEY"},
		{name: "redis timeout", env: map[string]string{"MKGRAPH_REDIS_TIMEOUT": "0s"}, want: "MKGRAPH_REDIS_TIMEOUT"},
		{name: "unknown flag", args: []string{"-no-such-flag"}, want: "no-such-flag"},
		{name: "bad flag value", args: []string{"-log-level", "loud"}, want: "log-level"},
		{name: "positional argument", args: []string{"serve"}, want: "serve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := merge(map[string]string{"MKGRAPH_ADDR": "127.0.0.1:0"}, tt.env)
			_, err := runOnce(tt.args, env)
			var ce *configError
			if !errors.As(err, &ce) {
				t.Fatalf("run(%q, %v) = %v (%T), want a *configError", tt.args, tt.env, err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q, %v) = %q, want a message naming %s", tt.args, tt.env, err, tt.want)
			}
		})
	}

	// The same runner accepts a good configuration, so the cases above can fail.
	if out, err := runOnce(nil, map[string]string{"MKGRAPH_ADDR": "127.0.0.1:0"}); err != nil {
		t.Errorf("run with a good configuration = %v; output:\n%s", err, out)
	}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func TestConfigErrorMasksSecret(t *testing.T) {
	const secret = "s3cr3t-VALUE-xyz"
	tests := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{name: "bad base URL", env: map[string]string{"MONEYKIT_BASE_URL": "ftp://x", "MONEYKIT_CLIENT_ID": "id", "MONEYKIT_CLIENT_SECRET": secret}},
		{name: "secret without id", env: map[string]string{"MONEYKIT_BASE_URL": "https://api.example.com", "MONEYKIT_CLIENT_SECRET": secret}},
		{name: "other bad setting", env: map[string]string{"MONEYKIT_CLIENT_ID": "id", "MONEYKIT_CLIENT_SECRET": secret, "MKGRAPH_LOG_LEVEL": "loud"}},
		{name: "secret flag and unknown flag", args: []string{"-moneykit-client-id", "id", "-moneykit-client-secret", secret, "-no-such-flag"}},
		{name: "password in base URL", env: map[string]string{"MONEYKIT_BASE_URL": "https://user:" + secret + "@api.example.com/?a=1", "MONEYKIT_CLIENT_ID": "id", "MONEYKIT_CLIENT_SECRET": "other"}},
		{name: "password in a bad Redis URL", env: map[string]string{"MKGRAPH_REDIS_URL": "redis://:" + secret + "@[::1"}},
		{name: "bad Redis encryption key", env: map[string]string{"MKGRAPH_REDIS_ENCRYPTION_KEY": secret}},
		{name: "good Redis key, other bad setting", env: map[string]string{"MKGRAPH_REDIS_ENCRYPTION_KEY": secret + "-0123456789abcdefghijklm=", "MKGRAPH_LOG_LEVEL": "loud"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := merge(map[string]string{"MKGRAPH_ADDR": "127.0.0.1:0"}, tt.env)
			out, err := runOnce(tt.args, env)
			if !errors.As(err, new(*configError)) {
				t.Fatalf("run = %v, want a *configError", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error %q holds the secret", err)
			}
			if strings.Contains(out, secret) {
				t.Errorf("the output holds the secret:\n%s", out)
			}
		})
	}
}

func TestFlagsOverrideEnv(t *testing.T) {
	threeIDs := gqlRequest{Query: `{ links(ids: ["` + sandbox.LinkSeed + `", "` + sandbox.LinkSeed + `", "` + sandbox.LinkSparse + `"]) { id } }`}
	env := map[string]string{"MKGRAPH_MAX_LINK_IDS": "5"}
	c := newClient(t)

	envOnly, _, _ := startServer(t, env)
	if g := decodeGQL(t, postGraphQL(t, c, envOnly, threeIDs)); len(g.Errors) > 0 {
		t.Errorf("MKGRAPH_MAX_LINK_IDS=5, 3 ids: errors %v, want none", g.errorCodes())
	}

	flagged, logs, _ := startServer(t, env, "-max-link-ids", "2")
	g := decodeGQL(t, postGraphQL(t, c, flagged, threeIDs))
	if diff := cmp.Diff([]string{"facade.too_many_link_ids"}, g.errorCodes()); diff != "" {
		t.Errorf("MKGRAPH_MAX_LINK_IDS=5 -max-link-ids 2, 3 ids: error codes mismatch (-want +got):\n%s", diff)
	}
	if f, _ := logs.find(message("configuration")); f["MKGRAPH_MAX_LINK_IDS"] != "2" {
		t.Errorf("configuration MKGRAPH_MAX_LINK_IDS = %v, want 2", f["MKGRAPH_MAX_LINK_IDS"])
	}
}

// TestMainExitStatus re-executes the test binary to call main() with a
// configuration from the environment and checks its exit status.
func TestMainExitStatus(t *testing.T) {
	if os.Getenv(callMainEnv) == "1" {
		args := []string{os.Args[0]}
		if extra := os.Getenv(callMainEnv + "_ARGS"); extra != "" {
			args = append(args, strings.Fields(extra)...)
		}
		os.Args = args
		main()
		return
	}
	tests := []struct {
		name     string
		env      []string
		want     int
		inStderr string
	}{
		{"bad config", []string{"MKGRAPH_LOG_FORMAT=xml"}, 2, "MKGRAPH_LOG_FORMAT"},
		{"unknown flag", []string{callMainEnv + "_ARGS=-no-such-flag"}, 2, "no-such-flag"},
		{"help", []string{callMainEnv + "_ARGS=-h"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMainExitStatus$", "-test.count=1")
			cmd.Env = append(os.Environ(), append([]string{
				callMainEnv + "=1",
				"MKGRAPH_ADDR=127.0.0.1:0",
				// A race-enabled binary otherwise sleeps 1s before a clean exit.
				"GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"),
			}, tt.env...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.want {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, tt.want, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.inStderr) {
				t.Errorf("stderr %q does not name %s", stderr.String(), tt.inStderr)
			}
		})
	}
}

func TestGracefulShutdown(t *testing.T) {
	baseURL, logs, stop := startServer(t, map[string]string{"MKGRAPH_SANDBOX_LATENCY": "300ms"})
	c := newClient(t)
	addr := strings.TrimPrefix(baseURL, "http://")

	type answer struct {
		r   result
		err error
	}
	answered := make(chan answer, 1)
	wrote := make(chan struct{})
	go func() {
		body, _ := json.Marshal(gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id accounts { owners { names } } } }`})
		trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(wrote) }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodPost, baseURL+"/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		answered <- answer{r: result{resp.StatusCode, resp.Header, b}, err: err}
	}()
	// Once the request is sent, the handler waits 300ms in the sandbox: stop
	// the server while it does.
	select {
	case <-wrote:
	case <-time.After(5 * time.Second):
		t.Fatal("the request was not sent")
	}
	time.Sleep(50 * time.Millisecond)

	type stopped struct {
		err  error
		took time.Duration
	}
	stoppedc := make(chan stopped, 1)
	go func() {
		start := time.Now()
		err := stop()
		stoppedc <- stopped{err, time.Since(start)}
	}()

	var a answer
	select {
	case a = <-answered:
	case <-time.After(10 * time.Second):
		t.Fatal("the in-flight query did not complete")
	}
	if a.err != nil {
		t.Fatalf("in-flight query: %v", a.err)
	}
	if a.r.status != http.StatusOK {
		t.Fatalf("in-flight query: HTTP %d, want 200\n%s", a.r.status, a.r.body)
	}
	g := decodeGQL(t, a.r)
	if len(g.Errors) > 0 || !bytes.Contains(g.Data, []byte(sandbox.LinkSeed)) {
		t.Errorf("in-flight query answered %s, want the link without errors", a.r.body)
	}
	var st stopped
	select {
	case st = <-stoppedc:
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return")
	}
	if st.err != nil {
		t.Errorf("run = %v, want nil", st.err)
	}
	// The query had about 250ms to go when the context was cancelled.
	if st.took < 100*time.Millisecond {
		t.Errorf("run returned %v after cancellation: it did not wait for the in-flight query", st.took)
	}
	for _, msg := range []string{"shutting down: finishing in-flight requests", "stopped"} {
		if _, ok := logs.find(message(msg)); !ok {
			t.Errorf("no %q line; logs:\n%s", msg, logs)
		}
	}
	c.CloseIdleConnections()
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after run returned", addr)
	}
}

func TestRequestTimeout(t *testing.T) {
	baseURL, logs, _ := startServer(t, map[string]string{"MKGRAPH_SANDBOX_LATENCY": "2s", "MKGRAPH_REQUEST_TIMEOUT": "150ms"})
	start := time.Now()
	r := postGraphQL(t, newClient(t), baseURL, gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id } }`}, "X-Request-Id", "req-timeout")
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("answered after %v, want about MKGRAPH_REQUEST_TIMEOUT (150ms)", elapsed)
	}
	if diff := cmp.Diff([]string{"facade.upstream_timeout"}, decodeGQL(t, r).errorCodes()); diff != "" {
		t.Errorf("error codes mismatch (-want +got):\n%s", diff)
	}
	f := logs.waitFor(t, "request req-timeout", func(f map[string]any) bool { return f["message"] == "request" && f["request_id"] == "req-timeout" })
	if diff := cmp.Diff([]any{"facade.upstream_timeout"}, f["error_codes"]); diff != "" {
		t.Errorf("access log error_codes mismatch (-want +got):\n%s", diff)
	}
}

// TestRequestDeadlineBeforeExecution: a request whose deadline has passed
// before execution starts must still get a GraphQL error document.
func TestRequestDeadlineBeforeExecution(t *testing.T) {
	baseURL, _, _ := startServer(t, map[string]string{"MKGRAPH_REQUEST_TIMEOUT": "1ns"})
	r := postGraphQL(t, newClient(t), baseURL, gqlRequest{Query: seedQuery})
	if diff := cmp.Diff([]string{"facade.upstream_timeout"}, decodeGQL(t, r).errorCodes()); diff != "" {
		t.Errorf("HTTP %d %s: error codes mismatch (-want +got):\n%s", r.status, r.body, diff)
	}
}

// TestZeroRequestTimeout: MKGRAPH_REQUEST_TIMEOUT=0s must either be refused
// at start or mean no deadline; it must not break every request.
func TestZeroRequestTimeout(t *testing.T) {
	env := map[string]string{"MKGRAPH_REQUEST_TIMEOUT": "0s"}
	if _, err := runOnce(nil, merge(env, map[string]string{"MKGRAPH_ADDR": "127.0.0.1:0"})); errors.As(err, new(*configError)) {
		return // refused at start: fine
	}
	baseURL, _, _ := startServer(t, env)
	r := postGraphQL(t, newClient(t), baseURL, gqlRequest{Query: seedQuery})
	if g := decodeGQL(t, r); r.status != http.StatusOK || len(g.Errors) > 0 || !bytes.Contains(g.Data, []byte(sandbox.LinkSeed)) {
		t.Errorf("MKGRAPH_REQUEST_TIMEOUT=0s accepted, but the seed query answered HTTP %d %.300s", r.status, r.body)
	}
}

// TestGraphQLErrorResponsesAreJSON: every /graphql answer is a JSON GraphQL
// document, labelled as one.
func TestGraphQLErrorResponsesAreJSON(t *testing.T) {
	baseURL, _, _ := startServer(t, nil)
	c := newClient(t)
	for _, tc := range []struct{ method, contentType string }{
		{http.MethodPost, "application/json"},
		{http.MethodPut, "application/json"},
		{http.MethodPost, "text/plain"},
	} {
		req, _ := http.NewRequest(tc.method, baseURL+"/graphql", strings.NewReader(`{"query":"{ nosuchfield }"}`))
		req.Header.Set("Content-Type", tc.contentType)
		r := do(t, c, req)
		if r.status >= 500 {
			t.Errorf("%s %s: HTTP %d", tc.method, tc.contentType, r.status)
		}
		if len(decodeGQL(t, r).Errors) == 0 {
			t.Errorf("%s %s: no errors in %s", tc.method, tc.contentType, r.body)
		}
		checkJSONContentType(t, tc.method+" "+tc.contentType, r)
	}
}

func TestBodyLimit(t *testing.T) {
	baseURL, _, _ := startServer(t, nil)
	c := newClient(t)

	// bigQuery is a valid request of n bytes.
	bigQuery := func(n int) []byte {
		b, _ := json.Marshal(gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id } }`})
		return append(b[:len(b)-1], append(bytes.Repeat([]byte(" "), n-len(b)), '}')...)
	}
	check413 := func(t *testing.T, r result) {
		t.Helper()
		if r.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("HTTP %d, want 413\n%.300s", r.status, r.body)
		}
		checkJSONContentType(t, "413", r)
		checkNoSniff(t, "413", r)
		if diff := cmp.Diff([]string{"facade.query_too_large"}, decodeGQL(t, r).errorCodes()); diff != "" {
			t.Errorf("error codes mismatch (-want +got):\n%s", diff)
		}
	}
	post := func(t *testing.T, url string, body io.Reader, length int64) result {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, url+"/graphql", body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = length
		req.Header.Set("Content-Type", "application/json")
		return do(t, c, req)
	}

	t.Run("2 MiB with length", func(t *testing.T) {
		body := bigQuery(2 << 20)
		check413(t, post(t, baseURL, bytes.NewReader(body), int64(len(body))))
	})
	t.Run("2 MiB chunked", func(t *testing.T) {
		body := bigQuery(2 << 20)
		check413(t, post(t, baseURL, io.MultiReader(bytes.NewReader(body)), -1))
	})
	t.Run("just under the limit", func(t *testing.T) {
		body := bigQuery(1<<20 - 10)
		if r := post(t, baseURL, bytes.NewReader(body), int64(len(body))); r.status != http.StatusOK {
			t.Errorf("a body of %d bytes: HTTP %d, want 200\n%.300s", len(body), r.status, r.body)
		}
	})

	t.Run("MKGRAPH_MAX_BODY_BYTES", func(t *testing.T) {
		small, _, _ := startServer(t, map[string]string{"MKGRAPH_MAX_BODY_BYTES": "1000"})
		body := bigQuery(1001)
		check413(t, post(t, small, bytes.NewReader(body), int64(len(body))))
		check413(t, post(t, small, io.MultiReader(bytes.NewReader(body)), -1))
		body = bigQuery(1000)
		if r := post(t, small, io.MultiReader(bytes.NewReader(body)), -1); r.status != http.StatusOK {
			t.Errorf("a chunked body of 1000 bytes: HTTP %d, want 200\n%.300s", r.status, r.body)
		}
	})

	for _, body := range []string{`{"query": "{ link(id: \"x\") { id } }"`, `not json`, `{"query": 5}`, `[]`, ``} {
		t.Run(fmt.Sprintf("malformed %q", body), func(t *testing.T) {
			r := post(t, baseURL, strings.NewReader(body), int64(len(body)))
			if r.status >= 500 || r.status == http.StatusOK && len(decodeGQL(t, r).Errors) == 0 {
				t.Fatalf("HTTP %d, want an error response below 500\n%s", r.status, r.body)
			}
			checkJSONContentType(t, "malformed", r)
			if g := decodeGQL(t, r); len(g.Errors) == 0 {
				t.Errorf("no errors in %s", r.body)
			}
		})
	}
}

func TestSandboxSubcommand(t *testing.T) {
	addr, logs, _ := startRun(t, nil, "sandbox", "-addr", "127.0.0.1:0")
	if _, ok := logs.find(func(f map[string]any) bool { return f["addr"] == addr && f["client_id"] == sandbox.DefaultClientID }); !ok {
		t.Errorf("no listening line with addr and client_id; logs:\n%s", logs)
	}
	c := newClient(t)
	token := func(id, secret string) result {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/auth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return do(t, c, req)
	}
	r := token(sandbox.DefaultClientID, sandbox.DefaultClientSecret)
	if r.status != http.StatusCreated {
		t.Fatalf("POST /auth/token: HTTP %d, want 201\n%s", r.status, r.body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(r.body, &tr); err != nil || tr.AccessToken == "" {
		t.Errorf("POST /auth/token: no access_token in %s", r.body)
	}
	if r := token(sandbox.DefaultClientID, "wrong"); r.status != http.StatusUnauthorized {
		t.Errorf("POST /auth/token with a wrong secret: HTTP %d, want 401", r.status)
	}
	if strings.Contains(logs.String(), sandbox.DefaultClientSecret) {
		t.Errorf("the sandbox logged its client secret:\n%s", logs)
	}
}

// TestReadyzRefusedCredentials: while MoneyKit refuses the credentials, the
// instance is alive but not ready, so a load balancer sends traffic elsewhere.
func TestReadyzRefusedCredentials(t *testing.T) {
	baseURL, _, _ := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":      startUpstream(t, sandbox.New(sandbox.Options{})),
		"MONEYKIT_CLIENT_ID":     sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET": "wrong-secret-value",
	})
	c := newClient(t)
	get := func(path string) result {
		req, _ := http.NewRequest(http.MethodGet, baseURL+path, nil)
		return do(t, c, req)
	}
	if r := get("/readyz"); r.status != http.StatusOK {
		t.Fatalf("/readyz before any call: %d, want 200", r.status)
	}
	postGraphQL(t, c, baseURL, gqlRequest{Query: seedQuery})
	r := get("/readyz")
	if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "api_error.auth.unauthorized") || strings.Contains(string(r.body), "wrong-secret") {
		t.Errorf("/readyz with refused credentials: %d %q, want 503 naming api_error.auth.unauthorized", r.status, r.body)
	}
	if r := get("/healthz"); r.status != http.StatusOK {
		t.Errorf("/healthz: %d, want 200 (alive, just not ready)", r.status)
	}
}

// TestIdentityBudget: against MoneyKit (here a sandbox on its own port) the
// facade keeps MoneyKit's 3 identity calls per link per minute itself: the
// 4th read is refused locally with a retryAfter, not spent upstream. The
// embedded sandbox has no budget by default, and the settings change both.
func TestIdentityBudget(t *testing.T) {
	q := gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id } }`}
	tests := []struct {
		name      string
		external  bool
		env       map[string]string
		reads     int
		wantCalls int // upstream identity calls (external only)
		refused   int // reads answered api_error.rate_limit_exceeded
	}{
		{"MoneyKit default: 3 per link", true, nil, 5, 3, 2},
		{"per-link budget raised", true, map[string]string{"MKGRAPH_IDENTITY_BUDGET_PER_LINK": "10"}, 5, 5, 0},
		{"app budget", true, map[string]string{"MKGRAPH_IDENTITY_BUDGET_PER_APP": "2"}, 4, 2, 2},
		{"budgets off", true, map[string]string{"MKGRAPH_IDENTITY_BUDGET_PER_LINK": "0", "MKGRAPH_IDENTITY_BUDGET_PER_APP": "0"}, 5, 5, 0},
		{"embedded sandbox: none by default", false, nil, 5, 0, 0},
		{"embedded sandbox: set explicitly", false, map[string]string{"MKGRAPH_IDENTITY_BUDGET_PER_LINK": "1"}, 3, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"MKGRAPH_CACHE_TTL": "0s"} // every read asks the upstream
			for k, v := range tt.env {
				env[k] = v
			}
			sbx := sandbox.New(sandbox.Options{})
			if tt.external {
				env["MONEYKIT_BASE_URL"] = startUpstream(t, sbx)
				env["MONEYKIT_CLIENT_ID"] = sandbox.DefaultClientID
				env["MONEYKIT_CLIENT_SECRET"] = sandbox.DefaultClientSecret
			}
			baseURL, _, _ := startServer(t, env)
			c := newClient(t)
			refused := 0
			for range tt.reads {
				g := decodeGQL(t, postGraphQL(t, c, baseURL, q))
				if len(g.Errors) == 0 {
					continue
				}
				e := g.Errors[0]
				if e.Extensions["code"] != "api_error.rate_limit_exceeded" || e.Extensions["retryAfter"] == nil {
					t.Fatalf("unexpected error %+v", e)
				}
				refused++
			}
			if refused != tt.refused {
				t.Errorf("%d of %d reads refused, want %d", refused, tt.reads, tt.refused)
			}
			if tt.external && sbx.IdentityCalls() != tt.wantCalls {
				t.Errorf("upstream identity calls = %d, want %d", sbx.IdentityCalls(), tt.wantCalls)
			}
		})
	}
}

// TestClientDisconnectCancelsUpstream: a frontend that gives up (closes the
// connection) cancels the upstream call it caused, rather than leaving it to
// run to its own timeout.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	sbx := sandbox.New(sandbox.Options{})
	sbx.SetFault(sandbox.LinkSeed, sandbox.Fault{Hang: true}, 0)
	cancelled := make(chan time.Duration, 1)
	upstreamURL := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sbx.ServeHTTP(w, r)
		if strings.HasSuffix(r.URL.Path, "/identity") && r.Context().Err() != nil {
			cancelled <- time.Since(start)
		}
	}))
	baseURL, _, _ := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":        upstreamURL,
		"MONEYKIT_CLIENT_ID":       sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET":   sandbox.DefaultClientSecret,
		"MKGRAPH_UPSTREAM_TIMEOUT": "10s",
	})
	c := &http.Client{Transport: &http.Transport{}, Timeout: 300 * time.Millisecond}
	t.Cleanup(c.CloseIdleConnections)
	body := strings.NewReader(`{"query":"{ link(id: \"` + sandbox.LinkSeed + `\") { id } }"}`)
	if _, err := c.Post(baseURL+"/graphql", "application/json", body); err == nil {
		t.Fatal("the query answered although its upstream hangs")
	}
	select {
	case d := <-cancelled:
		if d > 2*time.Second {
			t.Errorf("upstream call cancelled after %v, want soon after the client left at 300ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream call was not cancelled when the client disconnected")
	}
}

// signHS256 makes an end-user token for the test secret.
func signHS256(t *testing.T, secret, sub string, links []string, ttl time.Duration) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "link_ids": links, "exp": time.Now().Add(ttl).Unix(), "iat": time.Now().Unix(),
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestAuthEndToEnd: end users read their own links and nothing else, with no
// upstream call for another's; backends read any link; a missing or bad
// credential is a 401. Two users whose link sets differ read concurrently
// and never see each other's data.
func TestAuthEndToEnd(t *testing.T) {
	const secret = "an-hs256-secret-of-at-least-32-bytes!!"
	sbx := sandbox.New(sandbox.Options{})
	keys := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keys, []byte("bff "+auth.HashAPIKey("bff-key-value")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	baseURL, logs, _ := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":                startUpstream(t, sbx),
		"MONEYKIT_CLIENT_ID":               sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET":           sandbox.DefaultClientSecret,
		"MKGRAPH_AUTH":                     "jwt",
		"MKGRAPH_JWT_HS256_SECRET":         secret,
		"MKGRAPH_API_KEYS_FILE":            keys,
		"MKGRAPH_IDENTITY_BUDGET_PER_LINK": "0",
		"MKGRAPH_IDENTITY_BUDGET_PER_APP":  "0",
		"MKGRAPH_USER_RATE_LIMIT":          "100000",
	})
	c := newClient(t)
	alice := signHS256(t, secret, "alice", []string{sandbox.LinkSeed}, time.Hour)
	bob := signHS256(t, secret, "bob", []string{sandbox.LinkHousehold}, time.Hour)
	query := func(header, value, id string) gqlResponse {
		t.Helper()
		r := postGraphQL(t, c, baseURL, gqlRequest{Query: `{ link(id: "` + id + `") { id accounts { owners { names } } } }`}, header, value)
		return decodeGQL(t, r)
	}

	if g := query("Authorization", "Bearer "+alice, sandbox.LinkSeed); len(g.Errors) > 0 || !bytes.Contains(g.Data, []byte("John Smith")) {
		t.Errorf("alice reading her link: %s %+v", g.Data, g.Errors)
	}
	before := sbx.IdentityCallsFor(sandbox.LinkHousehold)
	if g := query("Authorization", "Bearer "+alice, sandbox.LinkHousehold); len(g.Errors) != 1 || g.Errors[0].Extensions["code"] != "facade.forbidden" {
		t.Errorf("alice reading bob's link: %s %+v, want facade.forbidden", g.Data, g.Errors)
	}
	if sbx.IdentityCallsFor(sandbox.LinkHousehold) != before {
		t.Errorf("a forbidden read reached the upstream")
	}
	if g := query("X-Api-Key", "bff-key-value", sandbox.LinkHousehold); len(g.Errors) > 0 {
		t.Errorf("backend reading any link: %+v", g.Errors)
	}
	for _, tc := range []struct{ header, value string }{
		{"", ""},
		{"Authorization", "Bearer not-a-jwt"},
		{"Authorization", "Bearer " + signHS256(t, "another-secret-another-secret-another!!", "eve", []string{sandbox.LinkSeed}, time.Hour)},
		{"Authorization", "Bearer " + signHS256(t, secret, "alice", []string{sandbox.LinkSeed}, -time.Hour)},
		{"X-Api-Key", "wrong-key"},
	} {
		var header []string
		if tc.header != "" {
			header = []string{tc.header, tc.value}
		}
		r := postGraphQL(t, c, baseURL, gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id } }`}, header...)
		if g := decodeGQL(t, r); r.status != http.StatusUnauthorized || len(g.Errors) != 1 || g.Errors[0].Extensions["code"] != "facade.unauthenticated" {
			t.Errorf("%s %.20q: HTTP %d %s, want 401 facade.unauthenticated", tc.header, tc.value, r.status, r.body)
		}
	}

	// Concurrent readers with different link sets see only their own data.
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			tok, own, other, name := alice, sandbox.LinkSeed, sandbox.LinkHousehold, "John Smith"
			if i%2 == 1 {
				tok, own, other, name = bob, sandbox.LinkHousehold, sandbox.LinkSeed, "Alice M. Rivera"
			}
			r := postGraphQL(t, c, baseURL, gqlRequest{Query: `{ mine: link(id: "` + own + `") { accounts { owners { names } } }
				theirs: link(id: "` + other + `") { accounts { owners { names } } } }`}, "Authorization", "Bearer "+tok)
			g := decodeGQL(t, r)
			if !bytes.Contains(g.Data, []byte(name)) || !bytes.Contains(g.Data, []byte(`"theirs":null`)) || len(g.Errors) != 1 {
				t.Errorf("reader %d: %s %+v", i, g.Data, g.Errors)
			}
			if strings.Contains(string(g.Data), map[bool]string{true: "John Smith", false: "Alice M. Rivera"}[i%2 == 1]) {
				t.Errorf("reader %d saw the other user's data: %s", i, g.Data)
			}
		})
	}
	wg.Wait()
	for _, secretValue := range []string{secret, "bff-key-value", alice, bob} {
		if strings.Contains(logs.String(), secretValue) {
			t.Errorf("a credential reached the log")
		}
	}
}

// TestCallerRateLimit: each end user has a request budget of its own; past it
// the answer is HTTP 429 with a retryAfter, and other users are unaffected.
func TestCallerRateLimit(t *testing.T) {
	const secret = "an-hs256-secret-of-at-least-32-bytes!!"
	baseURL, _, _ := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":        startUpstream(t, sandbox.New(sandbox.Options{})),
		"MONEYKIT_CLIENT_ID":       sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET":   sandbox.DefaultClientSecret,
		"MKGRAPH_AUTH":             "jwt",
		"MKGRAPH_JWT_HS256_SECRET": secret,
		"MKGRAPH_USER_RATE_LIMIT":  "6", // burst 1
	})
	c := newClient(t)
	q := gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id } }`}
	alice := "Bearer " + signHS256(t, secret, "alice", []string{sandbox.LinkSeed}, time.Hour)
	bob := "Bearer " + signHS256(t, secret, "bob", []string{sandbox.LinkSeed}, time.Hour)
	if r := postGraphQL(t, c, baseURL, q, "Authorization", alice); r.status != http.StatusOK {
		t.Fatalf("first request: HTTP %d %s", r.status, r.body)
	}
	r := postGraphQL(t, c, baseURL, q, "Authorization", alice)
	g := decodeGQL(t, r)
	if r.status != http.StatusTooManyRequests || len(g.Errors) != 1 || g.Errors[0].Extensions["code"] != "facade.rate_limit_exceeded" ||
		g.Errors[0].Extensions["retryAfter"] == nil || r.header.Get("Retry-After") == "" {
		t.Errorf("second request at once: HTTP %d %s (Retry-After %q), want 429 facade.rate_limit_exceeded with retryAfter", r.status, r.body, r.header.Get("Retry-After"))
	}
	if r := postGraphQL(t, c, baseURL, q, "Authorization", bob); r.status != http.StatusOK {
		t.Errorf("another user: HTTP %d, want 200 (budgets are per caller)", r.status)
	}
}

// TestProductionMode: one setting turns introspection, GraphiQL and field
// suggestions off, requires auth and refuses the sandbox; each can still be
// set on its own.
func TestProductionMode(t *testing.T) {
	if _, err := runOnce(nil, map[string]string{"MKGRAPH_ENV": "production", "MKGRAPH_ADDR": "127.0.0.1:0"}); !errors.As(err, new(*configError)) {
		t.Errorf("production with the embedded sandbox: %v, want a configuration error", err)
	}
	const secret = "an-hs256-secret-of-at-least-32-bytes!!"
	env := map[string]string{
		"MKGRAPH_ENV":              "production",
		"MONEYKIT_BASE_URL":        startUpstream(t, sandbox.New(sandbox.Options{})),
		"MONEYKIT_CLIENT_ID":       sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET":   sandbox.DefaultClientSecret,
		"MKGRAPH_JWT_HS256_SECRET": secret,
	}
	if _, err := runOnce(nil, merge(env, map[string]string{"MKGRAPH_ADDR": "127.0.0.1:0", "MKGRAPH_AUTH": "none"})); !errors.As(err, new(*configError)) {
		t.Errorf("production with MKGRAPH_AUTH=none: %v, want a configuration error", err)
	}
	if _, err := runOnce(nil, merge(env, map[string]string{"MKGRAPH_ADDR": "127.0.0.1:0", "MKGRAPH_JWT_HS256_SECRET": ""})); !errors.As(err, new(*configError)) {
		t.Errorf("production without any auth key: %v, want a configuration error", err)
	}
	baseURL, logs, _ := startServer(t, env)
	c := newClient(t)
	tok := "Bearer " + signHS256(t, secret, "alice", []string{sandbox.LinkSeed}, time.Hour)
	if r := postGraphQL(t, c, baseURL, gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id } }`}); r.status != http.StatusUnauthorized {
		t.Errorf("no credentials in production: HTTP %d, want 401", r.status)
	}
	r := postGraphQL(t, c, baseURL, gqlRequest{Query: `{ __schema { types { name } } }`}, "Authorization", tok)
	if g := decodeGQL(t, r); len(g.Errors) == 0 || bytes.Contains(r.body, []byte(`"types"`)) {
		t.Errorf("introspection in production: %s, want refused", r.body)
	}
	r = postGraphQL(t, c, baseURL, gqlRequest{Query: `{ link(id: "x") { institutionNam } }`}, "Authorization", tok)
	if bytes.Contains(r.body, []byte("Did you mean")) {
		t.Errorf("field suggestion in production: %s", r.body)
	}
	if r := get(t, c, baseURL+"/"); r.status != http.StatusNotFound {
		t.Errorf("GraphiQL in production: HTTP %d, want 404", r.status)
	}
	if !strings.Contains(logs.String(), `"MKGRAPH_ENV":"production"`) || strings.Contains(logs.String(), secret) {
		t.Errorf("start-up log should print the effective settings without secrets")
	}

	// Each can be set on its own.
	baseURL, _, _ = startServer(t, merge(env, map[string]string{"MKGRAPH_INTROSPECTION": "true"}))
	r = postGraphQL(t, c, baseURL, gqlRequest{Query: `{ __schema { queryType { name } } }`}, "Authorization", tok)
	if g := decodeGQL(t, r); len(g.Errors) > 0 {
		t.Errorf("introspection switched on in production: %s", r.body)
	}
}

func TestHashKeySubcommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"hash-key", "bff", "k3y"}, func(string) string { return "" }, &out); err != nil {
		t.Fatal(err)
	}
	if want := "bff " + auth.HashAPIKey("k3y") + "\n"; out.String() != want || strings.Contains(out.String(), "k3y") {
		t.Errorf("hash-key printed %q, want %q", out.String(), want)
	}
	if err := run(t.Context(), []string{"hash-key", "only-name"}, func(string) string { return "" }, &out); !errors.As(err, new(*configError)) {
		t.Errorf("hash-key without a key: %v, want a usage error", err)
	}
}

// TestBrowserSafety: CORS answers only listed origins, CSRF refuses what a
// browser could send cross-site without a preflight, and turning auth off
// with a real upstream is logged loudly.
func TestBrowserSafety(t *testing.T) {
	baseURL, logs, _ := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":      startUpstream(t, sandbox.New(sandbox.Options{})),
		"MONEYKIT_CLIENT_ID":     sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET": sandbox.DefaultClientSecret,
		"MKGRAPH_AUTH":           "none",
		"MKGRAPH_CORS_ORIGINS":   "https://app.example.com",
	})
	if !strings.Contains(logs.String(), "AUTHENTICATION IS OFF") {
		t.Errorf("MKGRAPH_AUTH=none with a real upstream was not logged loudly")
	}
	c := newClient(t)
	preflight := func(origin string) result {
		req, _ := http.NewRequest(http.MethodOptions, baseURL+"/graphql", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type") // as browsers send it: lower case, sorted
		return do(t, c, req)
	}
	if r := preflight("https://app.example.com"); r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || r.header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("preflight from a listed origin: %d %v", r.status, r.header)
	}
	if r := preflight("https://evil.example.net"); r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("preflight from another origin got CORS headers: %v", r.header)
	}
	req, _ := http.NewRequest(http.MethodPost, baseURL+"/graphql", strings.NewReader(`{"query":"{ __typename }"}`))
	req.Header.Set("Content-Type", "text/plain")
	if r := do(t, c, req); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "facade.csrf_refused") {
		t.Errorf("text/plain POST: %d %s, want 400 facade.csrf_refused", r.status, r.body)
	}
	req, _ = http.NewRequest(http.MethodGet, baseURL+"/graphql?query=%7B__typename%7D", nil)
	if r := do(t, c, req); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "facade.csrf_refused") {
		t.Errorf("GET without a preflight header: %d %s, want 400 facade.csrf_refused", r.status, r.body)
	}
}

// TestAdminMetrics: the admin listener serves Prometheus metrics that move
// with traffic and never carry a link id; the public listener does not.
func TestAdminMetrics(t *testing.T) {
	baseURL, logs, _ := startServer(t, map[string]string{"MKGRAPH_ADMIN_ADDR": "127.0.0.1:0"})
	var adminAddr string
	for _, line := range strings.Split(logs.String(), "\n") {
		var l struct{ Message, Addr string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Message == "admin listening" {
			adminAddr = l.Addr
		}
	}
	if adminAddr == "" {
		t.Fatalf("no admin listening line in %s", logs)
	}
	c := newClient(t)
	postGraphQL(t, c, baseURL, gqlRequest{Query: `query Profile { link(id: "` + sandbox.LinkSeed + `") { id } }`, OperationName: "Profile"})
	postGraphQL(t, c, baseURL, gqlRequest{Query: `{ link(id: "mk_no_such_link_123456") { id } }`})
	r := get(t, c, "http://"+adminAddr+"/metrics")
	body := string(r.body)
	for _, want := range []string{
		`mkgraph_http_requests_total{operation="Profile",route="/graphql",status="200"} 1`,
		`mkgraph_graphql_errors_total{code="link_error.not_found"} 1`,
		`mkgraph_upstream_calls_total{code="",endpoint="identity",status="2xx"} 1`,
		`mkgraph_loader_batch_size_count`,
		`mkgraph_token_renewals_total{result="ok"} 1`,
		`mkgraph_identity_cache_total{result="miss"} 2`,
		`mkgraph_identity_cache_total{result="store"} 1`,
		`mkgraph_large_answers_waiting 0`,
		`mkgraph_large_answer_accounts_in_flight 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "mk_") {
		t.Errorf("/metrics holds a link id")
	}
	if r := get(t, c, baseURL+"/metrics"); r.status != http.StatusNotFound {
		t.Errorf("public /metrics: HTTP %d, want 404", r.status)
	}
}

// TestIdentityCache: repeat reads of a link cost no upstream call; when the
// upstream refuses after the TTL, the cached answer is served, and the
// response's extensions say it is stale and how old.
func TestIdentityCache(t *testing.T) {
	sbx := sandbox.New(sandbox.Options{})
	baseURL, _, _ := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":      startUpstream(t, sbx),
		"MONEYKIT_CLIENT_ID":     sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET": sandbox.DefaultClientSecret,
		"MKGRAPH_CACHE_TTL":      "300ms",
	})
	c := newClient(t)
	q := gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id accounts { owners { names } } } }`}
	for range 5 {
		if g := decodeGQL(t, postGraphQL(t, c, baseURL, q)); len(g.Errors) > 0 {
			t.Fatalf("read: %+v", g.Errors)
		}
	}
	if n := sbx.IdentityCallsFor(sandbox.LinkSeed); n != 1 {
		t.Errorf("5 reads within the TTL: %d upstream calls, want 1", n)
	}
	time.Sleep(350 * time.Millisecond)
	sbx.SetFault(sandbox.LinkSeed, sandbox.Fault{Status: 503}, 0)
	r := postGraphQL(t, c, baseURL, q)
	var doc struct {
		Data       json.RawMessage `json:"data"`
		Errors     []any           `json:"errors"`
		Extensions struct {
			IdentityCache struct {
				Stale      bool `json:"stale"`
				AgeSeconds *int `json:"ageSeconds"`
			} `json:"identityCache"`
		} `json:"extensions"`
	}
	json.Unmarshal(r.body, &doc)
	if len(doc.Errors) > 0 || !strings.Contains(string(doc.Data), "John Smith") || !doc.Extensions.IdentityCache.Stale || doc.Extensions.IdentityCache.AgeSeconds == nil {
		t.Errorf("after the TTL with the upstream failing: %s, want the cached data marked stale with its age", r.body)
	}
}

// TestTracing: with OTEL_EXPORTER_OTLP_ENDPOINT set, each GraphQL operation
// and upstream call is a span, exported over OTLP/HTTP, and the upstream
// receives the W3C trace context.
func TestTracing(t *testing.T) {
	var mu sync.Mutex
	var traceparents []string
	var exported int
	collector := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		exported++
		mu.Unlock()
	}))
	sbx := sandbox.New(sandbox.Options{})
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/identity") {
			mu.Lock()
			traceparents = append(traceparents, r.Header.Get("Traceparent"))
			mu.Unlock()
		}
		sbx.ServeHTTP(w, r)
	}))
	baseURL, logs, stop := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":           up,
		"MONEYKIT_CLIENT_ID":          sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET":      sandbox.DefaultClientSecret,
		"OTEL_EXPORTER_OTLP_ENDPOINT": collector,
	})
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
	if !strings.Contains(logs.String(), `"tracing":true`) {
		t.Fatalf("tracing not enabled: %s", logs)
	}
	c := newClient(t)
	postGraphQL(t, c, baseURL, gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id } }`})
	if err := stop(); err != nil { // flushes the batch of spans
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(traceparents) != 1 || !regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$`).MatchString(traceparents[0]) {
		t.Errorf("upstream traceparent headers = %q, want one W3C trace context", traceparents)
	}
	if exported == 0 {
		t.Errorf("no spans were exported to the OTLP endpoint")
	}
}
