package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/internal/edge/auth"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// allFields selects every field of a link.
const allFields = `id institutionId institutionName institutionAvatar state errorCode provider tags webhook
  products {
    accounts { ...status } accountNumbers { ...status } identity { ...status }
    transactions { ...status } investments { ...status } enrichment { ...status }
  }
  availableProducts
  accounts {
    id type name nickname mask originalId closed
    balances { currency available current limit balanceDate }
    owners {
      names
      addresses { street city region postalCode country primary }
      phoneNumbers { number type primary }
      emails { address primary }
    }
  }`

const statusFragment = `fragment status on ProductStatus { refreshedAt lastAttemptedAt errorCode errorMessage unavailable lastEnriched }`

// benchEnv is the production handler chain in process, over a sandbox
// served on a loopback port.
type benchEnv struct {
	sbx     *sandbox.Server
	handler http.Handler
	bodies  map[string][]byte // request bodies by query, encoded once
	rec     benchRecorder
}

// benchRecorder is an http.ResponseWriter reused across a benchmark's
// requests: httptest.ResponseRecorder grows a new buffer per request, which
// is the harness's cost, not the facade's (a server writes to its socket).
type benchRecorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *benchRecorder) reset() {
	if r.header == nil {
		r.header = http.Header{}
	}
	clear(r.header)
	r.code = 0
	r.body.Reset()
}

func (r *benchRecorder) Header() http.Header { return r.header }

