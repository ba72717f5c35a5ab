//go:build soak

package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// soakQuery is the GraphQL request body for link id.
func soakQuery(id string) []byte {
	b, _ := json.Marshal(map[string]string{"query": `{ link(id: "` + id + `") { id accounts { id owners { names } } } }`})
	return b
}

type soakAnswer struct {
	Data *struct {
		Link *struct {
			ID       string          `json:"id"`
			Accounts json.RawMessage `json:"accounts"`
		} `json:"link"`
	} `json:"data"`
	Errors []struct {
		Extensions struct {
			Code string `json:"code"`
		} `json:"extensions"`
	} `json:"errors"`
}

// referenceAccounts fetches the accounts every copy link answers with,
// trying up to 20 times through the faults.
func referenceAccounts(t *testing.T, c *http.Client, facadeURL string) []byte {
	t.Helper()
	id := "mk_sandbox_copy_reference"
	for range 20 {
		kind, accounts, _ := send(c, facadeURL, id, nil)
		if kind == kindData {
			return accounts
		}
	}
	t.Fatal("the facade gave no data for the reference link in 20 tries")
	return nil
}

const kindData = "data"

// send makes one GraphQL request for id and classifies the answer: kindData
// for the right data, "error <code>" for an error answer, or a description
// of what was wrong. want is the accounts every data answer must carry (nil:
// any). It returns the compacted accounts of a data answer.
func send(c *http.Client, facadeURL, id string, want []byte) (kind string, accounts []byte, correct bool) {
	res, err := c.Post(facadeURL+"/graphql", "application/json", bytes.NewReader(soakQuery(id)))
	if err != nil {
		return "transport: " + transportKind(err), nil, false
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return "transport: body " + transportKind(err), nil, false
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Sprintf("HTTP %d", res.StatusCode), nil, false
	}
	var a soakAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return "not JSON", nil, false
	}
	switch {
	case a.Data == nil:
		return "data null", nil, false
	case a.Data.Link == nil && len(a.Errors) == 1:
		code := a.Errors[0].Extensions.Code
		return "error " + cmp.Or(code, "(no code)"), nil, correctCodes[code]
	case a.Data.Link == nil:
		return fmt.Sprintf("link null with %d errors", len(a.Errors)), nil, false
	case a.Data.Link.ID != id:
		return "wrong link id", nil, false
	case len(a.Errors) > 0:
		return "data with errors", nil, false
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, a.Data.Link.Accounts); err != nil || buf.Len() < 3 {
		return "no accounts", nil, false
	}
	if want != nil && !bytes.Equal(buf.Bytes(), want) {
		return "wrong accounts", nil, false
	}
	return kindData, buf.Bytes(), true
}

// loadResult is what the load generator saw.
type loadResult struct {
	sent, dropped int
	elapsed       time.Duration // from the first send to the last answer
	sendSpan      time.Duration // from the first send to the last
	latencies     []time.Duration
	dataLatencies []time.Duration
	errLatencies  []time.Duration // error answers, correct or not
	kinds         map[string]int
	correct       int
	maxInFlight   int64
}

func (r loadResult) incorrectKinds() map[string]int {
	out := map[string]int{}
	for k, n := range r.kinds {
		if k != kindData && !correctCodes[strings.TrimPrefix(k, "error ")] {
			out[k] = n
		}
	}
	return out
}

// runLoad sends rps requests a second for d, open loop: sends follow the
// clock, not the answers. A ticker paces them; after a late tick the
// schedule catches up, so the rate holds. Each send is its own goroutine,
// at most soakMaxInFlight at once; a send over the cap is dropped.
func runLoad(c *http.Client, facadeURL string, rps int, d time.Duration, want []byte) loadResult {
	interval := time.Second / time.Duration(rps)
	total := int(d / interval)
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		res      = loadResult{kinds: map[string]int{}}
		inFlight atomic.Int64
		maxSeen  atomic.Int64
		slots    = make(chan struct{}, soakMaxInFlight)
	)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	start := time.Now()
	i := 0
	for i < total {
		<-ticker.C
		due := min(total, int(time.Since(start)/interval)+1)
		for ; i < due; i++ {
			select {
			case slots <- struct{}{}:
			default:
				res.dropped++
				continue
			}
			id := fmt.Sprintf("mk_sandbox_copy_%d", i%soakDistinctLinks)
			res.sent++
			n := inFlight.Add(1)
			for m := maxSeen.Load(); n > m && !maxSeen.CompareAndSwap(m, n); m = maxSeen.Load() {
			}
			wg.Go(func() {
				defer func() { <-slots; inFlight.Add(-1) }()
				t0 := time.Now()
				kind, _, correct := send(c, facadeURL, id, want)
				took := time.Since(t0)
				mu.Lock()
				defer mu.Unlock()
				res.latencies = append(res.latencies, took)
				if kind == kindData {
					res.dataLatencies = append(res.dataLatencies, took)
				} else if strings.HasPrefix(kind, "error ") {
					res.errLatencies = append(res.errLatencies, took)
				}
				res.kinds[kind]++
				if correct {
					res.correct++
				}
			})
		}
	}
	res.sendSpan = time.Since(start)
	wg.Wait()
	res.elapsed = time.Since(start)
	res.maxInFlight = maxSeen.Load()
	return res
}
