package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"testing"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// The peer-comparison documents of issue 12, copied from ../shared/bench
// (the project's own workload; the load run checks the copies against it
// when that folder is there). Each reads every field of mk_bench links.
const (
	peerDocA = "testdata/bench/a_single.graphql"     // (a) one link
	peerDocB = "testdata/bench/b_distinct10.graphql" // (b) 10 aliases of 10 distinct links
	peerDocC = "testdata/bench/c_same10.graphql"     // (c) 10 aliases of one link
)

// peerLinkRef matches each root field of a peer document: its alias, if
// any, and its link id.
var peerLinkRef = regexp.MustCompile(`(?:(\w+):\s*)?link\(id:\s*"([^"]+)"\)`)

// peerAliases maps each response key of a peer document to the link id it
// reads.
func peerAliases(doc []byte) map[string]string {
	m := map[string]string{}
	for _, sub := range peerLinkRef.FindAllSubmatch(doc, -1) {
		key := string(sub[1])
		if key == "" {
			key = "link"
		}
		m[key] = string(sub[2])
	}
	return m
}

// peerBody is the POST body of a peer document: the query alone.
func peerBody(tb testing.TB, path string) (body []byte, aliases map[string]string) {
	tb.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	body, _ = json.Marshal(map[string]string{"query": string(doc)})
	return body, peerAliases(doc)
}

// BenchmarkQueryBenchAllFields is document (a) of the peer comparison in
// process: every field of a 3-account link, one loopback upstream call.
// Beside BenchmarkQuerySeedAllFields (1 account) and BenchmarkQueryLarge
// (500), it shows how the cost grows with accounts.
func BenchmarkQueryBenchAllFields(b *testing.B) {
	e := newBenchEnv(b)
	body, _ := peerBody(b, peerDocA)
	b.ReportAllocs()
	for b.Loop() {
		e.post(b, body)
	}
}

// TestPeerDocuments runs each peer document once through the production
// chain: every alias answers its own link with its 3 accounts, at one
// upstream call per distinct link.
func TestPeerDocuments(t *testing.T) {
	e := newBenchEnv(t)
	for _, tt := range []struct {
		path           string
		aliases, calls int
	}{{peerDocA, 1, 1}, {peerDocB, 10, 10}, {peerDocC, 10, 1}} {
		t.Run(tt.path, func(t *testing.T) {
			body, aliases := peerBody(t, tt.path)
			if len(aliases) != tt.aliases {
				t.Fatalf("%d aliases in the document, want %d", len(aliases), tt.aliases)
			}
			e.sbx.Reset()
			req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			e.handler.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %.300s", rec.Code, rec.Body.String())
			}
			if err := peerCheck(rec.Body.Bytes(), aliases, 3); err != nil {
				t.Fatalf("%v: %.300s", err, rec.Body.String())
			}
			if n := e.sbx.IdentityCalls(); n != tt.calls {
				t.Errorf("%d upstream identity calls, want %d", n, tt.calls)
			}
		})
	}
	if got := peerAliases([]byte(`{ link(id: "` + sandbox.LinkBench + `") { id } }`)); got["link"] != sandbox.LinkBench {
		t.Errorf("peerAliases: %v", got)
	}
}
