package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/graph/plan"
	"github.com/mkgraph/mkgraph/upstream"
)

// The differential tests (issue 12): two handlers built by NewHandler, one
// with ExecutorGQLgen and one with ExecutorPlan, over the same deterministic
// upstream (differential_upstream_test.go), get the same HTTP request and
// must answer the same bytes: status, headers and body. The corpus is in
// differential_corpus_test.go, the generated operations and the fuzz target
// in differential_gen_test.go and fuzz_differential_test.go.

// diffConfig configures both handlers of a pair.
type diffConfig struct {
	Name                  string
	MaxLinkIDs            int  // HandlerConfig.MaxLinkIDs; 0: the default
	MaxLinks, MaxAccounts int  // loader.Config; 0: the defaults
	Introspection         bool // HandlerConfig.Introspection and Suggestions
	Extensions            bool // HandlerConfig.ResponseExtensions adds some
}

// The budgets of diffMain and diffWide are out of the way: once a request
// exceeds one, which of its links or accounts selections gets the error
// depends on the loaders' goroutines (the same executor can answer two ways);
// diffLinkBudget and diffAccountBudget run the requests where it does not (TestExecutorsAgreeFailures).
var (
	diffMain = diffConfig{Name: "main", MaxLinkIDs: 6, MaxAccounts: 1 << 30, Introspection: true}
	diffWide = diffConfig{Name: "wide", MaxAccounts: 1 << 30}
	// The budgets, one at a time.
	diffLinkBudget    = diffConfig{Name: "links budget", MaxLinkIDs: 6, MaxLinks: 1, MaxAccounts: 1 << 30}
	diffAccountBudget = diffConfig{Name: "accounts budget", MaxLinkIDs: 6, MaxAccounts: 4}
)

// diffPair is the two handlers of one configuration, kept for the process
// (their plan caches live across requests, as in production).
type diffPair struct {
	cfg          diffConfig
	plan, gqlgen http.Handler
}

// diffStats count what the plan did with the requests a pair answered.
type diffStats struct {
	requests atomic.Int64
	planned  atomic.Int64 // the plan ran (a fresh plan.Cache has a plan for the operation)
	proven   atomic.Int64 // … and gqlgen ran root resolvers for it, which the plan handler did not
	fallback atomic.Int64 // the operation ran on gqlgen on both handlers
	refused  atomic.Int64 // no operation ran: refused before execution
}

func (s *diffStats) String() string {
	return fmt.Sprintf("%d requests: %d on the plan (%d of them proven by gqlgen's root resolver count), %d on gqlgen, %d refused before execution",
		s.requests.Load(), s.planned.Load(), s.proven.Load(), s.fallback.Load(), s.refused.Load())
}

var diffPairs sync.Map // diffConfig → *diffPair

func newDiffPair(tb testing.TB, cfg diffConfig) *diffPair {
	tb.Helper()
	if p, ok := diffPairs.Load(cfg); ok {
		return p.(*diffPair)
	}
	identities, err := diffIdentities()
	if err != nil {
		tb.Fatalf("differential upstream: %v", err)
	}
	p := &diffPair{cfg: cfg, plan: newDiffHandler(cfg, ExecutorPlan, identities), gqlgen: newDiffHandler(cfg, ExecutorGQLgen, identities)}
	actual, _ := diffPairs.LoadOrStore(cfg, p)
	return actual.(*diffPair)
}

func newDiffHandler(cfg diffConfig, executor string, identities map[string]*upstream.Identity) http.Handler {
	// diffFetcher hands out the same answer for a link every time, as the
	// identity cache does: the plan's handler shares the models built from
	// them across requests (Config.ShareModels), gqlgen's builds them anew,
	// so the comparison covers the memo too.
	factory := loader.NewFactory(loader.Config{Fetcher: diffFetcher{identities}, MaxLinks: cfg.MaxLinks,
		MaxAccounts: cfg.MaxAccounts, MaxAccountsInFlight: -1, ShareModels: executor == ExecutorPlan})
	hc := HandlerConfig{Executor: executor, MaxLinkIDs: cfg.MaxLinkIDs, Introspection: cfg.Introspection,
		Suggestions: cfg.Introspection, Authorize: diffAuthorize}
	if cfg.Extensions {
		hc.ResponseExtensions = func(context.Context) map[string]any {
			return map[string]any{"servedStale": map[string]any{"b": []any{1, "<&>"}, "a": true}}
		}
	}
	srv := NewHandler(hc)
	// Whether the plan covers the operation, as a fresh cache compiles it
	// (the handler's own cache must agree), and how many root resolvers
	// gqlgen's executor ran: the plan runs none.
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		if p := diffProbeFrom(ctx); p != nil {
			covered := int32(2)
			if plan.NewCache(1).For(ctx, graphql.GetOperationContext(ctx)) != nil {
				covered = 1
			}
			p.covered.Store(covered)
		}
		return next(ctx)
	})
	srv.AroundRootFields(func(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
		if p := diffProbeFrom(ctx); p != nil {
			p.roots.Add(1)
		}
		return next(ctx)
	})
	return factory.Middleware(srv)
}

// diffProbe is one request's record, in its context.
type diffProbe struct {
	roots   atomic.Int32 // root resolvers run by gqlgen's executor
	covered atomic.Int32 // 0: no operation ran; 1: the plan covers it; 2: it does not

	mu   sync.Mutex
	done map[string]chan struct{} // link ids fetched (diffAfter)
}

type diffProbeKey struct{}

func diffProbeFrom(ctx context.Context) *diffProbe {
	p, _ := ctx.Value(diffProbeKey{}).(*diffProbe)
	return p
}

