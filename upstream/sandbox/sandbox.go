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
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Credentials the sandbox accepts when Options leaves them empty.
const (
	// DefaultClientID is the client id accepted when Options.ClientID is empty.
	DefaultClientID = "mkgraph_sandbox_client"
	// DefaultClientSecret is the client secret accepted when Options.ClientSecret is empty.
	DefaultClientSecret = "mkgraph_sandbox_secret"
)

// DefaultTokenTTL is the lifetime of issued tokens when Options.TokenTTL is
// 0: MoneyKit's.
const DefaultTokenTTL = 3600 * time.Second

// Options configures a Server. The zero value is ready to use.
type Options struct {
	// ClientID and ClientSecret are the accepted credentials; empty means
	// DefaultClientID and DefaultClientSecret.
	ClientID, ClientSecret string
	// Latency is added before answering every identity call. The wait ends
	// early, with no answer, when the request is cancelled.
	Latency time.Duration
	// TokenTTL is the lifetime (expires_in) of issued tokens; 0 means
	// DefaultTokenTTL.
	TokenTTL time.Duration
	// Now is the clock for token expiry, refresh intervals and the times
	// refreshes and webhooks carry; nil means time.Now. Delays
	// (RefreshDelay, webhook retries) are real time.
	Now func() time.Time

	// RefreshInterval is how soon POST /links/{id}/products may ask for a
	// product of a link again, counted from the last accepted request for
	// it; sooner answers 429 api_error.rate_limit_exceeded with Retry-After
	// in whole seconds. 0 means DefaultRefreshInterval (MoneyKit's own is a
	// day for identity); negative means no limit.
	RefreshInterval time.Duration
	// RefreshDelay is how long an accepted refresh takes to complete: then
	// the products' refreshed_at increase and, for identity, the link's
	// owners gain an email. 0 means DefaultRefreshDelay; negative means at
	// once (still after the 202).
	RefreshDelay time.Duration
	// WebhookURL receives the sandbox's webhooks (link.product_refresh for
	// each refresh, and the test webhooks of POST /webhooks/test/link/{id}),
	// for every link whatever its webhook field says; "" sends none. It
	// must be an absolute http(s) URL: New panics otherwise.
	WebhookURL string
	// WebhookAttempts is how many times a delivery not answered 2xx is
	// tried in all; 0 means DefaultWebhookAttempts.
	WebhookAttempts int
	// WebhookBackoff is the wait before the first retry of a delivery, each
	// later one twice the one before; 0 means DefaultWebhookBackoff.
	WebhookBackoff time.Duration
}

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

// StatsPath serves Stats as JSON, so that tools driving a sandbox on its own
// port (load and soak runs) can read its counters. It is not a MoneyKit route.
const StatsPath = "/_sandbox/stats"

// Stats are the sandbox's counters since New or Reset.
type Stats struct {
	IdentityCalls int `json:"identity_calls"`
	TokenCalls    int `json:"token_calls"`
	FaultsServed  int `json:"faults_served"`
	RefreshCalls  int `json:"refresh_calls"`
	WebhooksSent  int `json:"webhooks_sent"`
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{
		IdentityCalls: s.IdentityCalls(), TokenCalls: s.TokenCalls(), FaultsServed: s.FaultsServed(),
		RefreshCalls: s.RefreshCalls(), WebhooksSent: s.WebhooksSent(),
	}
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

// tokenResponse is the body of a successful POST /auth/token.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		errTokenMethod.write(w)
		return
	}
	s.mu.Lock()
	s.tokenCalls++
	s.mu.Unlock()

	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" || !s.validClient(clientCredentials(r)) {
		errUnauthorized.write(w)
		return
	}
	token := newToken()
	s.mu.Lock()
	s.pruneTokens()
	s.tokens[token] = s.now().Add(s.ttl)
	s.mu.Unlock()
	jsonReply(http.StatusCreated, mustJSON(tokenResponse{
		AccessToken: token,
		TokenType:   "bearer",
		ExpiresIn:   int(s.ttl / time.Second),
	})).write(w)
}

