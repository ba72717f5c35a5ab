package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/sony/gobreaker/v2"

	"github.com/mkgraph/mkgraph/upstream/cache"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestOpenBadURL(t *testing.T) {
	const secret = "hunter2-secret"
	tests := []struct{ name, url string }{
		{"unclosed IPv6 host", "redis://:" + secret + "@[::1"},
		{"user and password, bad port", "redis://admin:" + secret + "@127.0.0.1:port/0"},
		{"http scheme", "http://:" + secret + "@127.0.0.1:6379/0"},
		{"bad database", "redis://:" + secret + "@127.0.0.1:6379/db-" + secret},
		{"control character", "redis://:" + secret + "\x7f@127.0.0.1:6379"},
		{"empty", ""},
		{"no scheme", secret + "@127.0.0.1:6379"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &logBuffer{}
			errs := &recorder{}
			c, err := Open(context.Background(), Config{URL: tt.url, Log: zerolog.New(log), OnError: errs.onError})
			if err == nil {
				c.Close()
				t.Fatalf("Open(%q) succeeded", tt.url)
			}
			if c != nil {
				t.Error("Open returned a Client with its error")
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "127.0.0.1") {
				t.Errorf("error %q quotes the URL", err)
			}
			if log.String() != "" || len(errs.all()) != 0 {
				t.Errorf("a bad URL logged %q / reported %v", log, errs.all())
			}
		})
	}
}

func TestOpenLive(t *testing.T) {
	e := newEnv(t)
	c := e.open(t)
	e.errs.check(t)
	entries := e.log.entries(t)
	if len(entries) != 1 || entries[0]["level"] != "info" || !strings.Contains(fmt.Sprint(entries[0]["message"]), "Redis connected") {
		t.Errorf("log = %v, want one info line saying Redis connected", entries)
	}
	if c.Redis() == nil || c.Redis().Ping(context.Background()).Err() != nil {
		t.Error("Redis() is not a working client")
	}
}

func TestOpenSettings(t *testing.T) {
	url := newEnv(t).url
	tests := []struct {
		name        string
		cfg         Config
		wantPrefix  string
		wantTimeout time.Duration
	}{
		{"defaults", Config{}, DefaultPrefix, DefaultTimeout},
		{"negative timeout", Config{Timeout: -time.Second, Prefix: "p:"}, "p:", DefaultTimeout},
		{"set", Config{Timeout: 80 * time.Millisecond, Prefix: "tenant-a:"}, "tenant-a:", 80 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.URL = url
			c := mustOpen(t, tt.cfg) // writes nothing
			if c.prefix != tt.wantPrefix {
				t.Errorf("prefix = %q, want %q", c.prefix, tt.wantPrefix)
			}
			if got := c.key("apq", "h"); got != tt.wantPrefix+"apq:h" {
				t.Errorf("key = %q", got)
			}
			if c.timeout != tt.wantTimeout {
				t.Errorf("timeout = %v, want %v", c.timeout, tt.wantTimeout)
			}
			o := c.Redis().Options()
			w := tt.wantTimeout
			if o.ReadTimeout != w || o.WriteTimeout != w || o.PoolTimeout != w || o.DialTimeout != 2*w {
				t.Errorf("timeouts read %v write %v pool %v dial %v, want %v (dial 2x)", o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.DialTimeout, w)
			}
		})
	}
}

// An unreachable Redis is no error: Open warns once, without the password,
// and every store falls back without naming a key in the log.
func TestOpenUnreachable(t *testing.T) {
	const password = "s3cret-pw"
	start := time.Now()
	d := openDead(t, password)
	if el := time.Since(start); el > 4*deadTimeout+time.Second {
		t.Errorf("Open took %v", el)
	}
	d.errs.check(t, OpConnect)
	entries := d.log.entries(t)
	if len(entries) != 1 {
		t.Fatalf("Open logged %d lines, want 1: %s", len(entries), d.log)
	}
	w := entries[0]
	if w["level"] != "warn" || w["op"] != OpConnect || w["redis"] != d.addr || w["error"] == "" {
		t.Errorf("warning = %v, want level warn, op connect, redis %s and an error", w, d.addr)
	}

	// Every store, with personal keys.
	ctx := context.Background()
	const link = "mk_sandbox_copy_private_link"
	ids := mustIdentities(t, d.c, testKey(0xA1))
	ids.Set(ctx, cacheKey(link), cache.SharedEntry{Identity: fixture(t, sandbox.LinkInternational), FetchedAt: time.Now()}, time.Minute, "")
	ids.Get(ctx, cacheKey(link))
	if unlock, _, ok := ids.Lock(ctx, cacheKey(link), time.Minute); ok {
		unlock()
	}
	NewBudget(d.c, testNamespace, 3, 10, time.Minute).Reserve(ctx, link)
	NewLimiter(d.c, "user", 60, 3).Allow(ctx, "alice@example.com")
	q := "query { link(id: \"" + link + "\") { id } }"
	apq := NewAPQ(d.c, 10, time.Minute)
	apq.Add(ctx, sha(q), q)
	apq.Get(ctx, sha("other"))

	log := d.log.String()
	for _, secret := range []string{password, link, "José", "alice", testNamespace, sha(q), "mkgraph-test-dead", hashName(testNamespace)} {
		if strings.Contains(log, secret) {
			t.Errorf("the log contains %q:\n%s", secret, log)
		}
	}
	want := []string{OpConnect, OpCacheSet, OpCacheGet, OpLock, OpBudget, OpRateLimit, OpAPQSet, OpAPQGet}
	d.errs.check(t, want...)
	for _, op := range want {
		if n := len(d.log.warnings(t, op)); n != 1 {
			t.Errorf("%d warnings for %s, want 1", n, op)
		}
	}
}

func TestDescribe(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 6379},
		Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"breaker open", gobreaker.ErrOpenState, "circuit open after repeated failures"},
		{"breaker half-open busy", gobreaker.ErrTooManyRequests, "circuit open after repeated failures"},
		{"deadline", context.DeadlineExceeded, "timeout"},
		{"wrapped deadline", fmt.Errorf("i/o: %w", context.DeadlineExceeded), "timeout"},
		{"net timeout", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, "timeout"},
		{"refused, without the address", refused, "dial: connect: connection refused"},
		{"server error", errors.New("READONLY You can't write against a read only replica."), "READONLY You can't write against a read only replica."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describe(tt.err); got != tt.want {
				t.Errorf("describe = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHashName(t *testing.T) {
	tests := []struct {
		a, b []string
	}{
		{[]string{"ab", "c"}, []string{"a", "bc"}},
		{[]string{"a\x00b"}, []string{"a", "b"}},
		{[]string{"a"}, []string{"a", ""}},
		{[]string{"ns", "link"}, []string{"link", "ns"}},
	}
	for _, tt := range tests {
		ha, hb := hashName(tt.a...), hashName(tt.b...)
		if len(ha) != 64 || strings.Trim(ha, "0123456789abcdef") != "" {
			t.Errorf("hashName(%q) = %q, want 64 hex digits", tt.a, ha)
		}
		if ha == hb && strings.Join(tt.a, "\x00") != strings.Join(tt.b, "\x00") {
			t.Errorf("hashName(%q) == hashName(%q)", tt.a, tt.b)
		}
	}
	if hashName("ns", "link") != hashName("ns", "link") {
		t.Error("hashName is not deterministic")
	}
}
