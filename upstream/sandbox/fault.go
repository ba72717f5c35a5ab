package sandbox

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"
)

// Fault is one way to misbehave on an identity call. The zero value behaves.
//
// Fields combine in this order: Latency first; then Reset or Hang, which give
// no answer at all; otherwise the answer is the one Status or HTML choose, or
// else the real answer, padded by Oversize and then cut by Truncate; that
// answer is written at once or, with Drip, in chunks.
type Fault struct {
	// Latency is waited before answering. The wait ends early, with no
	// answer, when the request is cancelled.
	Latency time.Duration
	// Status answers this status instead of the real answer: 500 with the
	// JSON api_error.internal body; 502, 503 and 504 with an HTML page
	// (Content-Type text/html), as a gateway in front of the API would; 429
	// with the JSON api_error.rate_limit_exceeded body and RetryAfter. Any
	// other status (200 to 599) answers the JSON api_error.internal body with
	// that status.
	Status int
	// RetryAfter is the Retry-After header value of a 429 (e.g. "2" or an
	// HTTP-date); "" means DefaultRetryAfter.
	RetryAfter string
	// HTML answers 200 with an HTML page (Content-Type text/html), as a
	// captive portal or a proxy's login page does.
	HTML bool
	// Truncate cuts the body of the real answer at half its length, keeping
	// its status and headers: for a link with data, a 200 application/json
	// that is not valid JSON.
	Truncate bool
	// Oversize pads the real answer, keeping its status and headers, to at
	// least this many bytes while it stays valid JSON: a long unknown string
	// field, "sandbox_padding", is added to the link object (to the top-level
	// object when there is no link object; a body that is not a JSON object
	// gets trailing whitespace).
	Oversize int
	// Drip writes the answer in chunks of 16 bytes, flushing each, with this
	// pause between them; Content-Length announces the whole body. Writing
	// stops when the request is cancelled.
	Drip time.Duration
	// Reset closes the TCP connection without any answer, with SO_LINGER 0 so
	// that the client sees a reset. Where the connection cannot be taken over
	// (HTTP/2, or ServeHTTP called with an http.ResponseWriter that cannot
	// hijack) the handler panics with http.ErrAbortHandler instead, which
	// net/http turns into an aborted response or a stream reset.
	//
	// net/http's Transport sends an idempotent request again, once, when a
	// reused keep-alive connection fails before any answer: such a client
	// makes two calls, and with SetFault's times == 1 the second succeeds.
	Reset bool
	// Hang never answers: the call blocks until the request is cancelled.
	Hang bool
}

// DefaultRetryAfter is the Retry-After of a 429 Fault without RetryAfter.
const DefaultRetryAfter = "30"

// RandomFault is a rule of SetRandomFaults: Fault misbehaves on a share Rate
// (0 to 1) of identity calls.
type RandomFault struct {
	Fault Fault
	Rate  float64
}

// faultState is a Server's fault configuration and count, guarded by the
// Server's mu.
type faultState struct {
	byLink map[string]linkFault // SetFault's faults
	rules  []RandomFault
	rng    *rand.Rand
	// expireAfter is ExpireTokensAfter's n; tokenUses counts, while it is
	// positive, the authorized identity calls made with each token.
	expireAfter int
	tokenUses   map[string]int
	served      int
}

// linkFault is a fault set with SetFault.
type linkFault struct {
	fault Fault
	left  int // calls left before the link behaves again; 0: until cleared
}

// SetFault makes every identity call for linkID (the unescaped path segment)
// misbehave as f, until cleared with f == Fault{}. When times > 0, only the
// next times calls for linkID misbehave; then the link behaves again.
//
// A fault set for linkID takes precedence over the built-in fault of a magic
// fault id (LinkFault502 and the like) and over SetRandomFaults' rules. Like
// every fault it applies after the call is counted and its credentials are
// checked: a call refused with 401 or 405 neither misbehaves nor uses up one
// of the times.
//
// SetFault panics if f.Status is set outside 200 to 599.
func (s *Server) SetFault(linkID string, f Fault, times int) {
	f.mustBeValid()
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == (Fault{}) {
		delete(s.faults.byLink, linkID)
		return
	}
	if s.faults.byLink == nil {
		s.faults.byLink = make(map[string]linkFault)
	}
	s.faults.byLink[linkID] = linkFault{fault: f, left: max(times, 0)}
}