func (r *benchRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *benchRecorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

func newBenchEnv(tb testing.TB) *benchEnv {
	tb.Helper()
	sbx := sandbox.New(sandbox.Options{})
	upstreamURL := startUpstream(tb, sbx)
	c, err := parseConfig("mkgraph", nil, func(k string) string {
		if k == "MKGRAPH_EXECUTOR" {
			return os.Getenv(k) // BENCH: compare the executors
		}
		return ""
	}, io.Discard)
	if err != nil {
		tb.Fatal(err)
	}
	hc := &http.Client{}
	tb.Cleanup(hc.CloseIdleConnections)
	client, err := upstream.New(upstream.Config{
		BaseURL: upstreamURL, ClientID: sandbox.DefaultClientID, ClientSecret: sandbox.DefaultClientSecret,
		HTTPClient: hc, Observer: observeUpstream(nil),
	})
	if err != nil {
		tb.Fatal(err)
	}
	authn, err := auth.New(tb.Context(), auth.Config{Mode: "none"})
	if err != nil {
		tb.Fatal(err)
	}
	h, err := newHandler(c, zerolog.Nop(), client, client.Ready, authn, nil, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return &benchEnv{sbx: sbx, handler: h}
}

// query runs one GraphQL request through the whole chain and fails on any
// GraphQL error.
func (e *benchEnv) query(tb testing.TB, q string) {
	tb.Helper()
	body, ok := e.bodies[q]
	if !ok {
		body, _ = json.Marshal(map[string]string{"query": q})
		if e.bodies == nil {
			e.bodies = map[string][]byte{}
		}
		e.bodies[q] = body
	}
	e.post(tb, body)
}

// post sends one GraphQL request body through the handler and fails on an
// error answer.
func (e *benchEnv) post(tb testing.TB, body []byte) {
	tb.Helper()
	// http.NewRequest, not httptest's: that one parses a request line
	// through a 4 KiB bufio.Reader, which is the harness's cost, not the
	// facade's.
	req, err := http.NewRequest(http.MethodPost, "http://example.com/graphql", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.RemoteAddr = "192.0.2.1:1234"
	req.Header.Set("Content-Type", "application/json")
	rec := &e.rec
	rec.reset()
	e.handler.ServeHTTP(rec, req)
	if rec.code != http.StatusOK || bytes.Contains(rec.body.Bytes(), []byte(`"errors"`)) {
		tb.Fatalf("status %d: %.300s", rec.code, rec.body.String())
	}
}

// BenchmarkQuerySeedAllFields is a full HTTP GraphQL request for every field
// of the seed link: the facade's per-request cost plus one loopback call.
func BenchmarkQuerySeedAllFields(b *testing.B) {
	e := newBenchEnv(b)
	q := `{ link(id: "` + sandbox.LinkSeed + `") { ` + allFields + ` } } ` + statusFragment
	b.ReportAllocs()
	for b.Loop() {
		e.query(b, q)
	}
}

// BenchmarkQueryLarge is the same for the 500-account link.
func BenchmarkQueryLarge(b *testing.B) {
	e := newBenchEnv(b)
	q := `{ link(id: "` + sandbox.LinkLarge + `") { ` + allFields + ` } } ` + statusFragment
	b.ReportAllocs()
	for b.Loop() {
		e.query(b, q)
	}
}

// BenchmarkTenAliasesOneLink reports upstream identity calls per request for
// ten aliases of one link (the contract is 1).
func BenchmarkTenAliasesOneLink(b *testing.B) {
	e := newBenchEnv(b)
	var q strings.Builder
	q.WriteString("{")
	for i := range 10 {
		q.WriteString(" a" + string(rune('0'+i)) + `: link(id: "` + sandbox.LinkSeed + `") { id accounts { id owners { names } } }`)
	}
	q.WriteString(" }")
	e.sbx.Reset()
	for b.Loop() {
		e.query(b, q.String())
	}
	b.ReportMetric(float64(e.sbx.IdentityCalls())/float64(b.N), "upstream-calls/op")
}

// BenchmarkLinksTenIdsThreeDistinct reports upstream identity calls per
// request for links(ids:) with 10 ids of which 3 distinct (the contract is 3).
func BenchmarkLinksTenIdsThreeDistinct(b *testing.B) {
	e := newBenchEnv(b)
	ids := []string{sandbox.LinkSeed, sandbox.LinkHousehold, sandbox.LinkSparse}
	var list []string
	for i := range 10 {
		list = append(list, `"`+ids[i%3]+`"`)
	}
	q := `{ links(ids: [` + strings.Join(list, ",") + `]) { id accounts { id } } }`
	e.sbx.Reset()
	for b.Loop() {
		e.query(b, q)
	}
	b.ReportMetric(float64(e.sbx.IdentityCalls())/float64(b.N), "upstream-calls/op")
}

// BenchmarkTenDistinctLinks50ms reports the wall time of one request for 10
// distinct links with the sandbox answering each after 50 ms, over real
// loopback HTTP from client to facade to sandbox: the loaders fetch them
// concurrently (the contract is under 150 ms end to end).
func BenchmarkTenDistinctLinks50ms(b *testing.B) {
	e := newBenchEnv(b)
	srv := httptest.NewServer(e.handler)
	b.Cleanup(srv.Close)
	hc := srv.Client()
	b.Cleanup(hc.CloseIdleConnections)
	e.sbx.SetLatency(50 * time.Millisecond)
	var q strings.Builder
	q.WriteString("{")
	for i, id := range tenLinkIDs() {
		q.WriteString(" l" + string(rune('0'+i)) + `: link(id: "` + id + `") { id accounts { id } }`)
	}
	q.WriteString(" }")
	body, _ := json.Marshal(map[string]string{"query": q.String()})
	e.sbx.Reset()
	start := time.Now()
	for b.Loop() {
		res, err := hc.Post(srv.URL+"/graphql", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		data, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || bytes.Contains(data, []byte(`"errors"`)) {
			b.Fatalf("status %d: %.300s", res.StatusCode, data)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
	b.ReportMetric(float64(e.sbx.IdentityCalls())/float64(b.N), "upstream-calls/op")
}

// tenLinkIDs are ten distinct sandbox links that answer 200.
func tenLinkIDs() []string {
	ids := make([]string, 10)
	for i := range ids {
		ids[i] = sandbox.LinkCopyPrefix + strconv.Itoa(i)
	}
	return ids
}
