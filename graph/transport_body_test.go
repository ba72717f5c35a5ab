package graph_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/graph"
	"github.com/mkgraph/mkgraph/graph/limits"
	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/internal/apierr"
)

// bodyHandlers are the handler behind the limits middleware, as in the
// server, and the same handler alone: the reference for what gqlgen runs.
type bodyHandlers struct {
	guard   *limits.Guard
	limited http.Handler // guard.Middleware → probe → handler
	alone   http.Handler // handler, no limits at all
	unread  []byte       // what the handler left unread of the body the middleware gave it
}

// newBodyHandlers: limits of one alias, so that hostileQuery is refused.
func newBodyHandlers() *bodyHandlers {
	loaders := loader.NewFactory(loader.Config{Fetcher: &countingFetcher{}})
	guard := limits.Config{MaxAliases: 1}.Guard()
	h := &bodyHandlers{guard: guard}
	limited := loaders.Middleware(graph.NewHandler(graph.HandlerConfig{Limits: guard, Loaders: loaders}))
	h.limited = guard.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := r.Body
		limited.ServeHTTP(w, r)
		h.unread, _ = io.ReadAll(body)
	}))
	h.alone = loaders.Middleware(graph.NewHandler(graph.HandlerConfig{Loaders: loaders}))
	return h
}

func serveBody(h http.Handler, body, accept string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// countingReader counts the reads of a body.
type countingReader struct {
	io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) { c.reads++; return c.Reader.Read(p) }
func (c *countingReader) Close() error               { return nil }

// TestPostTransportReadsBodyOnce: behind the limits middleware, the POST
// transport runs the request from the middleware's decoding and leaves
// the body unread; without the middleware it reads and decodes the body
// itself, with the same answer.
func TestPostTransportReadsBodyOnce(t *testing.T) {
	h := newBodyHandlers()
	for _, tt := range []struct {
		name, body, accept string
		status             int
	}{
		{"query", `{"query": "{ ok: __typename }"}`, "", 200},
		{"graphql-response+json", `{"query": "{ ok: __typename }"}`, "application/graphql-response+json", 200},
		{"event stream", `{"query": "query Q($v: Int) { ok: __typename }", "variables": {"v": 1}, "operationName": "Q"}`, "text/event-stream", 200},
		{"no query", `{"variables": {}}`, "", 400},
		{"not a request", `{"query": 1}`, "", 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h.unread = nil
			before := h.guard.Checks()
			got := serveBody(h.limited, tt.body, tt.accept)
			if string(h.unread) != tt.body {
				t.Errorf("the handler read the body: %q of it left", h.unread)
			}
			if want := strings.Contains(tt.body, `"query": "`); h.guard.Checks()-before != map[bool]int64{true: 1}[want] {
				t.Errorf("the limits looked at the query %d times", h.guard.Checks()-before)
			}

			body := &countingReader{Reader: strings.NewReader(tt.body)}
			r := httptest.NewRequest(http.MethodPost, "/graphql", body)
			r.Header.Set("Content-Type", "application/json")
			if tt.accept != "" {
				r.Header.Set("Accept", tt.accept)
			}
			want := httptest.NewRecorder()
			h.alone.ServeHTTP(want, r)
			if body.reads == 0 {
				t.Error("without the middleware, the transport did not read the body")
			}
			if got.Code != tt.status || want.Code != tt.status || got.Body.String() != want.Body.String() ||
				got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
				t.Errorf("through the middleware: %d %s %s; alone: %d %s %s; want status %d, the same answers",
					got.Code, got.Header().Get("Content-Type"), got.Body, want.Code, want.Header().Get("Content-Type"), want.Body, tt.status)
			}
		})
	}
}

