package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/testing/redistest"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// startReplicas starts n facades on loopback ports sharing env (one Redis,
// one upstream), and returns their base URLs and logs.
func startReplicas(t *testing.T, n int, env map[string]string) ([]string, []*syncBuffer) {
	t.Helper()
	var urls []string
	var logs []*syncBuffer
	for range n {
		u, l, _ := startServer(t, env)
		urls = append(urls, u)
		logs = append(logs, l)
	}
	return urls, logs
}

// TestReplicasShareRedis is the multi-replica contract: three facades on
// loopback ports share one Redis and one sandbox; 30 concurrent requests for
// one link spread over them cost one upstream call, and, with the cache
// out of the way, the 4th call of a link in a minute is refused by the
// facades' shared budget, not by the upstream.
func TestReplicasShareRedis(t *testing.T) {
	redisURL := redistest.URL(t)
	prefix := redistest.Prefix(t, redisURL)
	sbx := sandbox.New(sandbox.Options{Latency: 20 * time.Millisecond})
	env := map[string]string{
		"MONEYKIT_BASE_URL":      startUpstream(t, sbx),
		"MONEYKIT_CLIENT_ID":     sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET": sandbox.DefaultClientSecret,
		"MKGRAPH_REDIS_URL":      redisURL,
		"MKGRAPH_REDIS_PREFIX":   prefix,
		// MoneyKit's own budgets (3 per link, 600 per app): the default
		// with a real upstream.
	}

	t.Run("30 requests over 3 replicas, 1 upstream call", func(t *testing.T) {
		urls, _ := startReplicas(t, 3, env)
		c := newClient(t)
		q := gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { ` + linkAllFields + ` } }`}
		bodies := make([]string, 30)
		var wg sync.WaitGroup
		for i := range 30 {
			wg.Go(func() {
				r := postGraphQL(t, c, urls[i%3], q)
				g := decodeGQL(t, r)
				if r.status != http.StatusOK || len(g.Errors) > 0 {
					t.Errorf("request %d on replica %d: HTTP %d %s", i, i%3, r.status, r.body)
				}
				bodies[i] = string(g.Data)
			})
		}
		wg.Wait()
		if n := sbx.IdentityCallsFor(sandbox.LinkSeed); n != 1 {
			t.Errorf("30 requests over 3 replicas made %d upstream identity calls, want 1", n)
		}
		for i, b := range bodies {
			if b != bodies[0] {
				t.Fatalf("request %d answered differently from request 0:\n%s\n%s", i, b, bodies[0])
			}
		}

		// What Redis holds is sealed: no name, email, phone or address of
		// the seed link, and no link id in any key.
		var data any
		if err := json.Unmarshal([]byte(bodies[0]), &data); err != nil {
			t.Fatal(err)
		}
		pii := map[string]bool{}
		collectPII(data, "", pii)
		if len(pii) < 5 {
			t.Fatalf("found only %d identity values in the answer to look for", len(pii))
		}
		rdb := redistest.Client(t, redisURL)
		keys, err := rdb.Keys(t.Context(), prefix+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		sealed := 0
		for _, k := range keys {
			if strings.Contains(k, "mk_") {
				t.Errorf("Redis key %q holds a link id", k)
			}
			if !strings.HasPrefix(k, prefix+"identity:") {
				continue
			}
			sealed++
			v, err := rdb.Get(t.Context(), k).Result()
			if err != nil {
				t.Fatal(err)
			}
			for pii := range pii {
				if len(pii) >= 4 && strings.Contains(v, pii) {
					t.Errorf("the shared identity value holds %q in the clear", pii)
				}
			}
			if strings.Contains(v, sandbox.LinkSeed) {
				t.Error("the shared identity value holds the link id in the clear")
			}
			if ttl := rdb.PTTL(t.Context(), k).Val(); ttl <= 0 {
				t.Errorf("the shared identity value has no Redis TTL (%v)", ttl)
			}
		}
		if sealed != 1 {
			t.Errorf("%d identity values in Redis, want 1 (keys: %v)", sealed, keys)
		}
	})

	t.Run("4th call of a link in a minute refused locally", func(t *testing.T) {
		noCache := merge(env, map[string]string{"MKGRAPH_CACHE_TTL": "0s", "MKGRAPH_ADMIN_ADDR": "127.0.0.1:0"})
		urls, logs := startReplicas(t, 3, noCache)
		c := newClient(t)
		link := sandbox.LinkCopyPrefix + "budget"
		q := gqlRequest{Query: `{ link(id: "` + link + `") { id } }`}
		for i := range 4 {
			g := decodeGQL(t, postGraphQL(t, c, urls[i%3], q))
			switch {
			case i < 3 && len(g.Errors) > 0:
				t.Fatalf("call %d on replica %d refused: %+v", i+1, i%3, g.Errors)
			case i == 3:
				if codes := g.errorCodes(); len(codes) != 1 || codes[0] != "api_error.rate_limit_exceeded" {
					t.Fatalf("4th call: errors %v, want api_error.rate_limit_exceeded", codes)
				}
				if ra, _ := g.Errors[0].Extensions["retryAfter"].(float64); ra < 50 || ra > 60 {
					t.Errorf("4th call: retryAfter %v, want about a minute", g.Errors[0].Extensions["retryAfter"])
				}
			}
		}
		if n := sbx.IdentityCallsFor(link); n != 3 {
			t.Errorf("upstream saw %d identity calls for the link, want 3 (the 4th refused by the facade)", n)
		}
		// The refusal is counted by the replica that refused (the first).
		metrics := string(get(t, c, "http://"+adminAddrOf(t, logs[0])+"/metrics").body)
		if want := `mkgraph_rate_budget_refusals_total{scope="link"} 1`; !strings.Contains(metrics, want) {
			t.Errorf("/metrics of the refusing replica lacks %q", want)
		}
	})

	t.Run("APQ registered on one replica is found on another", func(t *testing.T) {
		urls, _ := startReplicas(t, 2, env)
		c := newClient(t)
		query := `{ link(id: "` + sandbox.LinkSeed + `") { id } }`
		hash := sha256Hex(query)
		ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}
		r := postJSON(t, c, urls[0], map[string]any{"query": query, "extensions": ext})
		if g := decodeGQL(t, r); len(g.Errors) > 0 {
			t.Fatalf("registration: %+v", g.Errors)
		}
		g := decodeGQL(t, postJSON(t, c, urls[1], map[string]any{"extensions": ext}))
		if len(g.Errors) > 0 || !strings.Contains(string(g.Data), sandbox.LinkSeed) {
			t.Errorf("hash-only request on the other replica: %s %+v", g.Data, g.Errors)
		}
	})

	t.Run("per-caller limit shared", func(t *testing.T) {
		// Three backends' worth of requests are spread over two replicas:
		// the limit holds over both.
		keys := writeAPIKeys(t, "bff", "bff-key-0123456789abcdef")
		limited := merge(env, map[string]string{
			"MKGRAPH_AUTH": "jwt", "MKGRAPH_API_KEYS_FILE": keys,
			"MKGRAPH_JWT_HS256_SECRET":   strings.Repeat("k", 32),
			"MKGRAPH_BACKEND_RATE_LIMIT": "12", // burst 2
			"MKGRAPH_ADMIN_ADDR":         "127.0.0.1:0",
		})
		urls, logs := startReplicas(t, 2, limited)
		c := newClient(t)
		q := gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id } }`}
		statuses := []int{}
		for i := range 4 {
			r := postGraphQL(t, c, urls[i%2], q, "X-Api-Key", "bff-key-0123456789abcdef")
			statuses = append(statuses, r.status)
		}
		want := []int{200, 200, 429, 429}
		if !slices.Equal(statuses, want) {
			t.Errorf("statuses over two replicas = %v, want %v (burst 2 shared)", statuses, want)
		}
		for i := range 2 {
			metrics := string(get(t, c, "http://"+adminAddrOf(t, logs[i])+"/metrics").body)
			if want := `mkgraph_rate_budget_refusals_total{scope="caller"} 1`; !strings.Contains(metrics, want) {
				t.Errorf("/metrics of replica %d lacks %q", i, want)
			}
		}
	})
}

