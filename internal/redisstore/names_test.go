package redisstore

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestNameKeyHidesNames: with a NameKey, budget and caller keys are an
// HMAC, not the SHA-256 anyone can compute from a guessed link id or user.
func TestNameKeyHidesNames(t *testing.T) {
	e := newEnv(t)
	c := mustOpen(t, Config{URL: e.url, Prefix: e.prefix, NameKey: NameKey(testKey(7))})
	ctx := context.Background()
	NewBudget(c, testNamespace, 3, 0, time.Minute).Reserve(ctx, "mk_guessable")
	NewLimiter(c, "user", 10, 1).Allow(ctx, "alice@example.com")
	keys := strings.Join(e.keys(t), "\n")
	for _, plain := range []string{hashName(testNamespace, "mk_guessable"), hashName("alice@example.com"), "mk_guessable", "alice"} {
		if strings.Contains(keys, plain) {
			t.Errorf("Redis keys hold %q:\n%s", plain, keys)
		}
	}
	if c.name("a") != c.name("a") || c.name("a") == c.name("b") || len(c.name("a")) != 64 {
		t.Error("name is not a deterministic 64-hex-digit HMAC")
	}
	if string(NameKey(testKey(7))) == string(NameKey(testKey(8))) {
		t.Error("NameKey does not depend on the key")
	}
}
