// Package redistest gives tests a real Redis: the redis-server that
// `make test` (.ci/ensure-redis) starts on loopback, or the one named by
// MKGRAPH_TEST_REDIS_URL.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultURL is where .ci/ensure-redis starts redis-server.
const DefaultURL = "redis://127.0.0.1:6379/0"

// URL returns the URL of a Redis that answered PING. Without one the test
// fails on CI (CI set: .ci/run must have started it) and is skipped
// elsewhere, saying how to get one.
func URL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("MKGRAPH_TEST_REDIS_URL")
	if url == "" {
		url = DefaultURL
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("MKGRAPH_TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no Redis at %s (CI must start one: .ci/ensure-redis): %v", opts.Addr, err)
		}
		t.Skipf("no Redis at %s (run .ci/ensure-redis, or set MKGRAPH_TEST_REDIS_URL): %v", opts.Addr, err)
	}
	return url
}

// Prefix returns a key prefix no other test uses, and deletes the keys
// under it when the test ends.
func Prefix(t testing.TB, url string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "mkgraph-test:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		opts, err := redis.ParseURL(url)
		if err != nil {
			return
		}
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, pattern := range []string{prefix + "*", "rate:" + prefix + "*"} {
			iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
			for iter.Next(ctx) {
				rdb.Del(ctx, iter.Val())
			}
		}
	})
	return prefix
}

// Client returns a go-redis client for url, closed when the test ends.
func Client(t testing.TB, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}
