package redisstore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/internal/testing/logtest"
	"github.com/mkgraph/mkgraph/internal/testing/redistest"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
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

// check fails the test unless the reports so far are exactly want, in
// order (none when want is empty).
func (r *recorder) check(t testing.TB, want ...string) {
	t.Helper()
	got := r.all()
	if len(want) == 0 {
		if len(got) != 0 {
			t.Errorf("OnError reports %v, want none", got)
		}
		return
	}
	if !cmp.Equal(got, want) {
		t.Errorf("OnError reports %v, want %v", got, want)
	}
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

// testNamespace stands for cache.NamespaceFor of some credentials.
var testNamespace = cache.NamespaceFor("https://api.moneykit.example", "client_test")

// cacheKey is the key upstream/cache gives the Shared store for a link.
func cacheKey(linkID string) string { return testNamespace + "\x00" + linkID }

// testKey returns an AES-256 key of one repeated byte.
func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func mustIdentities(t testing.TB, c *Client, keys ...[]byte) *Identities {
	t.Helper()
	s, err := NewIdentities(c, keys)
	if err != nil {
		t.Fatalf("NewIdentities: %v", err)
	}
	return s
}

// sha returns the APQ hash of a query text.
func sha(q string) string {
	sum := sha256.Sum256([]byte(q))
	return hex.EncodeToString(sum[:])
}
