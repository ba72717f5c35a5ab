package redisstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/internal/testing/logtest"
	"github.com/mkgraph/mkgraph/internal/testing/redistest"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// recorder collects the operations a Client passes to Config.OnError.
type recorder struct {
	mu  sync.Mutex
	ops []string
}

func (r *recorder) onError(op string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
}

// count returns how many times op was reported.
func (r *recorder) count(op string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, o := range r.ops {
		if o == op {
			n++
		}
	}
	return n
}

// all returns every report so far, in order.
func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ops)
}

// logBuffer is a goroutine-safe zerolog sink.
type logBuffer struct{ logtest.Buffer }

// entries decodes the JSON lines logged so far.
func (l *logBuffer) entries(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader([]byte(l.String())))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// warnings returns the warn-level entries logged for op ("" for any).
func (l *logBuffer) warnings(t testing.TB, op string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range l.entries(t) {
		if e["level"] == "warn" && (op == "" || e["op"] == op) {
			out = append(out, e)
		}
	}
	return out
}

// env is a live Redis for one test: a unique prefix, a raw client to look
// at what the stores wrote, and the reports of the Clients it opens.
type env struct {
	url, prefix string
	rdb         *redis.Client
	errs        *recorder
	log         *logBuffer
}

func newEnv(t testing.TB) *env {
	t.Helper()
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	return &env{url: url, prefix: prefix, rdb: redistest.Client(t, url), errs: &recorder{}, log: &logBuffer{}}
}

// open opens a Client on the test's Redis and prefix, closed when the test
// ends. Each Client is one "replica".
func (e *env) open(t testing.TB) *Client {
	t.Helper()
	return mustOpen(t, Config{URL: e.url, Prefix: e.prefix, Log: zerolog.New(e.log), OnError: e.errs.onError})
}

