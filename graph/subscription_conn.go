package graph

import (
	"context"
	"net/http"
	"strings"
	"sync"

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
