package graph

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/rs/zerolog"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/graph/model"
	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/linkevents"
	"github.com/mkgraph/mkgraph/upstream"
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

// SubscriptionConfig bounds and wires subscriptions. The zero value takes
// the defaults, checks no credentials and allows no cross-origin WebSocket.
type SubscriptionConfig struct {
	PerConnection int           // subscriptions per WebSocket connection; 0: default
	PerCaller     int           // subscriptions per caller on this replica, over all connections; 0: default
	Connections   int           // WebSocket and SSE connections on this replica; 0: default
	Buffer        int           // events buffered per subscriber; 0: default
	KeepAlive     time.Duration // ping (WebSocket) or comment (SSE) interval; 0: default
	InitTimeout   time.Duration // time to send connection_init; 0: default
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

	connections, active atomic.Int64
	delivered, dropped  atomic.Int64
}

// NewSubscriptions returns the subscriptions' state with cfg's bounds.
func NewSubscriptions(cfg SubscriptionConfig) *Subscriptions {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.PerConnection, DefaultSubscriptionsPerConnection)
	def(&cfg.PerCaller, DefaultSubscriptionsPerCaller)
	def(&cfg.Connections, DefaultMaxConnections)
	def(&cfg.Buffer, DefaultSubscriberBuffer)
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.InitTimeout <= 0 {
		cfg.InitTimeout = DefaultInitTimeout
	}
	if cfg.KeyHeader == "" {
		cfg.KeyHeader = "X-Api-Key"
	}
	return &Subscriptions{cfg: cfg, conns: map[*streamConn]struct{}{}, perCaller: map[string]int{}}
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

// streamConn is one WebSocket connection or SSE stream.
type streamConn struct {
	subs   *Subscriptions
	ws     bool
	header http.Header // the upgrade request's (WebSocket)

	mu     sync.Mutex
	conn   transport.WebsocketConn // WebSocket, once accepted
	cancel context.CancelFunc      // SSE
	count  int                     // subscriptions open
	ended  bool                    // shut down: end without complete
}

// open registers a connection, or returns nil when the replica has as many
// as it may, or shuts down.
func (s *Subscriptions) open(ws bool, h http.Header) *streamConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || len(s.conns) >= s.cfg.Connections {
		return nil
	}
	c := &streamConn{subs: s, ws: ws, header: h}
	s.conns[c] = struct{}{}
	s.connections.Add(1)
	return c
}

func (c *streamConn) close() {
	c.subs.mu.Lock()
	defer c.subs.mu.Unlock()
	if _, ok := c.subs.conns[c]; ok {
		delete(c.subs.conns, c)
		c.subs.connections.Add(-1)
	}
}

// shutdown ends the connection as a restart: 1012 on a WebSocket.
func (c *streamConn) shutdown() {
	c.mu.Lock()
	c.ended = true
	conn, cancel := c.conn, c.cancel
	c.mu.Unlock()
	if conn != nil {
		_ = conn.WriteClose(CloseServiceRestart, "service restart")
	}
	if cancel != nil {
		cancel()
	}
}

func (c *streamConn) wasEnded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

type streamConnKey struct{}

func withStreamConn(ctx context.Context, c *streamConn) context.Context {
	return context.WithValue(ctx, streamConnKey{}, c)
}

func streamConnFrom(ctx context.Context) *streamConn {
	c, _ := ctx.Value(streamConnKey{}).(*streamConn)
	return c
}

// admit counts a new subscription against the bounds; release gives it
// back.
func (s *Subscriptions) admit(ctx context.Context) (release func(), err error) {
	conn := streamConnFrom(ctx)
	key := ""
	if s.cfg.CallerKey != nil {
		key = s.cfg.CallerKey(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, errUnavailable
	}
	if conn != nil {
		conn.mu.Lock()
		n := conn.count
		conn.mu.Unlock()
		if n >= s.cfg.PerConnection {
			return nil, &apierr.Error{Code: apierr.CodeTooManySubscriptions, Message: "Too many subscriptions on this connection."}
		}
	}
	if key != "" && s.perCaller[key] >= s.cfg.PerCaller {
		return nil, &apierr.Error{Code: apierr.CodeTooManySubscriptions, Message: "Too many subscriptions for this caller."}
	}
	if conn != nil {
		conn.mu.Lock()
		conn.count++
		conn.mu.Unlock()
	}
	if key != "" {
		s.perCaller[key]++
	}
	s.active.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if conn != nil {
				conn.mu.Lock()
				conn.count--
				conn.mu.Unlock()
			}
			if key != "" {
				if s.perCaller[key]--; s.perCaller[key] <= 0 {
					delete(s.perCaller, key)
				}
			}
			s.active.Add(-1)
		})
	}, nil
}

var errUnavailable = &apierr.Error{Code: apierr.CodeSubscriptionsUnavailable, Message: "Subscriptions are not available on this server now."}

var errOverflow = &apierr.Error{Code: apierr.CodeSubscriptionOverflow,
	Message: "The subscription was ended: its events were not read as fast as they came. Subscribe again."}

// sseState collects what a subscription's producer tells the SSE writer.
type sseState struct {
	mu   sync.Mutex
	errs gqlerror.List
}

type sseStateKey struct{}