// SetRandomFaults makes a share of all identity calls misbehave, for soak
// tests. Each authorized call that has no fault of its own (from SetFault or
// a magic fault id) draws one number from a PCG source seeded with seed, so that a
// sequence of calls misbehaves the same way in every run; the rules are tried
// in order and at most one applies, each to a share Rate of the calls (rates
// are clamped to 0..1; when they add up to more than 1, the later rules get
// only what is left). nil (or no rules) clears them.
//
// SetRandomFaults panics if a rule's Fault.Status is set outside 200 to 599.
func (s *Server) SetRandomFaults(seed uint64, rules []RandomFault) {
	for _, r := range rules {
		r.Fault.mustBeValid()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(rules) == 0 {
		s.faults.rules, s.faults.rng = nil, nil
		return
	}
	s.faults.rules = slices.Clone(rules)
	for i, r := range s.faults.rules {
		s.faults.rules[i].Rate = min(max(r.Rate, 0), 1)
	}
	s.faults.rng = rand.New(rand.NewPCG(seed, seed))
}

// ExpireTokensAfter makes every access token expire after n authorized
// calls made with it (identity, refresh and test webhook calls, counting
// from this call to ExpireTokensAfter):
// the next call with that token answers 401
// api_error.auth.expired_access_token, as does every later one, while a newly
// issued token works. It tests a client's renew-and-retry-once. n <= 0 turns
// it off, and tokens expire by time alone again. Calls authorized by client
// headers are not affected.
func (s *Server) ExpireTokensAfter(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.expireAfter = max(n, 0)
	s.faults.tokenUses = nil
}

// ClearFaults removes every fault set with SetFault, every random rule and
// the ExpireTokensAfter setting. The magic fault ids keep misbehaving, and
// FaultsServed keeps its count.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	served := s.faults.served
	s.faults = faultState{served: served}
}

// FaultsServed returns how many identity calls have misbehaved through a
// Fault (set with SetFault, drawn by SetRandomFaults, or built into a magic
// fault id) since New or Reset. The canned error answers of the magic error
// ids (LinkDeleted and the like) are not faults, and neither are the 401s of
// ExpireTokensAfter.
func (s *Server) FaultsServed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.served
}

// mustBeValid panics if f cannot be served: net/http would panic on its
// status inside a handler, far from the mistake.
func (f Fault) mustBeValid() {
	if f.Status != 0 && (f.Status < 200 || f.Status > 599) {
		panic(fmt.Sprintf("sandbox: Fault.Status %d is not a final HTTP status (200 to 599)", f.Status))
	}
}

// useToken records an authorized identity call made with token and reports
// whether the token may still be used; s.mu is held.
func (fs *faultState) useToken(token string) bool {
	if fs.expireAfter <= 0 {
		return true
	}
	if fs.tokenUses[token] >= fs.expireAfter {
		return false
	}
	if fs.tokenUses == nil {
		fs.tokenUses = make(map[string]int)
	}
	fs.tokenUses[token]++
	return true
}

// takeFault returns the fault an authorized identity call for linkID must
// serve, if any, and counts it: SetFault's, else the magic id's, else one
// drawn from the random rules.
func (s *Server) takeFault(linkID string) (Fault, bool) {
	s.mu.Lock()
	lf, ok := s.faults.byLink[linkID]
	if ok && lf.left > 0 {
		if lf.left--; lf.left == 0 {
			delete(s.faults.byLink, linkID)
		} else {
			s.faults.byLink[linkID] = lf
		}
	}
	s.mu.Unlock()
	f := lf.fault

	if !ok {
		// Outside the lock: Options.Now is the caller's code.
		f, ok = knownLinks()[linkID].builtinFault(s.now)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		f, ok = s.faults.draw()
	}
	if ok {
		s.faults.served++
	}
	return f, ok
}

// draw returns the fault of the random rule that applies to this call, if
// any; s.mu is held.
func (fs *faultState) draw() (Fault, bool) {
	if fs.rng == nil {
		return Fault{}, false
	}
	u := fs.rng.Float64()
	for _, r := range fs.rules {
		if u < r.Rate {
			return r.Fault, r.Fault != Fault{}
		}
		u -= r.Rate
	}
	return Fault{}, false
}

// builtinFault returns the fault of a magic fault id, as of now.
func (l link) builtinFault(now func() time.Time) (Fault, bool) {
	if l.fault == nil {
		return Fault{}, false
	}
	f := *l.fault
	if l.retryAfterIn > 0 {
		f.RetryAfter = now().Add(l.retryAfterIn).UTC().Format(http.TimeFormat)
	}
	return f, true
}