// TestRedisDownDegrades: with Redis unreachable, queries are answered from
// the replica's own memory; the failure is a warning and a metric, never a
// failed query, and the warning holds no password.
func TestRedisDownDegrades(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := ln.Addr().String()
	ln.Close()
	sbx := sandbox.New(sandbox.Options{})
	baseURL, logs, _ := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":      startUpstream(t, sbx),
		"MONEYKIT_CLIENT_ID":     sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET": sandbox.DefaultClientSecret,
		"MKGRAPH_REDIS_URL":      "redis://:hunter2-redis-pw@" + deadAddr + "/0",
		"MKGRAPH_ADMIN_ADDR":     "127.0.0.1:0",
	})
	c := newClient(t)
	q := gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id accounts { owners { names } } } }`}
	for i := range 5 {
		r := postGraphQL(t, c, baseURL, q)
		if g := decodeGQL(t, r); r.status != http.StatusOK || len(g.Errors) > 0 {
			t.Fatalf("read %d with Redis down: HTTP %d %s", i+1, r.status, r.body)
		}
	}
	if n := sbx.IdentityCallsFor(sandbox.LinkSeed); n != 1 {
		t.Errorf("5 reads with Redis down: %d upstream calls, want 1 (the in-memory cache)", n)
	}
	logs.waitFor(t, "a Redis warning", func(f map[string]any) bool {
		return f["level"] == "warn" && strings.Contains(f["message"].(string), "Redis failed")
	})
	if strings.Contains(logs.String(), "hunter2-redis-pw") {
		t.Errorf("logs hold the Redis password:\n%s", logs)
	}
	body := string(get(t, c, "http://"+adminAddrOf(t, logs)+"/metrics").body)
	if !strings.Contains(body, "mkgraph_redis_down ") {
		t.Error("/metrics lacks mkgraph_redis_down")
	}
	for _, op := range []string{"connect", "cache_get", "budget"} {
		if !strings.Contains(body, `mkgraph_redis_errors_total{op="`+op+`"}`) {
			t.Errorf("/metrics counts no Redis error for %s", op)
		}
	}
}

// sha256Hex is an APQ hash.
func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