// streamError reports an error that ends a subscription after it started:
// an "error" message on a WebSocket, a last "next" with errors over SSE.
func streamError(ctx context.Context, err *gqlerror.Error) {
	if st, ok := ctx.Value(sseStateKey{}).(*sseState); ok {
		st.mu.Lock()
		st.errs = append(st.errs, err)
		st.mu.Unlock()
		return
	}
	if c := streamConnFrom(ctx); c != nil && c.ws {
		transport.AddSubscriptionError(ctx, err)
	}
}

// subscribeLink is Subscription.linkEvents: validated and authorized like
// Query.link, bounded, then fed from the bus until the client stops, the
// subscriber falls behind or the bus closes.
func (r *Resolver) subscribeLink(ctx context.Context, linkID string) (<-chan *model.LinkEvent, error) {
	refuse := func(err error) (<-chan *model.LinkEvent, error) {
		if c := streamConnFrom(ctx); c != nil && c.ws {
			// An "error" message for this id (gqlgen would send a "next"
			// with errors, then "complete").
			transport.AddSubscriptionError(ctx, presentError(ctx, err))
			ch := make(chan *model.LinkEvent)
			close(ch)
			return ch, nil
		}
		return nil, err
	}
	if err := upstream.ValidateLinkID(linkID); err != nil {
		return refuse(err)
	}
	if err := r.authorize(ctx, linkID); err != nil {
		return refuse(err)
	}
	if r.events == nil {
		return refuse(errUnavailable)
	}
	release, err := r.subs.admit(ctx)
	if err != nil {
		return refuse(err)
	}
	sub := r.events.Subscribe(linkID, r.subs.cfg.Buffer)
	out := make(chan *model.LinkEvent)
	log := zerolog.Ctx(ctx)
	warn := func(kind, value string) {
		log.Warn().Str("kind", kind).Str("value", truncate(value, 64)).Msg("link event with a value the schema does not know; mapped to UNKNOWN or null")
	}
	go func() {
		defer release()
		defer close(out)
		defer sub.Cancel()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-sub.C:
				if !ok {
					r.subs.ended(ctx, sub.Err())
					return
				}
				select {
				case out <- model.NewLinkEvent(e, warn):
					r.subs.delivered.Add(1)
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// ended handles a subscription the bus ended.
func (s *Subscriptions) ended(ctx context.Context, err error) {
	switch {
	case errors.Is(err, linkevents.ErrSlowConsumer):
		s.dropped.Add(1)
		streamError(ctx, presentError(ctx, errOverflow))
	case errors.Is(err, linkevents.ErrClosed):
		if c := streamConnFrom(ctx); c != nil {
			c.shutdown()
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// eventScope holds, for one subscription, the loaders of the event being
// answered: fresh for each event (no event reads another's answer), shared
// by the selections of one event, given back once its answer is built.
type eventScope struct {
	mu  sync.Mutex
	cur *loader.Loaders
}

type eventScopeKey struct{}

// withEventLoaders returns ctx with the current event's loaders, made from
// f when the event has none yet. Outside a subscription it returns ctx.
func withEventLoaders(ctx context.Context, f *loader.Factory) context.Context {
	s, _ := ctx.Value(eventScopeKey{}).(*eventScope)
	if s == nil || f == nil {
		return ctx
	}
	s.mu.Lock()
	if s.cur == nil {
		s.cur = f.New()
	}
	l := s.cur
	s.mu.Unlock()
	return loader.NewContext(ctx, l)
}

// releaseEvent gives back the loaders of the event just answered.
func releaseEvent(ctx context.Context) {
	s, _ := ctx.Value(eventScopeKey{}).(*eventScope)
	if s == nil {
		return
	}
	s.mu.Lock()
	l := s.cur
	s.cur = nil
	s.mu.Unlock()
	if l != nil {
		l.Release()
	}
}

// subscriptionOperations gives each subscription its event scope, and
// refuses queries and mutations over a WebSocket: those are HTTP's, under
// its CSRF rules, rate limits and timeouts.
func subscriptionOperations(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation == nil {
		return next(ctx)
	}
	if oc.Operation.Operation == ast.Subscription {
		return next(context.WithValue(ctx, eventScopeKey{}, &eventScope{}))
	}
	if c := streamConnFrom(ctx); c != nil && c.ws {
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{{
			Message:    "Only subscriptions are served over WebSocket: send queries and mutations with POST.",
			Extensions: map[string]any{"code": apierr.CodeBadRequest},
		}}})
	}
	return next(ctx)
}

// credentials turns a connection_init payload into headers for
// Authenticate: Authorization (or authorization) and the API key header
// (any case). Without either, the upgrade request's own headers are used
// (non-browser clients may send them). Nothing here is logged.
func (s *Subscriptions) credentials(payload transport.InitPayload, upgrade http.Header) http.Header {
	h := http.Header{}
	if v := payload.Authorization(); v != "" {
		h.Set("Authorization", v)
	}
	for k, v := range payload {
		if str, ok := v.(string); ok && str != "" && strings.EqualFold(k, s.cfg.KeyHeader) {
			h.Set(s.cfg.KeyHeader, str)
		}
	}
	if len(h) == 0 && upgrade != nil {
		for _, k := range []string{"Authorization", s.cfg.KeyHeader} {
			if vs := upgrade.Values(k); len(vs) > 0 {
				h[http.CanonicalHeaderKey(k)] = vs
			}
		}
	}
	return h
}
