package redisstore

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/upstream/cache"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// The cost of each shared operation against the loopback Redis, what a
// replica pays per request when it goes to Redis (an in-memory hit of the
// identity cache does not):
//
//	go test -run '^$' -bench . -benchmem ./internal/redisstore
func BenchmarkIdentitiesGet(b *testing.B) {
	for _, link := range []string{sandbox.LinkSeed, sandbox.LinkLarge} {
		b.Run(link, func(b *testing.B) {
			e := newEnv(b)
			s := mustIdentities(b, e.open(b), testKey(1))
			ctx := context.Background()
			s.Set(ctx, cacheKey(link), cache.SharedEntry{Identity: fixture(b, link), FetchedAt: time.Now()}, time.Minute, "")
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, ok := s.Get(ctx, cacheKey(link)); !ok {
					b.Fatal("miss")
				}
			}
		})
	}
}

func BenchmarkIdentitiesSet(b *testing.B) {
	e := newEnv(b)
	s := mustIdentities(b, e.open(b), testKey(1))
	ctx := context.Background()
	se := cache.SharedEntry{Identity: fixture(b, sandbox.LinkSeed), FetchedAt: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		s.Set(ctx, cacheKey(sandbox.LinkSeed), se, time.Minute, "")
	}
}

func BenchmarkBudgetReserve(b *testing.B) {
	e := newEnv(b)
	bud := NewBudget(e.open(b), testNamespace, 1<<30, 1<<30, time.Minute)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, refused, err := bud.Reserve(ctx, "mk_bench_"+strconv.Itoa(i%100)); err != nil || refused != "" {
			b.Fatal(refused, err)
		}
	}
}

func BenchmarkLimiterAllow(b *testing.B) {
	e := newEnv(b)
	l := NewLimiter(e.open(b), "user", 1<<30, 1<<30)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := l.Allow(ctx, "user-1"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