// TestLimitsJudgeWhatGqlgenRuns: bodies that two JSON readers could read
// differently (repeated, escaped or capitalised keys, a BOM, data after
// the request, members of the wrong type) are judged by the limits on the
// very query gqlgen runs. alone shows what gqlgen runs of each: the
// hostile query (three aliases, over the limit of one), the benign one, or
// nothing (the body is refused). Through the middleware, a body whose
// hostile query would run is refused by the limits, and every other body
// gets the answer it gets alone.
func TestLimitsJudgeWhatGqlgenRuns(t *testing.T) {
	h := newBodyHandlers()
	const (
		hostile = `"{ a: __typename b: __typename c: __typename }"`
		benign  = `"{ ok: __typename }"`
		escaped = `"{ \u0061: __typename b: __typename c: __typename }"` // hostile, escaped
	)
	const ranHostile, ranBenign, refused, limited, batching = "hostile ran", "benign ran", "refused", "refused by the limits", "batch refused"
	for _, tt := range []struct {
		name, body  string
		alone, want string
	}{
		{"benign", `{"query": ` + benign + `}`, ranBenign, ranBenign},
		{"hostile", `{"query": ` + hostile + `}`, ranHostile, limited},
		{"last query wins", `{"query": ` + benign + `, "query": ` + hostile + `}`, ranHostile, limited},
		{"last query wins, the other way", `{"query": ` + hostile + `, "query": ` + benign + `}`, ranBenign, ranBenign},
		{"null keeps the query", `{"query": ` + hostile + `, "query": null}`, ranHostile, limited},
		{"key in capitals", `{"QUERY": ` + hostile + `}`, ranHostile, limited},
		{"key in capitals wins", `{"query": ` + benign + `, "Query": ` + hostile + `}`, ranHostile, limited},
		{"escaped key", `{"qu\u0065ry": ` + hostile + `}`, ranHostile, limited},
		{"escaped key wins", `{"query": ` + benign + `, "qu\u0065ry": ` + hostile + `}`, ranHostile, limited},
		{"escaped key loses", `{"qu\u0065ry": ` + hostile + `, "query": ` + benign + `}`, ranBenign, ranBenign},
		{"escaped query", `{"query": ` + escaped + `}`, ranHostile, limited},
		{"query nested in variables", `{"variables": {"query": ` + hostile + `}, "query": ` + benign + `}`, ranBenign, ranBenign},
		{"operationName null", `{"query": ` + hostile + `, "operationName": null}`, ranHostile, limited},
		{"second request after the first", `{"query": ` + benign + `} {"query": ` + hostile + `}`, ranBenign, ranBenign},
		{"trailing data", `{"query": ` + hostile + `} trailing`, ranHostile, limited},
		{"trailing garbage", `{"query": ` + benign + `}]]]`, ranBenign, ranBenign},
		{"BOM", "\xef\xbb\xbf" + `{"query": ` + hostile + `}`, refused, refused},
		{"variables of the wrong type", `{"query": ` + benign + `, "variables": 5}`, refused, refused},
		{"hostile, variables of the wrong type", `{"query": ` + hostile + `, "variables": 5}`, refused, limited},
		{"truncated", `{"query": ` + hostile, refused, refused},
		{"batch", `[{"query": ` + hostile + `}]`, refused, batching},
		{"JSON string", hostile, refused, refused},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, accept := range []string{"", "text/event-stream"} {
				ref := serveBody(h.alone, tt.body, accept)
				if got := outcome(ref); got != tt.alone {
					t.Fatalf("alone (Accept %q): %s (%d %s), want %s", accept, got, ref.Code, ref.Body, tt.alone)
				}
				h.unread = nil
				got := serveBody(h.limited, tt.body, accept)
				if o := outcome(got); o != tt.want {
					t.Fatalf("through the limits (Accept %q): %s (%d %s), want %s", accept, o, got.Code, got.Body, tt.want)
				}
				switch tt.want {
				case limited, batching:
					continue
				case ranHostile:
					t.Fatal("the hostile query ran past the limits")
				}
				if got.Code != ref.Code || got.Body.String() != ref.Body.String() {
					t.Errorf("through the limits (Accept %q): %d %s; alone: %d %s", accept, got.Code, got.Body, ref.Code, ref.Body)
				}
				if string(h.unread) != tt.body {
					t.Errorf("the transport read the body again: %q left", h.unread)
				}
			}
		})
	}
}

// outcome says what an answer shows of the request: which query ran, or
// who refused it.
func outcome(rec *httptest.ResponseRecorder) string {
	body := rec.Body.String()
	if i := strings.Index(body, "data: "); i >= 0 { // an event stream: its first event's data
		body, _, _ = strings.Cut(body[i+len("data: "):], "\n")
	}
	var resp struct {
		Data   map[string]any `json:"data"`
		Errors []struct {
			Extensions struct {
				Code string `json:"code"`
			} `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		return "not JSON: " + strconv.Quote(body)
	}
	switch {
	case resp.Data["a"] == "Query" && resp.Data["b"] == "Query" && resp.Data["c"] == "Query":
		return "hostile ran"
	case resp.Data["ok"] == "Query" && len(resp.Data) == 1:
		return "benign ran"
	case rec.Code != http.StatusBadRequest || len(resp.Errors) != 1:
		return "unexpected"
	}
	switch resp.Errors[0].Extensions.Code {
	case apierr.CodeBadRequest:
		return "refused"
	case apierr.CodeTooManyAliases:
		return "refused by the limits"
	case apierr.CodeBatchingDisabled:
		return "batch refused"
	}
	return "unexpected code " + resp.Errors[0].Extensions.Code
}

// TestSSESubscriptionThroughLimits: a subscription over SSE (a POST, so
// the POST transport) runs from the limits middleware's decoding of its
// body, looked at once; one over the limits is refused by them.
func TestSSESubscriptionThroughLimits(t *testing.T) {
	guard := limits.Config{MaxDepth: 5}.Guard()
	s := newSubsServer(t, subsOptions{limits: guard})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, lines := s.sse(t, ctx, "Bearer user", okLink)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s.waitSubscribers(t, 1)
	s.bus.Publish(context.Background(), refreshEvent)
	if l := nextLine(t, lines); l != "event: next" {
		t.Fatalf("got %q", l)
	}
	if l := nextLine(t, lines); !strings.Contains(l, `"institutionName":"Chase"`) {
		t.Fatalf("got %q", l)
	}
	if n := guard.Checks(); n != 1 {
		t.Errorf("the subscription was looked at %d times, want once", n)
	}

	deep := `{"query": "subscription { linkEvents(linkId: \"x\") { link { accounts { owners { addresses { street } } } } } }"}`
	req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", strings.NewReader(deep))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer user")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), apierr.CodeQueryTooDeep) {
		t.Errorf("a deep subscription: %d %s, want 400 with %s", res.StatusCode, b, apierr.CodeQueryTooDeep)
	}
}
