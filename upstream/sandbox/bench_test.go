package sandbox_test

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestBenchLinks(t *testing.T) {
	s, base := start(t, sandbox.Options{})
	file, err := os.ReadFile("fixtures/bench.json")
	if err != nil {
		t.Fatal(err)
	}
	// LinkBench answers the file as it is.
	res, body := getIdentity(t, base, sandbox.LinkBench, "", clientHeaders())
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" || !bytes.Equal(body, file) {
		t.Fatalf("GET identity %s: status %d, Content-Type %q, want 200 application/json and fixtures/bench.json byte for byte; body %.200s",
			sandbox.LinkBench, res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	type answer struct {
		Accounts []struct {
			AccountID string `json:"account_id"`
			Owners    []struct {
				Names []string `json:"names"`
			} `json:"owners"`
		} `json:"accounts"`
		Link struct {
			LinkID string `json:"link_id"`
		} `json:"link"`
	}
	seen := map[string]string{} // account id → link id
	for _, id := range []string{sandbox.LinkBench, "mk_bench01", "mk_bench09", "mk_bench_ü/2", "mk_bench01"} {
		res, body := getIdentity(t, base, id, "", clientHeaders())
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET identity %q: status %d, body %.200s", id, res.StatusCode, body)
		}
		if len(body) != len(file)+len(id)-len(sandbox.LinkBench) && !strings.ContainsAny(id, "ü/") {
			t.Errorf("GET identity %q: %d bytes, want the file's %d with the other id", id, len(body), len(file))
		}
		var got answer
		mustDecode(t, body, &got, false)
		if got.Link.LinkID != id || len(got.Accounts) != 3 || len(got.Accounts[0].Owners) != 2 {
			t.Fatalf("GET identity %q: link_id %q with %d accounts, want %q with 3 of 2 owners", id, got.Link.LinkID, len(got.Accounts), id)
		}
		for _, a := range got.Accounts {
			if other, ok := seen[a.AccountID]; ok && other != id {
				t.Errorf("account id %s of %q is also %q's", a.AccountID, id, other)
			}
			if !strings.HasPrefix(a.AccountID, "acc_") || len(a.AccountID) != 26 {
				t.Errorf("account id %q of %q: want acc_ and 22 characters", a.AccountID, id)
			}
			seen[a.AccountID] = id
		}
		_, body = getIdentity(t, base, id, "account_ids="+got.Accounts[2].AccountID, clientHeaders())
		var filtered answer
		mustDecode(t, body, &filtered, false)
		if len(filtered.Accounts) != 1 || filtered.Accounts[0].AccountID != got.Accounts[2].AccountID || filtered.Link.LinkID != id {
			t.Errorf("GET identity %q with account_ids: %+v, want its third account alone", id, filtered)
		}
	}
	if n := s.IdentityCallsFor("mk_bench01"); n != 4 {
		t.Errorf("IdentityCallsFor(mk_bench01) = %d, want 4", n)
	}
	if res, _ := getIdentity(t, base, sandbox.LinkBenchPrefix, "", clientHeaders()); res.StatusCode != http.StatusNotFound {
		t.Errorf("id without anything after the prefix: status %d, want 404", res.StatusCode)
	}
}
