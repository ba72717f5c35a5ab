package main

import (
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
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/mkgraph/mkgraph/internal/edge/auth"
	"github.com/mkgraph/mkgraph/internal/testing/logtest"
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

// startUpstream serves h on an httptest server closed at cleanup (after
// any facade started later in the test has stopped).
func startUpstream(tb testing.TB, h http.Handler) string {
	tb.Helper()
	ts := httptest.NewServer(h)
	tb.Cleanup(ts.Close)
	return ts.URL
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

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// adminAddrOf returns the admin listener's address from a run's logs.
func adminAddrOf(t *testing.T, logs *syncBuffer) string {
	t.Helper()
	for _, line := range strings.Split(logs.String(), "\n") {
		var l struct{ Message, Addr string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Message == "admin listening" {
			return l.Addr
		}
	}
	t.Fatalf("no admin listening line in %s", logs)
	return ""
}

// writeAPIKeys writes a keys file holding name's key, and returns its path.
func writeAPIKeys(t *testing.T, name, key string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte(name+" "+auth.HashAPIKey(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// mustSign signs claims with m and key.
func mustSign(tb testing.TB, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
