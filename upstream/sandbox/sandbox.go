// Package sandbox is an in-process MoneyKit API: deterministic identity fixtures, magic ids for every upstream error and network fault, fault injection, credential checks and call counting.
//
// It answers POST /auth/token and GET /links/{id}/identity in MoneyKit's wire
// format. It is the facade's default upstream, the fake behind every test, and
// it can be served on a port of its own:
//
//	srv := httptest.NewServer(sandbox.New(sandbox.Options{}))
//	defer srv.Close()
//
// Links lists the link ids it knows; any other id answers 404 link_error.not_found.
//
// Identity calls can be made to fail the ways a real network does, so that a
// client's resilience can be tested: slow, dripping, truncated, oversized or
// HTML answers, gateway errors, rate limits, reset connections and calls that
// never end. A Fault describes one; SetFault applies it to one link id,
// SetRandomFaults to a reproducible share of all calls, and the magic fault
// ids (LinkFault502 and the others) carry one built in, so that a person in
// GraphiQL can trigger each by id alone. ExpireTokensAfter makes access
// tokens expire after a number of calls, to test renewal.
//
// It also closes MoneyKit's refresh loop without credentials: POST
// /links/{id}/products accepts a refresh (202, or 429 when asked again
// within Options.RefreshInterval), completes it after Options.RefreshDelay
// (a later products.<name>.refreshed_at and, for identity, an added owner
// email refreshed-N@example.com), and sends signed link.product_refresh
// webhooks (pending, then completed) to Options.WebhookURL. GET
// /.well-known/jwks.json serves the keys that sign them (Rotate changes
// key), and POST /webhooks/test/link/{id} sends a test webhook. A Server
// that has refreshed or sent webhooks must be closed (Close) to end that
// background work.
package sandbox

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server is a simulated MoneyKit API. It implements http.Handler and is safe
// for concurrent use.
type Server struct {
	clientID, clientSecret []byte
	ttl                    time.Duration
	now                    func() time.Time
	latency                atomic.Int64 // a time.Duration

	mu sync.Mutex
	// tokens maps each issued access token to its expiry. Expired tokens stay
	// so that they can be told apart from tokens never issued.
	tokens        map[string]time.Time
	tokenCalls    int
	identityCalls int
	callsByLink   map[string]int
	lastQuery     map[string]url.Values
	faults        faultState

	// Refreshes: links' changed state, and the calls seen.
	refreshInterval, refreshDelay time.Duration
	links                         map[string]*linkState
	refreshCalls                  int
	refreshByLink                 map[string]int

	hooks *webhooks // its own lock
}

var _ http.Handler = (*Server)(nil)

// New returns a Server configured by opts.
func New(opts Options) *Server {
	s := &Server{
		clientID:     []byte(cmp.Or(opts.ClientID, DefaultClientID)),
		clientSecret: []byte(cmp.Or(opts.ClientSecret, DefaultClientSecret)),
		ttl:          cmp.Or(opts.TokenTTL, DefaultTokenTTL),
		now:          opts.Now,
		tokens:       make(map[string]time.Time),
		callsByLink:  make(map[string]int),
		lastQuery:    make(map[string]url.Values),

		refreshInterval: cmp.Or(opts.RefreshInterval, DefaultRefreshInterval),
		refreshDelay:    cmp.Or(opts.RefreshDelay, DefaultRefreshDelay),
		links:           make(map[string]*linkState),
		refreshByLink:   make(map[string]int),
		hooks:           newWebhooks(opts),
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.latency.Store(int64(opts.Latency))
	return s
}

// ServeHTTP answers POST /auth/token, GET /links/{id}/identity, POST
// /links/{id}/products, GET /.well-known/jwks.json and POST
// /webhooks/test/link/{id}, and 404 for any other path.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Route on the escaped path: an id holding an escaped "/" must stay one
	// segment rather than reach another route.
	path := r.URL.EscapedPath()
	switch path {
	case "/auth/token":
		s.serveToken(w, r)
		return
	case JWKSPath:
		s.serveJWKS(w, r)
		return
	}
	if id, ok := pathSegment(path, "/links/", "/identity"); ok {
		s.serveIdentity(w, r, id)
		return
	}
	if id, ok := pathSegment(path, "/links/", "/products"); ok {
		s.serveRefresh(w, r, id)
		return
	}
	if id, ok := pathSegment(path, TestWebhookPrefix, ""); ok {
		s.serveTestWebhook(w, r, id)
		return
	}
	if path == StatsPath && r.Method == http.MethodGet {
		jsonReply(http.StatusOK, mustJSON(s.Stats())).write(w)
		return
	}
	errRouteNotFound.write(w)
}

// pathSegment returns the unescaped {id} of an escaped prefix{id}suffix
// path, {id} being one non-empty segment.
func pathSegment(escapedPath, prefix, suffix string) (string, bool) {
	rest, ok := strings.CutPrefix(escapedPath, prefix)
	if !ok {
		return "", false
	}
	segment, ok := strings.CutSuffix(rest, suffix)
	if !ok || segment == "" || strings.Contains(segment, "/") {
		return "", false
	}
	id, err := url.PathUnescape(segment)
	return id, err == nil
}

func (s *Server) serveIdentity(w http.ResponseWriter, r *http.Request, linkID string) {
	// Count first, so that tests see every call whatever its answer.
	query := r.URL.Query()
	s.mu.Lock()
	s.identityCalls++
	s.callsByLink[linkID]++
	s.lastQuery[linkID] = query
	s.mu.Unlock()

	if !s.wait(r.Context()) {
		return // the client has gone; nobody would read an answer
	}
	if r.Method != http.MethodGet {
		errIdentityMethod.write(w)
		return
	}
	if failure := s.authorize(r); failure != nil {
		failure.write(w)
		return
	}
	// Faults come after the credential check, so that a client's 401
	// handling is never hidden by one.
	if f, ok := s.takeFault(linkID); ok {
		serveFault(w, r, f, func() reply { return s.identityReply(linkID, query) })
		return
	}
	s.identityReply(linkID, query).write(w)
}

// wait sleeps for the current latency and reports whether ctx outlived it.
func (s *Server) wait(ctx context.Context) bool {
	return sleep(ctx, time.Duration(s.latency.Load()))
}
