// Package loader holds the per-request dataloaders. Each GraphQL request gets
// its own set, so one caller's data is never served to another; within a
// request, each distinct link id costs one upstream call however many times
// it is selected.
package loader

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graph-gophers/dataloader/v7"
	"github.com/rs/zerolog"
	"golang.org/x/sync/semaphore"

	"github.com/mkgraph/mkgraph/graph/model"
	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/ctxkey"
	"github.com/mkgraph/mkgraph/internal/defaults"
	"github.com/mkgraph/mkgraph/upstream"
)

// Fetcher fetches one link's identity answer. *upstream.Client satisfies it.
// Errors should be *apierr.Error.
type Fetcher interface {
	GetIdentity(ctx context.Context, linkID string) (*upstream.Identity, error)
}

var _ Fetcher = (*upstream.Client)(nil)

// Defaults for Config.
const (
	DefaultConcurrency = 10
	// DefaultMaxLinks bounds the distinct links one request may load: each
	// is an upstream call, and MoneyKit allows 600 per minute per app.
	DefaultMaxLinks = 100
	// DefaultMaxAccounts bounds the accounts one request may return, over
	// all selections: aliases of a large link would otherwise build an
	// answer of any size from one upstream call.
	DefaultMaxAccounts = 5000
	// DefaultWait is the batch window: none. Batching saves no upstream
	// calls here (the API takes one link per call, and the per-request
	// cache already makes each distinct id one call), while any timer,
	// however short, delays every request on a busy host: a request does
	// not wait to gather keys.
	DefaultWait time.Duration = 0
	// DefaultMaxAccountsInFlight bounds the accounts of large answers being
	// built at once, over all requests (see Config.MaxAccountsInFlight).
	DefaultMaxAccountsInFlight = 2000
	// LargeAnswer is the account count from which a link's accounts pass
	// through the in-flight gate: smaller answers never wait.
	LargeAnswer = 100
)

// Config configures the loaders of every request.
type Config struct {
	Fetcher     Fetcher
	Concurrency int            // distinct links fetched at once per request; 0: DefaultConcurrency
	Wait        time.Duration  // batch window; 0 (DefaultWait): none
	MaxLinks    int            // distinct links per request; 0: DefaultMaxLinks
	MaxAccounts int            // accounts returned per request; 0: DefaultMaxAccounts
	OnBatch     func(size int) // told the size of each batch, for metrics; nil: nothing
	// MaxAccountsInFlight bounds memory: answers of LargeAnswer accounts or
	// more (gqlgen holds much memory per account while it builds them)
	// wait until the accounts being built by other requests leave room, so
	// that many clients reading a large link at once hold a few answers'
	// memory, not one each. A request holds its share until its answer is
	// built (ReleaseLarge) or ends. 0: DefaultMaxAccountsInFlight; negative:
	// no bound.
	MaxAccountsInFlight int
	// ShareModels lets requests share the model built from one identity
	// answer (the same *upstream.Identity, as the identity cache serves it)
	// instead of converting it for each: set it when the Fetcher is the
	// identity cache. Links of more than 16 accounts are converted each
	// time; at most 256 models are kept, each as long as its answer.
	ShareModels bool
}

// Factory makes a fresh set of Loaders for each request.
type Factory struct {
	cfg    Config
	warned *onceSet            // unknown upstream values already logged; the server builds one Factory, so once per process
	gate   *semaphore.Weighted // accounts of large answers in flight; nil: no bound
	gated  gateStats
	models *memo // nil unless Config.ShareModels
}

// gateStats count what the gate holds and who waits, for metrics.
type gateStats struct {
	held, waiting atomic.Int64
}

// NewFactory returns a Factory.
func NewFactory(cfg Config) *Factory {
	defaults.Positive(&cfg.Concurrency, DefaultConcurrency)
	defaults.Positive(&cfg.MaxLinks, DefaultMaxLinks)
	defaults.Positive(&cfg.MaxAccounts, DefaultMaxAccounts)
	if cfg.MaxAccountsInFlight == 0 {
		cfg.MaxAccountsInFlight = DefaultMaxAccountsInFlight
	}
	f := &Factory{cfg: cfg, warned: &onceSet{seen: map[string]struct{}{}}}
	if cfg.ShareModels {
		f.models = newMemo()
	}
	if cfg.MaxAccountsInFlight > 0 {
		f.gate = semaphore.NewWeighted(int64(cfg.MaxAccountsInFlight))
	}
	return f
}

