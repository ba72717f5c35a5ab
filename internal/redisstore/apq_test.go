package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAPQShared(t *testing.T) {
	tests := []struct {
		name, query string
		ttl         time.Duration
		wantTTL     time.Duration
	}{
		{"default ttl", "query { link(id: $id) { id } }", 0, DefaultAPQTTL},
		{"custom ttl", "{ __typename }", time.Minute, time.Minute},
		{"non-ASCII text", "query Ñandú { link(id: \"é\") { id } } # 日本", time.Hour, time.Hour},
		{"empty text", "", time.Minute, time.Minute},
		{"large text", "query {" + strings.Repeat(" __typename", 50000) + " }", time.Minute, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			a1 := NewAPQ(e.open(t), 10, tt.ttl)
			a2 := NewAPQ(e.open(t), 10, tt.ttl)
			h := sha(tt.query)
			if _, ok := a2.Get(ctx, h); ok {
				t.Fatal("Get before Add: hit")
			}
			a1.Add(ctx, h, tt.query)
			got, ok := a2.Get(ctx, h)
			if !ok || got != tt.query {
				t.Fatalf("second replica Get = %.60q, %v; want the text", got, ok)
			}
			keys := e.keys(t)
			if want := []string{e.prefix + "apq:" + h}; !cmp.Equal(keys, want) {
				t.Errorf("keys = %q, want %q", keys, want)
			}
			pttl, err := e.rdb.PTTL(ctx, e.prefix+"apq:"+h).Result()
			if err != nil {
				t.Fatal(err)
			}
			within(t, "PTTL", pttl, tt.wantTTL-2*time.Second, tt.wantTTL)
			e.errs.check(t)
		})
	}
}

// A read from Redis extends the text's life (GETEX), so that a query in use
// does not expire.
func TestAPQGetRefreshesTTL(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const q = "{ __typename }"
	NewAPQ(e.open(t), 10, time.Hour).Add(ctx, sha(q), q)
	key := e.prefix + "apq:" + sha(q)
	if err := e.rdb.PExpire(ctx, key, 10*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	if got, ok := NewAPQ(e.open(t), 10, time.Hour).Get(ctx, sha(q)); !ok || got != q {
		t.Fatalf("Get = %q, %v", got, ok)
	}
	pttl, err := e.rdb.PTTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	within(t, "PTTL after a Get", pttl, time.Hour-2*time.Second, time.Hour)
}

// Texts planted in Redis are checked against their hash.
func TestAPQPlanted(t *testing.T) {
	const real, evil = "query { me { id } }", "mutation { deleteEverything }"
	tests := []struct {
		name      string
		hash      string
		value     string
		wantOK    bool
		wantError bool
	}{
		{"text of another hash", sha(real), evil, false, true},
		{"right text with a trailing space", sha(real), real + " ", false, true},
		{"empty text", sha(real), "", false, true},
		{"genuine", sha(real), real, true, false},
		{"upper-case hash", strings.ToUpper(sha(real)), real, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			a := NewAPQ(e.open(t), 10, time.Minute)
			if err := e.rdb.Set(ctx, e.prefix+"apq:"+tt.hash, tt.value, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			got, ok := a.Get(ctx, tt.hash)
			if ok != tt.wantOK || (ok && got != tt.value) || (!ok && got != "") {
				t.Errorf("Get = %q, %v; want ok %v", got, ok, tt.wantOK)
			}
			want := []string(nil)
			if tt.wantError {
				want = []string{OpAPQGet}
			}
			e.errs.check(t, want...)
			// A refused text is not cached locally either: still refused.
			if !tt.wantOK {
				if _, ok := a.Get(ctx, tt.hash); ok {
					t.Error("second Get served the planted text")
				}
			}
		})
	}
}

// Hashes that are not a hex SHA-256 never make a Redis key: a client may
// send anything as sha256Hash.
func TestAPQOddHashes(t *testing.T) {
	huge := strings.Repeat("a", 1<<20)
	tests := []struct {
		name   string
		hash   string
		add    bool   // also Add under it
		caught string // the bug this case caught (fixed)
	}{
		{"1 MB on Get", huge, false, ""},
		{"63 characters", sha("x")[:63], false, ""},
		{"65 characters", sha("x") + "0", false, ""},
		{"empty", "", false, ""},
		{"1 MB on Add", huge, true,
			"apq.go:74-78 Add does not check the hash as Get does (apq.go:44): a non-SHA-256 hash, 1 MB here, becomes a Redis key; fix: in Add, skip the Redis SET (keep the local Add) unless len(hash) == 64 and it is the hex SHA-256 of query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.open(t)
			hook := &cmdHook{}
			c.Redis().AddHook(hook)
			a := NewAPQ(c, 10, time.Minute)
			ctx := context.Background()
			if tt.add {
				a.Add(ctx, tt.hash, "{ __typename }")
			} else if _, ok := a.Get(ctx, tt.hash); ok {
				t.Error("Get hit")
			}
			for _, cmd := range hook.all() {
				t.Errorf("Redis was sent %.80s", fmt.Sprint(cmd...))
			}
			if keys := e.keys(t); len(keys) != 0 {
				t.Errorf("keys = %.200q", keys)
			}
		})
	}
}

