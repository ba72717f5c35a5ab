package graph_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/graph"
	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func apqBody(query, hash string) string {
	b, _ := json.Marshal(map[string]any{"query": query, "extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}})
	if query == "" {
		b, _ = json.Marshal(map[string]any{"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}})
	}
	return string(b)
}

// TestAPQ: Apollo's automatic persisted queries: a hash alone is
// PersistedQueryNotFound until the query is registered with it.
func TestAPQ(t *testing.T) {
	ts := newTestServer(t, testOptions{APQCacheSize: 10})
	q := `{ link(id: "` + sandbox.LinkSeed + `") { id } }`
	h := sha256Hex(q)
	if resp := ts.postRaw(t, apqBody("", h)); len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != "PERSISTED_QUERY_NOT_FOUND" {
		t.Errorf("unknown hash: %+v, want PERSISTED_QUERY_NOT_FOUND", resp.Errors)
	}
	if resp := ts.postRaw(t, apqBody(q, h)); len(resp.Errors) > 0 {
		t.Errorf("register: %+v", resp.Errors)
	}
	if resp := ts.postRaw(t, apqBody("", h)); len(resp.Errors) > 0 || !strings.Contains(string(resp.Data), sandbox.LinkSeed) {
		t.Errorf("hash only after registering: %s %+v", resp.Data, resp.Errors)
	}
	if resp := ts.postRaw(t, apqBody(q, sha256Hex("other"))); len(resp.Errors) == 0 {
		t.Errorf("a hash that does not match its query was accepted")
	}
}

// TestPersistedQueriesAllowlist: in allowlist mode only the manifest's
// operations run, by hash alone or in full; anything else is refused before
// parsing, and costs no upstream call.
func TestPersistedQueriesAllowlist(t *testing.T) {
	allowed := `query Profile { link(id: "` + sandbox.LinkSeed + `") { id } }`
	manifest := fmt.Sprintf(`{"format":"apollo-persisted-query-manifest","version":1,"operations":[{"id":%q,"name":"Profile","type":"query","body":%q}]}`, sha256Hex(allowed), allowed)
	path := filepath.Join(t.TempDir(), "manifest.json")
	if err := os.WriteFile(path, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	pq, err := graph.LoadPersistedQueries(path, true)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, testOptions{APQCacheSize: 10, Persisted: pq})
	if resp := ts.postRaw(t, apqBody("", sha256Hex(allowed))); len(resp.Errors) > 0 || !strings.Contains(string(resp.Data), sandbox.LinkSeed) {
		t.Errorf("manifest hash alone: %s %+v", resp.Data, resp.Errors)
	}
	if resp, _ := ts.MustQuery(t, allowed, nil); len(resp.Errors) > 0 {
		t.Errorf("manifest operation in full: %+v", resp.Errors)
	}
	before := ts.sbx.IdentityCalls()
	other := `{ link(id: "` + sandbox.LinkHousehold + `") { id } }`
	for _, body := range []string{apqBody(other, sha256Hex(other)), apqBody("", sha256Hex(other)), `{"query":` + strconv.Quote(other) + `}`} {
		if resp := ts.postRaw(t, body); len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != apierr.CodePersistedQueryNotAllowed {
			t.Errorf("%s: %+v, want %s", body, resp.Errors, apierr.CodePersistedQueryNotAllowed)
		}
	}
	if ts.sbx.IdentityCalls() != before {
		t.Errorf("a refused operation reached the upstream")
	}

	// A manifest whose id is not its body's hash is refused at load.
	bad := strings.Replace(manifest, sha256Hex(allowed), sha256Hex("x"), 1)
	os.WriteFile(path, []byte(bad), 0o600)
	if _, err := graph.LoadPersistedQueries(path, true); err == nil {
		t.Errorf("a manifest with a wrong id was accepted")
	}
}