func (p *diffProbe) ch(id string) chan struct{} {
	if p.done == nil {
		p.done = map[string]chan struct{}{}
	}
	c := p.done[id]
	if c == nil {
		c = make(chan struct{})
		p.done[id] = c
	}
	return c
}

func (p *diffProbe) fetched(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.ch(id)
	select {
	case <-c:
	default:
		close(c)
	}
}

func (p *diffProbe) waitFetched(id string) {
	p.mu.Lock()
	c := p.ch(id)
	p.mu.Unlock()
	select {
	case <-c:
	case <-time.After(5 * time.Second): // a test's mistake; the answers will tell
	}
}

// diffRequest is one HTTP request, sent to both handlers.
type diffRequest struct {
	Method        string // "": POST
	Accept        string
	Query         string
	OperationName string
	Variables     map[string]any
	Body          []byte // a POST's body as it is, instead of the fields above
}

func (r diffRequest) String() string {
	vars, _ := json.Marshal(r.Variables)
	if r.Body != nil {
		return fmt.Sprintf("%s Accept %q body %q", r.method(), r.Accept, r.Body)
	}
	return fmt.Sprintf("%s Accept %q operationName %q variables %s query:\n%s", r.method(), r.Accept, r.OperationName, vars, r.Query)
}

func (r diffRequest) method() string {
	if r.Method == "" {
		return http.MethodPost
	}
	return r.Method
}

func (r diffRequest) build(ctx context.Context) (*http.Request, error) {
	var req *http.Request
	if r.method() == http.MethodGet {
		q := url.Values{"query": {r.Query}}
		if r.OperationName != "" {
			q.Set("operationName", r.OperationName)
		}
		if r.Variables != nil {
			vars, err := json.Marshal(r.Variables)
			if err != nil {
				return nil, err
			}
			q.Set("variables", string(vars))
		}
		req = httptest.NewRequestWithContext(ctx, http.MethodGet, "/graphql?"+q.Encode(), nil)
	} else {
		body := r.Body
		if body == nil {
			m := map[string]any{"query": r.Query}
			if r.OperationName != "" {
				m["operationName"] = r.OperationName
			}
			if r.Variables != nil {
				m["variables"] = r.Variables
			}
			var err error
			if body, err = json.Marshal(m); err != nil {
				return nil, err
			}
		}
		req = httptest.NewRequestWithContext(ctx, r.method(), "/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	}
	if r.Accept != "" {
		req.Header.Set("Accept", r.Accept)
	}
	return req, nil
}

// diffAnswer is what one handler answered.
type diffAnswer struct {
	status int
	header http.Header
	body   []byte
	probe  *diffProbe
}

func serveDiff(tb testing.TB, h http.Handler, r diffRequest) diffAnswer {
	tb.Helper()
	probe := &diffProbe{}
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), diffProbeKey{}, probe), 30*time.Second)
	defer cancel()
	req, err := r.build(ctx)
	if err != nil {
		tb.Fatalf("build request: %v", err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return diffAnswer{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes(), probe: probe}
}

// Coverage of a request, as diffProbe.covered has it.
const (
	diffRefused  = 0 // no operation ran
	diffPlanned  = 1 // the plan ran it
	diffFallback = 2 // gqlgen ran it
)

// check sends r to both handlers and reports any difference; ok is false
// when there was one. stats, when not nil, counts the request.
func (p *diffPair) check(tb testing.TB, r diffRequest, stats *diffStats) (ok bool, covered int32) {
	tb.Helper()
	g := serveDiff(tb, p.gqlgen, r)
	pl := serveDiff(tb, p.plan, r)
	if stats == nil {
		stats = &diffStats{}
	}
	stats.requests.Add(1)
	ok = true
	fail := func(format string, args ...any) {
		tb.Helper()
		ok = false
		tb.Errorf("[%s] %s\nrequest: %s", p.cfg.Name, fmt.Sprintf(format, args...), r)
	}
	if g.status != pl.status || !reflect.DeepEqual(g.header, pl.header) || !bytes.Equal(g.body, pl.body) {
		fail("the executors differ:\ngqlgen: %d %v\n%s\nplan:   %d %v\n%s\n%s", g.status, g.header, clip(g.body),
			pl.status, pl.header, clip(pl.body), firstDifference(g.body, pl.body))
	}
	covered, planCovered := g.probe.covered.Load(), pl.probe.covered.Load()
	switch {
	case covered != planCovered:
		fail("the operation ran on one handler only (covered %d and %d)", covered, planCovered)
	case covered == diffRefused:
		stats.refused.Add(1)
	case covered == diffPlanned:
		stats.planned.Add(1)
		if n := pl.probe.roots.Load(); n != 0 {
			fail("the plan covers the operation, but gqlgen's executor ran %d root resolvers on the plan handler", n)
		}
		if g.probe.roots.Load() > 0 {
			stats.proven.Add(1)
		}
	case covered == diffFallback:
		stats.fallback.Add(1)
		if a, b := g.probe.roots.Load(), pl.probe.roots.Load(); a != b {
			fail("gqlgen runs the operation on both handlers, but ran %d and %d root resolvers", a, b)
		}
	}
	return ok, covered
}

func clip(b []byte) string {
	const max = 3000
	if len(b) > max {
		return fmt.Sprintf("%s… (%d bytes)", b[:max], len(b))
	}
	return string(b)
}

func firstDifference(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	if i == len(a) && i == len(b) {
		return "(bodies equal)"
	}
	from := max(0, i-80)
	return fmt.Sprintf("first difference at byte %d:\ngqlgen: …%q\nplan:   …%q", i, a[from:min(len(a), i+80)], b[from:min(len(b), i+80)])
}