// A hash added locally is served from the LRU without asking Redis; one
// evicted from the LRU is still found in Redis.
func TestAPQLocalLRU(t *testing.T) {
	e := newEnv(t)
	c := e.open(t)
	a := NewAPQ(c, 1, time.Minute)
	ctx := context.Background()
	q1, q2 := "{ a: __typename }", "{ b: __typename }"
	a.Add(ctx, sha(q1), q1)
	hook := &cmdHook{}
	c.Redis().AddHook(hook)
	if got, ok := a.Get(ctx, sha(q1)); !ok || got != q1 {
		t.Fatalf("Get = %q, %v", got, ok)
	}
	if n := len(hook.all()); n != 0 {
		t.Errorf("a local hit asked Redis %d times", n)
	}
	a.Add(ctx, sha(q2), q2) // evicts q1 from the LRU of 1
	if got, ok := a.Get(ctx, sha(q1)); !ok || got != q1 {
		t.Errorf("Get of an evicted hash = %q, %v; want it from Redis", got, ok)
	}
	// Read from Redis, it is now local again.
	if got, ok := a.Get(ctx, sha(q1)); !ok || got != q1 {
		t.Errorf("second Get = %q, %v", got, ok)
	}
	if n := len(hook.all()); n != 2 { // SET q2, GETEX q1
		t.Errorf("Redis was asked %d times, want 2: %v", n, hook.all())
	}
	e.errs.check(t)
}

func TestAPQRedisDown(t *testing.T) {
	d := openDead(t, "pw-apq")
	a := NewAPQ(d.c, 10, time.Minute)
	ctx := context.Background()
	const q = "query Secret { link(id: \"mk_apq_link\") { id } }"
	a.Add(ctx, sha(q), q)
	if got, ok := a.Get(ctx, sha(q)); !ok || got != q {
		t.Errorf("Get of an added hash with Redis down = %q, %v; want it from the LRU", got, ok)
	}
	if _, ok := a.Get(ctx, sha("unknown")); ok {
		t.Error("Get of an unknown hash hit")
	}
	d.errs.check(t, OpConnect, OpAPQSet, OpAPQGet)
	for _, op := range []string{OpAPQSet, OpAPQGet} {
		if w := d.log.warnings(t, op); len(w) != 1 {
			t.Errorf("%d %s warnings, want 1", len(w), op)
		}
	}
	if s := d.log.String(); strings.Contains(s, "pw-apq") || strings.Contains(s, sha(q)) || strings.Contains(s, "mk_apq_link") {
		t.Errorf("the log holds the password, a hash or a query: %s", s)
	}
}

// TestAPQWritesBounded: one replica writes at most a burst of registrations
// to Redis at once (any caller can register texts); the rest stay local.
func TestAPQWritesBounded(t *testing.T) {
	e := newEnv(t)
	a := NewAPQ(e.open(t), 1000, time.Minute)
	ctx := context.Background()
	for i := range apqBurst + 50 {
		q := "{ a" + strconv.Itoa(i) + " }"
		a.Add(ctx, sha(q), q)
		if got, ok := a.Get(ctx, sha(q)); !ok || got != q {
			t.Fatalf("registration %d not served locally", i)
		}
	}
	if n := len(e.keys(t)); n < apqBurst || n > apqBurst+5 {
		t.Errorf("%d registrations in Redis, want about the burst of %d", n, apqBurst)
	}
	if r := e.errs.all(); len(r) != 0 {
		t.Errorf("refused writes reported as Redis errors: %v", r)
	}
}
