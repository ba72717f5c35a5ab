//go:build load

package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// loadShape is one scenario: what the n-th request asks for, through the
// facade and directly.
type loadShape struct {
	key, title string
	cache      bool // the facade runs with its identity cache on (default TTL)
	accounts   int  // accounts of each link in the answer
	// replicas > 1: that many facades share one Redis (MKGRAPH_REDIS_URL),
	// the n-th request going to replica n mod replicas.
	replicas int
	// ids are the link ids the n-th request reads, one per alias (n is
	// unique over the whole run, so fresh ids never repeat).
	ids func(n int64) []string
	// directIDs are the distinct links the equivalent REST client GETs,
	// concurrently, for the same request.
	directIDs func(ids []string) []string
}

var loadShapes = []loadShape{
	{key: "a", title: "one link, all fields (fresh link per request)", accounts: 3,
		ids:       func(n int64) []string { return []string{loadCopyLink + strconv.FormatInt(n, 10)} },
		directIDs: func(ids []string) []string { return ids }},
	{key: "b", title: "10 distinct links in one query (fresh links per request)", accounts: 3,
		ids: func(n int64) []string {
			ids := make([]string, 10)
			for i := range ids {
				ids[i] = fmt.Sprintf("%s%d_%d", loadCopyLink, n, i)
			}
			return ids
		},
		directIDs: func(ids []string) []string { return ids }},
	{key: "c", title: "10 aliases of one link (fresh link per request)", accounts: 3,
		ids: func(n int64) []string {
			ids := make([]string, 10)
			for i := range ids {
				ids[i] = loadCopyLink + strconv.FormatInt(n, 10)
			}
			return ids
		},
		directIDs: func(ids []string) []string { return ids[:1] }},
	{key: "d", title: "same link re-read by every client, cache on", cache: true, accounts: 1,
		ids:       func(int64) []string { return []string{loadSeedLink} },
		directIDs: func(ids []string) []string { return ids }},
	{key: "e", title: "the 500-account link, all fields", accounts: 500,
		ids:       func(int64) []string { return []string{loadLargeLink} },
		directIDs: func(ids []string) []string { return ids }},
	{key: "f", title: "3 replicas sharing Redis: same link re-read by every client, cache on", cache: true, accounts: 1, replicas: 3,
		ids:       func(int64) []string { return []string{loadSeedLink} },
		directIDs: func(ids []string) []string { return ids }},
	{key: "g", title: "3 replicas sharing Redis: fresh link per request, cache on (every read a miss through Redis)", cache: true, accounts: 3, replicas: 3,
		ids:       func(n int64) []string { return []string{loadCopyLink + "r" + strconv.FormatInt(n, 10)} },
		directIDs: func(ids []string) []string { return ids }},
}

// loadQuery is the GraphQL body reading every field of each id, aliased
// l0, l1, … when there are several. The ids travel as variables, one per
// distinct id, as a real client sends them: the query text of a scenario
// stays the same, so the facade's parsed-query cache serves it.
func loadQuery(ids []string) []byte {
	var q, sel strings.Builder
	vars := map[string]string{}
	var params []string
	for i, id := range ids {
		v := "id" + strconv.Itoa(slices.Index(ids, id))
		if _, ok := vars[v]; !ok {
			vars[v] = id
			params = append(params, "$"+v+": ID!")
		}
		if len(ids) > 1 {
			fmt.Fprintf(&sel, " l%d:", i)
		}
		sel.WriteString(" link(id: $" + v + ") { " + allFields + " }")
	}
	q.WriteString("query Load(" + strings.Join(params, ", ") + ") {" + sel.String() + " } " + statusFragment)
	b, _ := json.Marshal(map[string]any{"query": q.String(), "variables": vars})
	return b
}

// loadGraphQL sends one GraphQL request reading ids and checks the answer:
// status 200, data and no errors; in full (every alias's link id and
// account count) when full is set.
func loadGraphQL(c *http.Client, facadeURL string, ids []string, accounts int, full bool) error {
	res, err := c.Post(facadeURL+"/graphql", "application/json", bytes.NewReader(loadQuery(ids)))
	if err != nil {
		return fmt.Errorf("transport: %s", transportKind(err))
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return fmt.Errorf("transport: body %s", transportKind(err))
	}
	if res.StatusCode != http.StatusOK || bytes.Contains(body, []byte(`"errors":`)) || !bytes.HasPrefix(body, []byte(`{"data":{`)) {
		var a struct {
			Errors []struct {
				Extensions struct{ Code string } `json:"extensions"`
			} `json:"errors"`
		}
		json.Unmarshal(body, &a)
		codes := []string{}
		for _, e := range a.Errors {
			codes = append(codes, cmp.Or(e.Extensions.Code, "(no code)"))
		}
		return fmt.Errorf("HTTP %d, errors %v", res.StatusCode, codes)
	}
	if !full {
		return nil
	}
	var a struct {
		Data map[string]*struct {
			ID       string            `json:"id"`
			Accounts []json.RawMessage `json:"accounts"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return errors.New("answer not JSON")
	}
	if len(a.Data) != len(ids) {
		return fmt.Errorf("%d links in the answer, want %d", len(a.Data), len(ids))
	}
	for i, id := range ids {
		key := "link"
		if len(ids) > 1 {
			key = "l" + strconv.Itoa(i)
		}
		l := a.Data[key]
		switch {
		case l == nil:
			return fmt.Errorf("%s is null", key)
		case l.ID != id:
			return fmt.Errorf("%s: wrong link id", key)
		case len(l.Accounts) != accounts:
			return fmt.Errorf("%s: %d accounts, want %d", key, len(l.Accounts), accounts)
		}
	}
	return nil
}

// loadDirect is the REST equivalent: GET each id's identity from the
// sandbox with client headers, concurrently when there are several.
func loadDirect(c *http.Client, sandboxURL string, ids []string) error {
	get := func(id string) error {
		req, _ := http.NewRequest(http.MethodGet, sandboxURL+"/links/"+id+"/identity", nil)
		req.Header.Set("X-Client-Id", sandboxClientID)
		req.Header.Set("X-Client-Secret", sandboxClientSecret)
		res, err := c.Do(req)
		if err != nil {
			return fmt.Errorf("direct transport: %s", transportKind(err))
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return fmt.Errorf("direct transport: body %s", transportKind(err))
		}
		if res.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"`+id+`"`)) {
			return fmt.Errorf("direct HTTP %d", res.StatusCode)
		}
		return nil
	}
	if len(ids) == 1 {
		return get(ids[0])
	}
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { errs[i] = get(id) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
