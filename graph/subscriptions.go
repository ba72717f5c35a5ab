package graph

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mkgraph/mkgraph/internal/defaults"
)

// Subscriptions (Subscription.linkEvents) travel over WebSocket, with the
// graphql-transport-ws protocol of the graphql-ws library, or over GraphQL
// over SSE (distinct connections mode). Both are bounded per connection,
// per caller and per replica; each subscriber has a bounded buffer on the
// bus, and one that does not keep up is ended (facade.subscription_overflow)
// without holding the publisher or other subscribers back.
//
// WebSocket close codes (graphql-ws reads them):
//   - 4401 Unauthorized: connection_init without valid credentials;
//   - 4400 Bad Request: a message the protocol does not allow;
//   - 4429 Too many connections: connection_init of a caller that already
//     has ConnectionsPerCaller WebSockets open on this replica;
//   - 4409 Subscriber for <id> already exists: a subscribe with the id of a
//     subscription still active on the connection (subscribeIDs);
//   - 1012 Service Restart: the server shuts down (or its bus closed);
//     graphql-ws reconnects on it;
//   - 1000: the client or the connection ended normally.
//
// A subscription refused (facade.forbidden, facade.invalid_argument,
// facade.too_many_subscriptions, facade.subscriptions_unavailable) gets an
// "error" message for its id; no bus subscription is made.

// Defaults of SubscriptionConfig.
const (
	DefaultSubscriptionsPerConnection = 20
	DefaultSubscriptionsPerCaller     = 50
	DefaultMaxConnections             = 10000
	DefaultConnectionsPerCaller       = 10
	DefaultPendingConnections         = 1000
	DefaultPendingPerAddress          = 10
	DefaultSubscriberBuffer           = 16
	DefaultKeepAlive                  = 15 * time.Second
	DefaultInitTimeout                = 10 * time.Second
	// maxWSMessage bounds a message a client sends (a subscribe with its
	// query): far above any real operation.
	maxWSMessage = 64 << 10
)

// CloseServiceRestart is the WebSocket close code of a shutdown (RFC 6455
// 1012, "Service Restart"): graphql-ws clients reconnect on it.
const CloseServiceRestart = 1012

// closeUnauthorized is graphql-transport-ws's close code for a
// connection_init that is refused.
const closeUnauthorized = 4401

// closeTooManyConnections closes a connection_init whose caller has as many
// WebSockets open as it may (4429: 4000 + HTTP 429 Too Many Requests, as
// 4401 and 4409 are in graphql-transport-ws).
const closeTooManyConnections = 4429

// SubscriptionConfig bounds and wires subscriptions. The zero value takes
// the defaults, checks no credentials and allows no cross-origin WebSocket.
type SubscriptionConfig struct {
	PerConnection int           // subscriptions per WebSocket connection; 0: default
	PerCaller     int           // subscriptions per caller on this replica, over all connections; 0: default
	Connections   int           // WebSocket and SSE connections on this replica; 0: default
	Buffer        int           // events buffered per subscriber; 0: default
	KeepAlive     time.Duration // ping (WebSocket) or comment (SSE) interval; 0: default
	InitTimeout   time.Duration // time to send connection_init; 0: default
	// ConnectionsPerCaller bounds the WebSockets of one caller (CallerKey,
	// known at connection_init) on this replica; 0: default.
	ConnectionsPerCaller int
	// PendingConnections bounds the WebSockets on this replica not yet past
	// connection_init (each for at most InitTimeout): more are refused at
	// the upgrade (HTTP 503), so that sockets without credentials cannot
	// take the Connections of callers that have them; 0: default.
	PendingConnections int
	// PendingPerAddress bounds those of them from one remote address, so
	// that one client holding sockets open without connection_init cannot
	// take every slot; 0: DefaultPendingPerAddress.
	PendingPerAddress int
	// Authenticate reads the credentials of a WebSocket (its
	// connection_init payload, as headers; else the upgrade request's) and
	// returns ctx with the caller, or an error (facade.unauthenticated):
	// the connection is then closed with 4401. nil: none are checked.
	Authenticate func(ctx context.Context, h http.Header) (context.Context, error)
	// AllowOrigin reports whether a browser page of another origin may open
	// a WebSocket (the CORS allowlist). Same-origin pages and clients that
	// send no Origin (not browsers) are always allowed. nil: none.
	AllowOrigin func(origin string) bool
	// CallerKey names the caller of ctx for PerCaller; "" is not limited.
	// nil: no per-caller bound.
	CallerKey func(ctx context.Context) string
	// KeyHeader is the API key header Authenticate reads (its payload
	// entry is matched case-insensitively); "": X-Api-Key.
	KeyHeader string
}

// Subscriptions holds the live subscriptions of a handler: their bounds,
// their counts (for metrics) and their connections (for Shutdown).
type Subscriptions struct {
	cfg SubscriptionConfig

	mu        sync.Mutex
	conns     map[*streamConn]struct{}
	perCaller map[string]int
	closing   bool
	// WebSocket connections not yet past connection_init, and those past it
	// per caller.
	pending        int
	pendingByAddr  map[string]int
	connsPerCaller map[string]int

	connections, active atomic.Int64
	delivered, dropped  atomic.Int64
}

// NewSubscriptions returns the subscriptions' state with cfg's bounds.
func NewSubscriptions(cfg SubscriptionConfig) *Subscriptions {
	def := defaults.Positive[int]
	def(&cfg.PerConnection, DefaultSubscriptionsPerConnection)
	def(&cfg.PerCaller, DefaultSubscriptionsPerCaller)
	def(&cfg.Connections, DefaultMaxConnections)
	def(&cfg.ConnectionsPerCaller, DefaultConnectionsPerCaller)
	def(&cfg.PendingConnections, DefaultPendingConnections)
	def(&cfg.PendingPerAddress, DefaultPendingPerAddress)
	def(&cfg.Buffer, DefaultSubscriberBuffer)
	defaults.Positive(&cfg.KeepAlive, DefaultKeepAlive)
	defaults.Positive(&cfg.InitTimeout, DefaultInitTimeout)
	if cfg.KeyHeader == "" {
		cfg.KeyHeader = "X-Api-Key"
	}
	return &Subscriptions{cfg: cfg, conns: map[*streamConn]struct{}{}, perCaller: map[string]int{}, connsPerCaller: map[string]int{}, pendingByAddr: map[string]int{}}
}

// Connections returns the WebSocket and SSE connections open now.
func (s *Subscriptions) Connections() int64 { return s.connections.Load() }

// Active returns the subscriptions open now.
func (s *Subscriptions) Active() int64 { return s.active.Load() }

// Delivered returns how many events were handed to subscribers.
func (s *Subscriptions) Delivered() int64 { return s.delivered.Load() }

// Dropped returns how many subscriptions were ended as slow consumers.
func (s *Subscriptions) Dropped() int64 { return s.dropped.Load() }

// Shutdown ends every connection: WebSockets are closed with 1012 (Service
// Restart), on which graphql-ws reconnects (to another replica), SSE
// streams end without "complete" (clients retry); new ones are refused.
// http.Server.Shutdown does not close hijacked connections and waits for
// streams: register it with RegisterOnShutdown.
func (s *Subscriptions) Shutdown() {
	s.mu.Lock()
	s.closing = true
	conns := make([]*streamConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.shutdown()
	}
}
