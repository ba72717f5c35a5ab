package main

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestRedisDownGaugeIdle: with Redis dead and no request at all, past the
// breaker's 2 s cooldown, mkgraph_redis_down still reads 1 (it was 0 then,
// so an idle replica could not be alerted on).
func TestRedisDownGaugeIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	_, logs, _ := startServer(t, map[string]string{
		"MKGRAPH_REDIS_URL":  "redis://" + dead + "/0",
		"MKGRAPH_ADMIN_ADDR": "127.0.0.1:0",
	})
	c := newClient(t)
	metricsURL := "http://" + adminAddrOf(t, logs) + "/metrics"
	time.Sleep(2500 * time.Millisecond)
	body := string(get(t, c, metricsURL).body)
	if !strings.Contains(body, "\nmkgraph_redis_down 1\n") {
		t.Errorf("idle replica of a dead Redis, past the breaker cooldown: /metrics has no mkgraph_redis_down 1:\n%s", grepLines(body, "mkgraph_redis"))
	}
}

// grepLines returns the lines of s holding sub.
func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