// Gate reports the accounts of large answers being built now, and how many
// requests wait for room (for metrics).
func (f *Factory) Gate() (accounts, waiting int64) {
	return f.gated.held.Load(), f.gated.waiting.Load()
}

// Middleware attaches a new set of Loaders to every request's context.
func (f *Factory) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l := f.New()
		defer l.release()
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), l)))
	})
}

// New returns a set of Loaders for one request.
func (f *Factory) New() *Loaders {
	l := &Loaders{fetcher: f.cfg.Fetcher, sem: make(chan struct{}, f.cfg.Concurrency), warned: f.warned, onBatch: f.cfg.OnBatch,
		maxLinks: int64(f.cfg.MaxLinks), maxAccounts: int64(f.cfg.MaxAccounts),
		gate: f.gate, gateCap: int64(f.cfg.MaxAccountsInFlight), stats: &f.gated, models: f.models}
	l.links = dataloader.NewBatchedLoader(l.batch,
		dataloader.WithWait[string, *model.Link](f.cfg.Wait),
		dataloader.WithBatchCapacity[string, *model.Link](256),
		// The queue of keys waiting for a batch: its default (1,000) is an
		// 8 KiB channel per request; a full queue only makes a load wait
		// for the batcher, which drains it at once.
		dataloader.WithInputCapacity[string, *model.Link](16),
	)
	return l
}

// Loaders are one request's dataloaders.
type Loaders struct {
	fetcher Fetcher
	links   *dataloader.Loader[string, *model.Link]
	sem     chan struct{} // bounds concurrent fetches across the request's batches
	warned  *onceSet
	onBatch func(int)

	// Per-request budgets: distinct links fetched, accounts returned.
	maxLinks, maxAccounts int64
	fetched, accounts     atomic.Int64

	// The process's gate on large answers, and what this request holds.
	gate    *semaphore.Weighted
	gateCap int64
	stats   *gateStats
	gateMu  sync.Mutex
	held    int64

	models *memo // shared by the Factory's requests; nil: none
}

var loadersKey = ctxkey.New[*Loaders]("loader.Loaders")

// NewContext returns ctx carrying l.
func NewContext(ctx context.Context, l *Loaders) context.Context { return loadersKey.With(ctx, l) }

// For returns the Loaders of ctx, or nil when the middleware did not run.
func For(ctx context.Context) *Loaders { return loadersKey.From(ctx) }

// errNoLoaders is a wiring mistake: the handler runs without Middleware.
var errNoLoaders = &apierr.Error{Code: apierr.CodeInternal, Message: "Internal error.", Err: fmt.Errorf("loader: no loaders in context")}

// Link loads one link through the request's loaders.
func Link(ctx context.Context, id string) (*model.Link, error) { return StartLink(ctx, id)() }

// StartLink queues one link on the request's loaders and returns its wait:
// a caller that starts every link it needs before waiting for any lets the
// loaders fetch them together.
func StartLink(ctx context.Context, id string) func() (*model.Link, error) {
	l := For(ctx)
	if l == nil {
		return func() (*model.Link, error) { return nil, errNoLoaders }
	}
	return l.links.Load(ctx, id)
}

// Links loads several links; errs[i] is the error of ids[i]. errs is nil when
// every link loaded.
func Links(ctx context.Context, ids []string) (links []*model.Link, errs []error) {
	return StartLinks(ctx, ids)()
}

// StartLinks is StartLink for several links.
func StartLinks(ctx context.Context, ids []string) func() ([]*model.Link, []error) {
	l := For(ctx)
	if l == nil {
		return func() ([]*model.Link, []error) {
			errs := make([]error, len(ids))
			for i := range errs {
				errs[i] = errNoLoaders
			}
			return make([]*model.Link, len(ids)), errs
		}
	}
	return l.links.LoadMany(ctx, ids)
}

// SpendAccounts takes n accounts from the request's budget, or returns
// facade.query_too_complex when the request has returned too many.
func SpendAccounts(ctx context.Context, n int) error {
	l := For(ctx)
	if l == nil {
		return errNoLoaders
	}
	if l.accounts.Add(int64(n)) > l.maxAccounts {
		return apierr.TooComplex(fmt.Sprintf("A request may return at most %d accounts in all.", l.maxAccounts))
	}
	return l.admit(ctx, int64(n))
}

