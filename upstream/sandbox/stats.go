package sandbox

import (
	"net/url"
	"time"
)

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
