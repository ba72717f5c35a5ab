package graph_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/graph"
	"github.com/mkgraph/mkgraph/graph/loader"
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
