package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

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
