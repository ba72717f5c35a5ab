package graph

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/edge"
)

// graphqlTransportWS is the graphql-ws library's protocol.
const graphqlTransportWS = "graphql-transport-ws"

// wsTransport serves subscriptions over WebSocket: gqlgen's transport
// (graphql-transport-ws, on coder/websocket), behind the facade's checks:
// the Origin (no cross-site WebSocket hijacking: a browser sends cookies
// and no CORS preflight with an upgrade), the protocol, and the number of
// connections; credentials come in connection_init.
type wsTransport struct {
	subs *Subscriptions
	ws   transport.Websocket
}

var _ graphql.Transport = wsTransport{}

// newWSTransport serves s's WebSockets; expires (nil: none expire) is when
// the credential that opened one expires.
func newWSTransport(s *Subscriptions, expires func(context.Context) time.Time) wsTransport {
	limit := int64(maxWSMessage)
	t := wsTransport{subs: s}
	t.ws = transport.Websocket{
		Implementation: trackedWS{transport.CoderWebsocketImplementation{AcceptOptions: coderws.AcceptOptions{
			// The Origin is checked by Do, against the CORS allowlist.
			InsecureSkipVerify: true,
			Subprotocols:       []string{graphqlTransportWS},
		}}},
		InitFunc:         expiringInit(s.initFunc, expires),
		InitTimeout:      s.cfg.InitTimeout,
		PingPongInterval: s.cfg.KeepAlive,
		PayloadReadLimit: &limit,
	}
	return t
}

// Supports implements graphql.Transport.
func (wsTransport) Supports(r *http.Request) bool { return edge.IsWebSocketUpgrade(r) }

// Do implements graphql.Transport.
func (t wsTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	contentType := responseContentType(r)
	w.Header().Set("Content-Type", contentType)
	if !t.originAllowed(r) {
		writeRefusal(ctx, w, exec, contentType, http.StatusForbidden, apierr.CodeForbidden, msgWSOrigin)
		return
	}
	if !slices.ContainsFunc(r.Header.Values("Sec-WebSocket-Protocol"), func(v string) bool {
		return slices.ContainsFunc(strings.Split(v, ","), func(p string) bool { return strings.TrimSpace(p) == graphqlTransportWS })
	}) {
		writeBadRequest(ctx, w, exec, contentType, msgWSProtocol)
		return
	}
	c := t.subs.open(true, r.Header, r.RemoteAddr)
	if c == nil {
		w.Header().Set("Retry-After", strconv.Itoa(5))
		writeRefusal(ctx, w, exec, contentType, http.StatusServiceUnavailable, apierr.CodeSubscriptionsUnavailable, msgWSFull)
		return
	}
	defer c.close()
	w.Header().Del("Content-Type")
	t.ws.Do(w, r.WithContext(withStreamConn(ctx, c)), exec)
}

const (
	msgWSOrigin   = "This origin may not open a WebSocket to this server."
	msgWSProtocol = "WebSocket clients must speak graphql-transport-ws (Sec-WebSocket-Protocol: graphql-transport-ws), as the graphql-ws library does."
	msgWSFull     = "This server has as many subscription connections as it may: retry later."
	msgWSAuth     = "Unauthorized"
	msgWSExpired  = "Token expired"
)

// originAllowed: no Origin (not a browser), the same origin, or one the
// CORS policy allows.
func (t wsTransport) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if u, err := url.Parse(origin); err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) &&
		(u.Scheme == "http" || u.Scheme == "https") {
		return true
	}
	return t.subs.cfg.AllowOrigin != nil && t.subs.cfg.AllowOrigin(origin)
}

// initFunc authenticates connection_init: refused, the connection is closed
// with 4401. The payload is never logged.
func (s *Subscriptions) initFunc(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	c := streamConnFrom(ctx)
	if s.cfg.Authenticate == nil {
		return ctx, nil, nil
	}
	var upgrade http.Header
	if c != nil {
		upgrade = c.header
	}
	authed, err := s.cfg.Authenticate(ctx, s.credentials(payload, upgrade))
	if err != nil {
		ctx = transport.WithWebsocketCloseCode(ctx, closeUnauthorized)
		ctx = transport.AppendCloseReason(ctx, msgWSAuth)
		return ctx, nil, apierr.AsError(err)
	}
	return s.admitCaller(authed) // subscription_conn.go: ConnectionsPerCaller, 4429
}

// expiringInit is init, then, when the credential it authenticated
// expires (expires(ctx) not zero), a timer that closes the WebSocket with
// 4401 and a "Token expired" reason at that time, then cancels the
// connection's context, ending its subscriptions. (gqlgen closes a
// socket whose context ends with 1000: the close frame is written here
// first, and only the first is sent.) A subscribe in between is refused by
// Authorize, which refuses an expired caller.
func expiringInit(init transport.WebsocketInitFunc, expires func(context.Context) time.Time) transport.WebsocketInitFunc {
	if expires == nil {
		return init
	}
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		ctx, ack, err := init(ctx, payload)
		if err != nil {
			return ctx, ack, err
		}
		exp := expires(ctx)
		if exp.IsZero() {
			return ctx, ack, nil
		}
		c := streamConnFrom(ctx)
		ctx, cancel := context.WithCancelCause(ctx)
		timer := time.AfterFunc(time.Until(exp), func() {
			if c != nil {
				c.mu.Lock()
				conn := c.conn
				c.mu.Unlock()
				if conn != nil {
					_ = conn.WriteClose(closeUnauthorized, msgWSExpired)
				}
			}
			cancel(errTokenExpired)
		})
		context.AfterFunc(ctx, func() { timer.Stop() }) // the connection ended first
		return ctx, ack, nil
	}
}

// trackedWS is gqlgen's coder/websocket implementation, remembering each
// connection it accepts so that Shutdown can close it with 1012.
type trackedWS struct {
	transport.CoderWebsocketImplementation
}

func (t trackedWS) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	conn, err := t.CoderWebsocketImplementation.Accept(w, r, opts)
	if err != nil {
		return nil, err
	}
	if c := streamConnFrom(r.Context()); c != nil {
		c.mu.Lock()
		c.conn = conn
		ended := c.ended
		c.mu.Unlock()
		if ended {
			_ = conn.WriteClose(CloseServiceRestart, "service restart")
		}
	}
	return watchSubscribeIDs(conn, streamConnFrom(r.Context())), nil // subscription_conn.go: 4409 on a repeated subscribe id
}