// admit passes a large answer of n accounts through the gate. The request's
// first large answer waits for room (FIFO, until ctx ends); later ones take
// room when there is some and otherwise go on, so that a request never waits
// while holding room (two such requests could wait on each other).
func (l *Loaders) admit(ctx context.Context, n int64) error {
	if l.gate == nil || n < LargeAnswer {
		return nil
	}
	n = min(n, l.gateCap)
	l.gateMu.Lock()
	defer l.gateMu.Unlock()
	if l.held > 0 {
		if l.gate.TryAcquire(n) {
			l.held += n
			l.stats.held.Add(n)
		}
		return nil
	}
	l.stats.waiting.Add(1)
	err := l.gate.Acquire(ctx, n)
	l.stats.waiting.Add(-1)
	if err != nil {
		return apierr.AsError(context.Cause(ctx))
	}
	l.held = n
	l.stats.held.Add(n)
	return nil
}

// ReleaseLarge gives back the room the request of ctx holds for large
// answers, once its answer is built (before it is written): a client that
// reads slowly then holds no other request back. It may be called more than
// once; the loaders' Middleware calls it again when the request ends.
func ReleaseLarge(ctx context.Context) {
	if l := For(ctx); l != nil {
		l.release()
	}
}

// Release gives back what l holds of the large-answer gate: for loaders made
// with Factory.New outside Middleware (a subscription's per-event loaders),
// once the answer they served is built. It may be called more than once.
func (l *Loaders) Release() { l.release() }

// release gives back what the request holds of the gate.
func (l *Loaders) release() {
	l.gateMu.Lock()
	defer l.gateMu.Unlock()
	if l.held > 0 {
		l.gate.Release(l.held)
		l.stats.held.Add(-l.held)
		l.held = 0
	}
}

// batch fetches distinct link ids concurrently, bounded by the request's
// semaphore, and returns one non-nil result per key, in key order.
func (l *Loaders) batch(ctx context.Context, ids []string) []*dataloader.Result[*model.Link] {
	if l.onBatch != nil {
		l.onBatch(len(ids))
	}
	results := make([]*dataloader.Result[*model.Link], len(ids))
	if len(ids) == 1 {
		results[0] = l.fetch(ctx, ids[0])
		return results
	}
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { results[i] = l.fetch(ctx, id) })
	}
	wg.Wait()
	return results
}

func (l *Loaders) fetch(ctx context.Context, id string) (res *dataloader.Result[*model.Link]) {
	defer func() {
		if p := recover(); p != nil {
			zerolog.Ctx(ctx).Error().Str("panic_type", fmt.Sprintf("%T", p)).Bytes("stack", debug.Stack()).Msg("panic while loading a link")
			res = &dataloader.Result[*model.Link]{Error: &apierr.Error{Code: apierr.CodeInternal, Message: "Internal error."}}
		}
	}()
	// Ids are not validated here: the resolvers do it, where they enter.
	// The loader's cache brings each distinct id here once per request.
	if l.fetched.Add(1) > l.maxLinks {
		return &dataloader.Result[*model.Link]{Error: apierr.TooComplex(
			fmt.Sprintf("A request may load at most %d distinct links.", l.maxLinks))}
	}
	select {
	case l.sem <- struct{}{}:
		defer func() { <-l.sem }()
	case <-ctx.Done():
	}
	// select picks at random when both are ready: a request that ended
	// must not start a call either way.
	if err := ctx.Err(); err != nil {
		return &dataloader.Result[*model.Link]{Error: apierr.AsError(err)}
	}
	identity, err := l.fetcher.GetIdentity(ctx, id)
	if err != nil {
		return &dataloader.Result[*model.Link]{Error: err}
	}
	warn := l.warnFunc(ctx)
	return &dataloader.Result[*model.Link]{Data: l.models.link(identity, func() *model.Link { return model.NewLink(identity, warn) })}
}

// warnFunc logs each unknown upstream value once per Factory.
func (l *Loaders) warnFunc(ctx context.Context) model.Warner {
	return func(kind, value string) {
		if l.warned.add(kind + "\x00" + value) {
			zerolog.Ctx(ctx).Warn().Str("kind", kind).Str("value", truncate(value, 64)).
				Msg("upstream sent a value the schema does not know; mapped to UNKNOWN or left out")
		}
	}
}

// onceSet remembers what was already logged, up to a bound, so a hostile
// upstream cannot grow it without limit (past it, values are not logged).
type onceSet struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

const maxWarned = 1024

func (s *onceSet) add(k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[k]; ok || len(s.seen) >= maxWarned {
		return false
	}
	s.seen[k] = struct{}{}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
