package graph_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/graph"
	"github.com/mkgraph/mkgraph/graph/limits"
	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/linkevents"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
)

// Links of the subscription tests: the caller "Bearer user" may read
// okLink only; "Bearer backend" any.
const (
	okLink    = "mk_sub_ok"
	otherLink = "mk_sub_other"
)

type callerKey struct{}

// countingFetcher answers every link with the same identity, counting
// calls; block, when set, holds a call until it is closed.
type countingFetcher struct {
	calls atomic.Int64
	delay time.Duration
	block chan struct{}
}

func (f *countingFetcher) GetIdentity(ctx context.Context, linkID string) (*upstream.Identity, error) {
	f.calls.Add(1)
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	time.Sleep(f.delay)
	return &upstream.Identity{Link: upstream.Link{
		LinkID: linkID, InstitutionID: "chase", InstitutionName: "Chase", State: "connected", Provider: "akoya",
		Products: map[string]*upstream.ProductStatus{"identity": {RefreshedAt: upstream.Timestamp{Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}}},
	}}, nil
}

type subsOptions struct {
	cfg     graph.SubscriptionConfig
	fetcher loader.Fetcher
	refresh func(ctx context.Context, linkID string) (*upstream.Link, error)
	noBus   bool
	// staleExtensions: each request gets a cache.Served (as withServed in
	// the server) and responses the identityCache stale extension.
	staleExtensions bool
	// limits, when set, holds operations to its limits: HTTP requests
	// cross its Middleware first, as in the server.
	limits *limits.Guard
}

type subsServer struct {
	url     string
	bus     *linkevents.Local
	subs    *graph.Subscriptions
	fetcher *countingFetcher
}

// newSubsServer serves graph.NewHandler over a real socket, with a Local bus,
// loaders behind a real identity cache over a counting fetcher, and a toy
// authenticator.
func newSubsServer(t *testing.T, o subsOptions) *subsServer {
	t.Helper()
	s := &subsServer{bus: linkevents.NewLocal(), fetcher: &countingFetcher{delay: 20 * time.Millisecond}}
	var fetcher loader.Fetcher = o.fetcher
	if fetcher == nil {
		c, err := cache.New(cache.Config{Next: s.fetcher.GetIdentity, Namespace: "test"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		fetcher = c
	}
	loaders := loader.NewFactory(loader.Config{Fetcher: fetcher})
	cfg := o.cfg
	if cfg.Authenticate == nil {
		cfg.Authenticate = func(ctx context.Context, h http.Header) (context.Context, error) {
			switch h.Get("Authorization") {
			case "Bearer user", "Bearer backend":
				return context.WithValue(ctx, callerKey{}, h.Get("Authorization")), nil
			}
			if h.Get("X-Api-Key") == "key" {
				return context.WithValue(ctx, callerKey{}, "Bearer backend"), nil
			}
			return ctx, &apierr.Error{Code: apierr.CodeUnauthenticated, Message: "Invalid token."}
		}
	}
	if cfg.CallerKey == nil {
		cfg.CallerKey = func(ctx context.Context) string { s, _ := ctx.Value(callerKey{}).(string); return s }
	}
	if cfg.AllowOrigin == nil {
		cfg.AllowOrigin = func(o string) bool { return o == "https://app.example" }
	}
	s.subs = graph.NewSubscriptions(cfg)
	hc := graph.HandlerConfig{
		Authorize: func(ctx context.Context, id string) error {
			switch ctx.Value(callerKey{}) {
			case "Bearer backend":
				return nil
			case "Bearer user":
				if id == okLink {
					return nil
				}
			}
			return &apierr.Error{Code: apierr.CodeForbidden, Message: "You may not read this link."}
		},
		Loaders:       loaders,
		Limits:        o.limits,
		Subscriptions: s.subs,
		Refresh:       o.refresh,
	}
	if !o.noBus {
		hc.Events = s.bus
	}
	if o.staleExtensions {
		hc.ResponseExtensions = func(ctx context.Context) map[string]any {
			if age, stale := cache.ServedFrom(ctx).AnyStale(); stale {
				return map[string]any{"identityCache": map[string]any{"stale": true, "ageSeconds": int(age.Seconds())}}
			}
			return nil
		}
	}
	var h http.Handler = graph.NewHandler(hc)
	h = loaders.Middleware(h)
	if o.limits != nil {
		h = o.limits.Middleware(h)
	}
	log := zerolog.Nop()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := log.WithContext(r.Context())
		// HTTP requests are authenticated by their header, as by the
		// server's middleware.
		if a := r.Header.Get("Authorization"); a != "" {
			ctx = context.WithValue(ctx, callerKey{}, a)
		}
		if o.staleExtensions {
			ctx, _ = cache.WithServed(ctx)
		}
		h.ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(hs.Close)
	t.Cleanup(s.subs.Shutdown)
	s.url = hs.URL
	return s
}

// wsClient speaks the few messages of graphql-transport-ws a test needs.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
}

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

func (s *subsServer) dial(t *testing.T, h http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/graphql", &websocket.DialOptions{
		Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: h,
	})
}