// keys returns the keys under the test's prefix (and redis_rate's
// "rate:"-prefixed ones), sorted.
func (e *env) keys(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, pattern := range []string{e.prefix + "*", "rate:" + e.prefix + "*"} {
		iter := e.rdb.Scan(context.Background(), 0, pattern, 1000).Iterator()
		for iter.Next(context.Background()) {
			out = append(out, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Fatalf("SCAN %s: %v", pattern, err)
		}
	}
	slices.Sort(out)
	return out
}

func mustOpen(t testing.TB, cfg Config) *Client {
	t.Helper()
	c, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// deadTimeout is the Config.Timeout of the Clients of a dead Redis: short,
// since each failure before the breaker opens costs about that much.
const deadTimeout = 100 * time.Millisecond

// dead is a Client of a Redis that refuses connections.
type dead struct {
	c    *Client
	errs *recorder
	log  *logBuffer
	addr string
}

func openDead(t testing.TB, password string) *dead {
	t.Helper()
	d := &dead{errs: &recorder{}, log: &logBuffer{}, addr: deadAddr(t)}
	userinfo := ""
	if password != "" {
		userinfo = ":" + password + "@"
	}
	d.c = mustOpen(t, Config{
		URL:     "redis://" + userinfo + d.addr + "/0",
		Prefix:  "mkgraph-test-dead:",
		Timeout: deadTimeout,
		Log:     zerolog.New(d.log),
		OnError: d.errs.onError,
	})
	return d
}

// hangingRedis accepts connections and never answers, as a Redis stuck on
// a slow command or a black-holed network would. It stops when the test
// ends.
func hangingRedis(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// fixtureLinks returns the sandbox links that answer a well-formed identity.
func fixtureLinks(t testing.TB) []string {
	t.Helper()
	var ids []string
	for _, l := range sandbox.Links() {
		if l.Status == http.StatusOK && !l.Fault {
			ids = append(ids, l.ID)
		}
	}
	for _, must := range []string{sandbox.LinkSeed, sandbox.LinkInternational, sandbox.LinkLarge} {
		if !slices.Contains(ids, must) {
			t.Fatalf("sandbox.Links() has no fixture %s (have %v)", must, ids)
		}
	}
	return ids
}

var sandboxServer = sync.OnceValue(func() *sandbox.Server { return sandbox.New(sandbox.Options{}) })

// fixture returns a freshly decoded identity answer of a sandbox link.
func fixture(t testing.TB, linkID string) *upstream.Identity {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/links/"+linkID+"/identity", nil)
	req.Header.Set("X-Client-Id", sandbox.DefaultClientID)
	req.Header.Set("X-Client-Secret", sandbox.DefaultClientSecret)
	rec := httptest.NewRecorder()
	sandboxServer().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("sandbox %s: status %d: %.300s", linkID, rec.Code, rec.Body)
	}
	id, err := upstream.DecodeIdentity(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("sandbox %s: %v", linkID, err)
	}
	return id
}

// personal returns the personal strings of an identity: owner names,
// emails, phone numbers and streets (at least 6 bytes long, so that a
// random match in ciphertext is out of the question).
func personal(id *upstream.Identity) []string {
	seen := map[string]bool{}
	add := func(s *string) {
		if s != nil && len(*s) >= 6 {
			seen[*s] = true
		}
	}
	for _, a := range id.Accounts {
		for _, o := range a.Owners {
			for _, n := range o.Names {
				add(n)
			}
			for _, e := range o.Emails {
				add(e.Address)
			}
			for _, p := range o.PhoneNumbers {
				add(p.Number)
			}
			for _, ad := range o.Addresses {
				add(ad.Street)
			}
		}
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// identityCmp compares decoded identities strictly: Decimal digits count,
// times compare by instant (time.Time.Equal), nil and empty differ.
var identityCmp = []cmp.Option{
	cmp.AllowUnexported(upstream.Decimal{}),
}

// cmdHook records the arguments of every command a go-redis client sends.
type cmdHook struct {
	mu   sync.Mutex
	cmds [][]any
}

func (h *cmdHook) record(args []any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cmds = append(h.cmds, args)
}

func (h *cmdHook) all() [][]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.cmds)
}

func (h *cmdHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *cmdHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.record(cmd.Args())
		return next(ctx, cmd)
	}
}

func (h *cmdHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.record(c.Args())
		}
		return next(ctx, cmds)
	}
}

// within fails the test unless got is in (lo, hi].
func within(t testing.TB, what string, got, lo, hi time.Duration) {
	t.Helper()
	if got <= lo || got > hi {
		t.Errorf("%s = %v, want in (%v, %v]", what, got, lo, hi)
	}
}

// lossyProxy forwards connections to a Redis, except that the reply to the
// first command matching trigger is dropped with the connection, after
// Redis has run the command: a reply lost on the network.
type lossyProxy struct {
	addr    string
	fired   atomic.Bool
	trigger func(cmd []byte) bool
}

func newLossyProxy(t testing.TB, redisAddr string, trigger func(cmd []byte) bool) *lossyProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyProxy{addr: ln.Addr().String(), trigger: trigger}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		conns = append(conns, c)
	}
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", redisAddr)
			if err != nil {
				client.Close()
				continue
			}
			track(client)
			track(server)
			var drop atomic.Bool
			wg.Go(func() { // client -> Redis
				buf := make([]byte, 64<<10)
				for {
					n, err := client.Read(buf)
					if n > 0 {
						if p.trigger(buf[:n]) && p.fired.CompareAndSwap(false, true) {
							drop.Store(true)
						}
						if _, err := server.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						server.Close()
						return
					}
				}
			})
			wg.Go(func() { // Redis -> client
				buf := make([]byte, 64<<10)
				for {
					n, err := server.Read(buf)
					if drop.Load() {
						client.Close()
						server.Close()
						return
					}
					if n > 0 {
						if _, err := client.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						client.Close()
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}
