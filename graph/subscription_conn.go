package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

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

	// Under subs.mu: a WebSocket not yet past connection_init, and the
	// caller it counts for once it is.
	pending bool
	addr    string // remote address (host) while pending
	caller  string
}

// open registers a connection, or returns nil when the replica has as many
// as it may (or as many WebSockets waiting for their connection_init), or
// shuts down.
func (s *Subscriptions) open(ws bool, h http.Header, remoteAddr string) *streamConn {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || len(s.conns) >= s.cfg.Connections ||
		(ws && (s.pending >= s.cfg.PendingConnections || s.pendingByAddr[host] >= s.cfg.PendingPerAddress)) {
		return nil
	}
	c := &streamConn{subs: s, ws: ws, header: h, pending: ws}
	if ws {
		s.pending++
		c.addr = host
		s.pendingByAddr[host]++
	}
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
	c.subs.initDoneLocked(c)
	if c.caller != "" {
		if c.subs.connsPerCaller[c.caller]--; c.subs.connsPerCaller[c.caller] <= 0 {
			delete(c.subs.connsPerCaller, c.caller)
		}
		c.caller = ""
	}
}

// initDoneLocked ends c's wait for connection_init (s.mu held).
func (s *Subscriptions) initDoneLocked(c *streamConn) {
	if c.pending {
		c.pending = false
		s.pending--
		if s.pendingByAddr[c.addr]--; s.pendingByAddr[c.addr] <= 0 {
			delete(s.pendingByAddr, c.addr)
		}
	}
}

func (s *Subscriptions) initDone(c *streamConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initDoneLocked(c)
}

const msgTooManyConnections = "Too many connections"

var errTooManyConnections = &apierr.Error{Code: apierr.CodeTooManySubscriptions,
	Message: "This caller has as many subscription connections open as it may: close one, or subscribe on one already open."}

// admitCaller counts the connection of ctx for its caller, once
// connection_init authenticated it (initFunc's result), or refuses it with
// 4429 when the caller has ConnectionsPerCaller open. A caller without a
// key ("") is not bounded per caller.
func (s *Subscriptions) admitCaller(ctx context.Context) (context.Context, *transport.InitPayload, error) {
	c := streamConnFrom(ctx)
	if c == nil {
		return ctx, nil, nil
	}
	key := ""
	if s.cfg.CallerKey != nil {
		key = s.cfg.CallerKey(ctx)
	}
	s.mu.Lock()
	s.initDoneLocked(c)
	over := key != "" && c.caller == "" && s.connsPerCaller[key] >= s.cfg.ConnectionsPerCaller
	if !over && key != "" && c.caller == "" {
		c.caller = key
		s.connsPerCaller[key]++
	}
	s.mu.Unlock()
	if over {
		ctx = transport.WithWebsocketCloseCode(ctx, closeTooManyConnections)
		ctx = transport.AppendCloseReason(ctx, msgTooManyConnections)
		return ctx, nil, errTooManyConnections
	}
	return ctx, nil, nil
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

// closeSubscriberExists is graphql-transport-ws's close code for a
// subscribe whose id is already that of an active subscription on the
// connection.
const closeSubscriberExists = 4409

// subscribeIDs wraps a WebSocket connection as gqlgen reads and writes it,
// to refuse a subscribe with the id of a subscription still active on it:
// gqlgen would replace the first one's cancel func with the second's,
// leaving the first running and deaf to "complete". graphql-transport-ws
// closes the socket then: 4409 "Subscriber for <id> already exists". An id
// is active from its subscribe until the server sends its "complete" or
// "error" (gqlgen sends one for every subscribe, refused or ended, also
// after the client's own "complete"), so a client may reuse an id once it
// has heard the end of it.
//
// It also ends the connection's wait for connection_init when gqlgen acks
// it (with or without Authenticate).
type subscribeIDs struct {
	transport.WebsocketConn
	sc *streamConn // nil outside wsTransport.Do

	mu     sync.Mutex
	active map[string]struct{}
}

// watchSubscribeIDs returns conn refusing repeated subscribe ids; sc is
// the connection's (streamConnFrom of the upgrade request), or nil.
func watchSubscribeIDs(conn transport.WebsocketConn, sc *streamConn) transport.WebsocketConn {
	return &subscribeIDs{WebsocketConn: conn, sc: sc, active: map[string]struct{}{}}
}

var (
	_ transport.WebsocketReadLimiter   = (*subscribeIDs)(nil)
	_ transport.WebsocketReadDeadliner = (*subscribeIDs)(nil)
)

// NextReader reads the next message; a subscribe with an active id closes
// the connection with 4409 and ends gqlgen's read loop (which then cancels
// every subscription of the connection) instead of reaching it.
func (w *subscribeIDs) NextReader() (int, io.Reader, error) {
	typ, r, err := w.WebsocketConn.NextReader()
	if err != nil || r == nil {
		return typ, r, err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return typ, nil, err
	}
	var m struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	// gqlgen decodes with encoding/json too: the same id, the same type.
	// gqlgen reads a message with a json.Decoder (the first value, whatever
	// follows it): read it the same way, or trailing bytes would hide a
	// repeated id from this check but not from gqlgen.
	if json.NewDecoder(bytes.NewReader(b)).Decode(&m) == nil && m.Type == "subscribe" {
		w.mu.Lock()
		_, dup := w.active[m.ID]
		if !dup {
			w.active[m.ID] = struct{}{}
		}
		w.mu.Unlock()
		if dup {
			_ = w.WebsocketConn.WriteClose(closeSubscriberExists, "Subscriber for "+cutUTF8(m.ID, 80)+" already exists")
			return typ, nil, transport.ErrWebsocketClosed
		}
	}
	return typ, bytes.NewReader(b), nil
}

// WriteJSON writes a message of gqlgen's; a "complete" or "error" ends its
// id, before it is written (the client may reuse the id once it reads it).
func (w *subscribeIDs) WriteJSON(v any) error {
	switch typ, id := messageTypeID(v); typ {
	case "complete", "error":
		w.mu.Lock()
		delete(w.active, id)
		w.mu.Unlock()
	case "connection_ack":
		if w.sc != nil {
			w.sc.subs.initDone(w.sc)
		}
	}
	return w.WebsocketConn.WriteJSON(v)
}

// SetReadLimit passes gqlgen's PayloadReadLimit on.
func (w *subscribeIDs) SetReadLimit(limit int64) {
	if l, ok := w.WebsocketConn.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(limit)
	}
}

// SetReadDeadline passes gqlgen's pong deadline on.
func (w *subscribeIDs) SetReadDeadline(t time.Time) error {
	if d, ok := w.WebsocketConn.(transport.WebsocketReadDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}

// messageTypeID reads the type and id of a message gqlgen writes (its
// graphql-transport-ws message struct, with exported Type and ID fields).
func messageTypeID(v any) (typ, id string) {
	rv := reflect.Indirect(reflect.ValueOf(v))
	if rv.Kind() != reflect.Struct {
		return "", ""
	}
	if f := rv.FieldByName("Type"); f.IsValid() && f.Kind() == reflect.String {
		typ = f.String()
	}
	if f := rv.FieldByName("ID"); f.IsValid() && f.Kind() == reflect.String {
		id = f.String()
	}
	return typ, id
}

// cutUTF8 cuts s to at most n bytes, on a rune boundary (a close reason
// may hold 123 bytes).
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