// connect opens a connection and sends connection_init with payload; with
// ack it waits for connection_ack.
func (s *subsServer) connect(t *testing.T, payload map[string]any, ack bool) *wsClient {
	t.Helper()
	conn, _, err := s.dial(t, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	conn.SetReadLimit(1 << 20)
	t.Cleanup(func() { conn.CloseNow() })
	c := &wsClient{t: t, conn: conn}
	p, _ := json.Marshal(payload)
	c.send(wsMessage{Type: "connection_init", Payload: p})
	if ack {
		if m := c.read(); m.Type != "connection_ack" {
			t.Fatalf("got %s, want connection_ack", m.Type)
		}
	}
	return c
}

func (c *wsClient) send(m wsMessage) {
	c.t.Helper()
	b, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next message other than ping (answered) and pong.
func (c *wsClient) read() wsMessage {
	c.t.Helper()
	m, err := c.tryRead(5 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

func (c *wsClient) tryRead(d time.Duration) (wsMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		_, b, err := c.conn.Read(ctx)
		if err != nil {
			return wsMessage{}, err
		}
		var m wsMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return wsMessage{}, err
		}
		switch m.Type {
		case "ping":
			b, _ := json.Marshal(wsMessage{Type: "pong"})
			_ = c.conn.Write(ctx, websocket.MessageText, b)
			continue
		case "pong":
			continue
		}
		return m, nil
	}
}

// closeStatus reads until the connection closes and returns its code.
func (c *wsClient) closeStatus() websocket.StatusCode {
	c.t.Helper()
	for {
		_, err := c.tryRead(5 * time.Second)
		if err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

const eventQuery = `subscription($id: ID!) { linkEvents(linkId: $id) { linkId kind product refreshState linkState errorMessage occurredAt link { id institutionName products { identity { refreshedAt } } } } }`

func (c *wsClient) subscribe(id, query, linkID string) {
	c.t.Helper()
	p, _ := json.Marshal(map[string]any{"query": query, "variables": map[string]any{"id": linkID}})
	c.send(wsMessage{ID: id, Type: "subscribe", Payload: p})
}

// waitSubscribers waits until linkID has n subscribers on the bus.
func (s *subsServer) waitSubscribers(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, got := s.bus.Links(); got == n {
			return
		}
		if time.Now().After(deadline) {
			_, got := s.bus.Links()
			t.Fatalf("%d subscriptions on the bus, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var refreshEvent = linkevents.Event{LinkID: okLink, Kind: linkevents.KindProductRefresh, Product: "identity",
	RefreshState: "COMPLETED", OccurredAt: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)}

type eventPayload struct {
	Data struct {
		LinkEvents struct {
			LinkID, Kind, OccurredAt string
			Product, RefreshState    *string
			LinkState, ErrorMessage  *string
			Link                     *struct {
				ID, InstitutionName string
			}
		}
	}
	Errors []struct {
		Message    string
		Extensions map[string]any
	}
}
