package sandbox

import (
	"bytes"
	"crypto/sha256"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// LinkBenchPrefix starts the family of the peer-comparison workload
// (issue 12; the documents and the answer are in ../shared/bench): any id
// with this prefix and at least one more character ("mk_bench00" …
// "mk_bench09" in the documents) answers fixtures/bench.json, MoneyKit's
// Get Identity answer for a link with 3 accounts (7.4 KB as the file is
// indented), under its own link_id and with account ids derived from the
// link id, so that distinct links never share an account id. LinkBench
// itself answers the file byte for byte. These links have no refresh state:
// POST /links/{id}/products answers 404 for them.
//
// fixtures/bench.json is a copy of ../shared/bench/identity-3-accounts.json,
// the project's own workload file.
const LinkBenchPrefix = "mk_bench"

// LinkBench is the link of fixtures/bench.json, the one the peer-comparison
// documents read first.
const LinkBench = "mk_bench00"

// benchCacheMax bounds the remembered answers of bench links: a load run
// reads a few links over and over, and at 0 ms of latency rendering each
// answer again would count against the REST floor.
const benchCacheMax = 4096

// benchTemplate is fixtures/bench.json as bytes, with its quoted link id
// and account ids, which it holds once each, to substitute.
type benchTemplate struct {
	raw        []byte
	linkID     []byte   // `"mk_bench00"`
	accountIDs [][]byte // `"acc_…"`, in order
}

var benchFixture = sync.OnceValue(func() *benchTemplate {
	source := fixtureFile("bench.json")
	f, err := loadFixture(LinkBench, source) // checks the file
	if err != nil {
		panic(err)
	}
	raw, _ := source()
	t := &benchTemplate{raw: raw, linkID: mustJSON(LinkBench)}
	for _, id := range f.accountIDs {
		t.accountIDs = append(t.accountIDs, mustJSON(id))
	}
	for _, s := range append([][]byte{t.linkID}, t.accountIDs...) {
		if bytes.Count(raw, s) != 1 {
			panic("sandbox: fixture bench.json: " + string(s) + " is not there exactly once")
		}
	}
	return t
})

var (
	benchAnswers sync.Map // link id → *fixture, its answer rendered
	benchCached  atomic.Int64
)

// isBenchLink reports whether linkID belongs to the LinkBenchPrefix family.
func isBenchLink(linkID string) bool {
	return len(linkID) > len(LinkBenchPrefix) && strings.HasPrefix(linkID, LinkBenchPrefix)
}

// benchReply is the identity answer of a bench link, keeping only the
// accounts listed in query's account_ids when that parameter is present.
func benchReply(linkID string, query url.Values) reply {
	f := benchAnswer(linkID)
	if ids, ok := query["account_ids"]; ok {
		return jsonReply(http.StatusOK, f.render(ids))
	}
	return jsonReply(http.StatusOK, f.full)
}

// benchAnswer is linkID's answer, remembered for up to benchCacheMax links.
func benchAnswer(linkID string) *fixture {
	if f, ok := benchAnswers.Load(linkID); ok {
		return f.(*fixture)
	}
	t := benchFixture()
	body := bytes.Replace(t.raw, t.linkID, mustJSON(linkID), 1)
	if linkID != LinkBench {
		for i, id := range t.accountIDs {
			body = bytes.Replace(body, id, mustJSON(benchAccountID(linkID, i)), 1)
		}
	}
	f, err := loadFixture(linkID, func() ([]byte, error) { return body, nil })
	if err != nil {
		panic(err) // the template was checked; an id is only ever JSON-quoted
	}
	f.full = body // as the file is: indented
	if benchCached.Load() < benchCacheMax {
		if _, loaded := benchAnswers.LoadOrStore(linkID, f); !loaded {
			benchCached.Add(1)
		}
	}
	return f
}

// benchAccountID derives the i-th account id of a bench link from the link
// id: "acc_" and 22 base-62 characters, as MoneyKit's look.
func benchAccountID(linkID string, i int) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	sum := sha256.Sum256([]byte(linkID + "\x00" + strconv.Itoa(i)))
	id := []byte("acc_")
	for _, b := range sum[:22] {
		id = append(id, digits[int(b)%len(digits)])
	}
	return string(id)
}
