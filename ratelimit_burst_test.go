package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// TestCallerLimiterBurst: unset, the burst is a sixth of the per-minute
// limit (at least 1), as before the setting; set, it is the setting.
func TestCallerLimiterBurst(t *testing.T) {
	for _, tt := range []struct{ perMinute, burst, want int }{
		{120, 0, 20}, {6000, 0, 1000}, {5, 0, 1}, {6, 0, 1}, {120, 3, 3}, {120, 50, 50}, {6, 4, 4},
	} {
		l := callerLimiter(nil, nil, "user", tt.perMinute, tt.burst)
		allowed := 0
		start := time.Now()
		for range tt.want + 5 {
			if _, ok, err := l.Allow(context.Background(), "alice"); err != nil {
				t.Fatal(err)
			} else if ok {
				allowed++
			}
		}
		// Tokens refilled while the loop ran (6000/min is one per 10 ms: a
		// busy machine under the race detector can take that long) are
		// allowed on top of the burst.
		refilled := int(time.Since(start) * time.Duration(tt.perMinute) / time.Minute)
		if allowed < tt.want || allowed > tt.want+refilled {
			t.Errorf("callerLimiter(%d/min, burst %d): %d allowed at once, want %d (+%d refilled meanwhile)", tt.perMinute, tt.burst, allowed, tt.want, refilled)
		}
	}
}

// TestRateBurstSettings: MKGRAPH_USER_RATE_BURST lets that many requests of
// one user through at once, the next is refused; a bad value is a
// configuration error naming the setting.
func TestRateBurstSettings(t *testing.T) {
	const secret = "an-hs256-secret-of-at-least-32-bytes!!"
	baseURL, logs, _ := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":          startUpstream(t, sandbox.New(sandbox.Options{})),
		"MONEYKIT_CLIENT_ID":         sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET":     sandbox.DefaultClientSecret,
		"MKGRAPH_AUTH":               "jwt",
		"MKGRAPH_JWT_HS256_SECRET":   secret,
		"MKGRAPH_USER_RATE_LIMIT":    "6", // burst 1 by default
		"MKGRAPH_USER_RATE_BURST":    "3",
		"MKGRAPH_BACKEND_RATE_BURST": "7",
	})
	c := newClient(t)
	q := gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id } }`}
	alice := "Bearer " + signHS256(t, secret, "alice", []string{sandbox.LinkSeed}, time.Hour)
	for i := range 3 {
		if r := postGraphQL(t, c, baseURL, q, "Authorization", alice); r.status != http.StatusOK {
			t.Fatalf("request %d of a burst of 3: HTTP %d %s", i+1, r.status, r.body)
		}
	}
	if r := postGraphQL(t, c, baseURL, q, "Authorization", alice); r.status != http.StatusTooManyRequests {
		t.Errorf("4th request at once: HTTP %d, want 429", r.status)
	}
	line := logs.waitFor(t, "configuration", message("configuration"))
	if line["MKGRAPH_USER_RATE_BURST"] != "3" || line["MKGRAPH_BACKEND_RATE_BURST"] != "7" {
		t.Errorf("configuration line: user burst %v, backend burst %v", line["MKGRAPH_USER_RATE_BURST"], line["MKGRAPH_BACKEND_RATE_BURST"])
	}

	for _, bad := range []string{"0", "-1", "x", "1.5"} {
		_, err := parseConfig("mkgraph", nil, func(k string) string {
			if k == "MKGRAPH_USER_RATE_BURST" {
				return bad
			}
			return ""
		}, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), "MKGRAPH_USER_RATE_BURST") {
			t.Errorf("MKGRAPH_USER_RATE_BURST=%q: %v, want an error naming it", bad, err)
		}
	}
}
