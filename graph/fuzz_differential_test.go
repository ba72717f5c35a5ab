package graph

import (
	"encoding/json"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestExecutorsAgreeGenerated: operations generated over the schema from
// fixed seeds give the same bytes on both executors.
func TestExecutorsAgreeGenerated(t *testing.T) {
	t.Parallel()
	const workers = 2 // each with its own seed: the same operations every run
	n := 1000
	if testing.Short() {
		n = 250
	}
	stats := &diffStats{}
	var failures atomic.Int32
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			c := randChooser{rand.New(rand.NewPCG(12, uint64(2026+w)))}
			for i := range n {
				cfg := diffMain
				if i%4 == 3 {
					cfg = diffWide
				}
				r := generateRequest(c)
				ok, _ := newDiffPair(t, cfg).check(t, r, stats)
				if ok && i%4 == 0 {
					// Again, on the plan it has now, with other variables.
					ok, _ = newDiffPair(t, cfg).check(t, flipped(r), stats)
				}
				if !ok && failures.Add(1) >= 5 {
					return // enough to go on
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%s in %v", stats, time.Since(start).Round(time.Millisecond))
	if proven := stats.proven.Load(); proven < int64(workers*n)/3 {
		t.Errorf("the plan ran %d of %d requests (proven): the generator should reach it more often", proven, workers*n)
	}
}

// TestExecutorsAgreeConcurrently: requests of a few documents at once, with
// the @include and @skip variables that pick their plans, on the handlers'
// shared plan cache.
func TestExecutorsAgreeConcurrently(t *testing.T) {
	t.Parallel()
	docs := []string{
		`query($a: Boolean!, $b: Boolean = true) { l: link(id: "` + diffNumbers + `") { id @include(if: $a) accounts @skip(if: $b) { id } }
			links(ids: ["` + diffNulls + `", "` + diffNotFound + `"]) @include(if: $b) { ...F } } fragment F on Link { state @skip(if: $a) }`,
		`query Q($a: Boolean!, $b: Boolean = true, $ids: [ID!]) { ... @include(if: $a) { link(id: "` + diffAccounts + `") { accounts(ids: $ids) { id } } }
			... on Query @skip(if: $b) { __typename } }`,
	}
	p := newDiffPair(t, diffMain)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(7, uint64(w)))
			for range 60 {
				vars := map[string]any{"a": r.IntN(2) == 0, "ids": []any{"acc_m1", "acc_m2", "zzz"}[:r.IntN(4)]}
				if r.IntN(3) > 0 {
					vars["b"] = r.IntN(2) == 0
				}
				p.check(t, diffRequest{Query: docs[r.IntN(len(docs))], Variables: vars}, nil)
			}
		})
	}
	wg.Wait()
}

// FuzzExecutorsAgree: the fuzzer's bytes drive the generator, and its
// query text and variables are sent as they are; both executors must
// answer the same bytes.
func FuzzExecutorsAgree(f *testing.F) {
	f.Add([]byte{}, "{ __typename }", "")
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, `query($id: ID!) { link(id: $id) { id accounts { id } } }`, `{"id": "mk_diff_escapes"}`)
	f.Add([]byte("links with fragments, aliases, directives and variables"), `{ a: links(ids: ["mk_diff_not_found", "mk_sandbox_household"]) { ... on Link { id } } }`, `{}`)
	f.Add([]byte{255, 200, 150, 100, 50, 0, 255, 128, 64, 32, 16, 8, 4, 2, 1}, `query Q($b: Boolean = false) { link(id: "mk_diff_numbers") @skip(if: $b) { products { accounts { refreshedAt } } } }`, `{"b": null}`)
	f.Add([]byte("\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xb0\xc0\xd0\xe0\xf0"), `{ link(id: "mk_diff_auth_panic") { id } links(ids: [""]) { id } }`, `[]`)
	f.Fuzz(func(t *testing.T, data []byte, query, variables string) {
		cfg := diffMain
		if len(data) > 0 && data[0]%4 == 3 {
			cfg = diffWide
		}
		p := newDiffPair(t, cfg)
		r := generateRequest(newByteChooser(data))
		p.check(t, r, nil)
		p.check(t, flipped(r), nil)
		body := map[string]json.RawMessage{"query": mustJSON(t, query)}
		if json.Valid([]byte(variables)) {
			body["variables"] = json.RawMessage(variables)
		}
		p.check(t, diffRequest{Body: mustJSON(t, body)}, nil)
	})
}

// flipped is r with its Boolean variables the other way, and null ones
// true.
func flipped(r diffRequest) diffRequest {
	vars := map[string]any{}
	for k, v := range r.Variables {
		switch v := v.(type) {
		case bool:
			vars[k] = !v
		case nil:
			vars[k] = true
		default:
			vars[k] = v
		}
	}
	r.Variables = vars
	return r
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