// clientCredentials returns the Basic credentials if sent, else the form fields.
func clientCredentials(r *http.Request) (id, secret string) {
	if id, secret, ok := r.BasicAuth(); ok {
		return id, secret
	}
	return r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
}

// validClient reports whether id and secret are the accepted credentials,
// in time independent of their contents.
func (s *Server) validClient(id, secret string) bool {
	idOK := subtle.ConstantTimeCompare([]byte(id), s.clientID)
	secretOK := subtle.ConstantTimeCompare([]byte(secret), s.clientSecret)
	return idOK&secretOK == 1
}

// newToken returns 64 random hex characters.
func newToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
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

// authorize returns the 401 answer for r, or nil when r carries valid client
// headers or a live token this server issued.
func (s *Server) authorize(r *http.Request) *reply {
	// A bearer token, when sent, decides: an expired one is refused even
	// with valid client headers, so that clients' token renewal is tested.
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if r.Header.Get("Authorization") == "" {
		if s.validClient(r.Header.Get("X-Client-Id"), r.Header.Get("X-Client-Secret")) {
			return nil
		}
		return &errUnauthorized
	}
	if !strings.EqualFold(scheme, "Bearer") {
		return &errUnauthorized
	}
	now := s.now() // outside the lock: Options.Now is the caller's code
	s.mu.Lock()
	defer s.mu.Unlock()
	expiry, issued := s.tokens[token]
	switch {
	case !issued:
		return &errUnauthorized
	case !now.Before(expiry), !s.faults.useToken(token):
		return &errTokenExpired
	}
	return nil
}

// maxTokens bounds the remembered tokens of a long-running sandbox. Expired
// tokens are kept up to it, so that "expired" can be told from "unknown".
const maxTokens = 10000

// pruneTokens forgets expired tokens once there are too many; s.mu is held.
func (s *Server) pruneTokens() {
	if len(s.tokens) < maxTokens {
		return
	}
	now := s.now()
	for t, exp := range s.tokens {
		if !now.Before(exp) {
			delete(s.tokens, t)
			delete(s.faults.tokenUses, t)
		}
	}
}

// SetLatency changes the latency added to identity calls from now on.
func (s *Server) SetLatency(d time.Duration) {
	s.latency.Store(int64(d))
}

// IdentityCalls returns how many identity calls the server has seen, for
// all link ids and whatever their answer, since New or Reset.
func (s *Server) IdentityCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.identityCalls
}

// IdentityCallsFor returns how many identity calls the server has seen for
// linkID (the unescaped path segment) since New or Reset.
func (s *Server) IdentityCallsFor(linkID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.callsByLink[linkID]
}

// TokenCalls returns how many POST /auth/token calls the server has seen
// since New or Reset.
func (s *Server) TokenCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenCalls
}

// LastIdentityQuery returns a copy of the query string of the last identity
// call for linkID, or nil if there was none since New or Reset.
func (s *Server) LastIdentityQuery(linkID string) url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.lastQuery[linkID]
	if !ok {
		return nil
	}
	clone := make(url.Values, len(q))
	for k, v := range q {
		clone[k] = append([]string(nil), v...)
	}
	return clone
}

// Reset zeroes all counters, FaultsServed and the webhook counters
// included, and forgets the last queries and WebhookDeliveries. Issued
// tokens stay valid, faults stay set (ClearFaults removes them), and
// refreshed links keep their data and refresh intervals.
func (s *Server) Reset() {
	s.mu.Lock()
	s.tokenCalls = 0
	s.identityCalls = 0
	s.refreshCalls = 0
	s.faults.served = 0
	clear(s.callsByLink)
	clear(s.lastQuery)
	clear(s.refreshByLink)
	s.mu.Unlock()
	s.hooks.mu.Lock()
	s.hooks.resetLocked()
	s.hooks.mu.Unlock()
}
