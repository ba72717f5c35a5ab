package graph_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/graph"
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
		Subscriptions: s.subs,
		Refresh:       o.refresh,
	}
	if !o.noBus {
		hc.Events = s.bus
	}
	h := graph.NewHandler(hc)
	log := zerolog.Nop()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := log.WithContext(r.Context())
		// HTTP requests are authenticated by their header, as by the
		// server's middleware.
		if a := r.Header.Get("Authorization"); a != "" {
			ctx = context.WithValue(ctx, callerKey{}, a)
		}
		loaders.Middleware(h).ServeHTTP(w, r.WithContext(ctx))
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

func TestWebSocketSubscriptionDeliversEventWithLink(t *testing.T) {
	s := newSubsServer(t, subsOptions{})
	c := s.connect(t, map[string]any{"Authorization": "Bearer user"}, true)
	c.subscribe("1", eventQuery, okLink)
	s.waitSubscribers(t, 1)
	if err := s.bus.Publish(context.Background(), refreshEvent); err != nil {
		t.Fatal(err)
	}
	m := c.read()
	if m.Type != "next" || m.ID != "1" {
		t.Fatalf("got %s %s: %s", m.Type, m.ID, m.Payload)
	}
	var p eventPayload
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		t.Fatal(err)
	}
	ev := p.Data.LinkEvents
	if len(p.Errors) > 0 || ev.LinkID != okLink || ev.Kind != "PRODUCT_REFRESH" || *ev.Product != "IDENTITY" ||
		*ev.RefreshState != "COMPLETED" || ev.LinkState != nil || ev.OccurredAt != "2024-05-06T07:08:09Z" ||
		ev.Link == nil || ev.Link.ID != okLink || ev.Link.InstitutionName != "Chase" {
		t.Fatalf("event: %s", m.Payload)
	}
	// Client complete: the bus subscription ends.
	c.send(wsMessage{ID: "1", Type: "complete"})
	s.waitSubscribers(t, 0)

	// A state change: the link state mapped, unknown values UNKNOWN.
	c.subscribe("2", eventQuery, okLink)
	s.waitSubscribers(t, 1)
	s.bus.Publish(context.Background(), linkevents.Event{LinkID: okLink, Kind: linkevents.KindStateChanged, LinkState: "error", ErrorMessage: "auth expired"})
	s.bus.Publish(context.Background(), linkevents.Event{LinkID: okLink, Kind: "SOMETHING_NEW", Product: "crystal_ball", RefreshState: "WEIRD", LinkState: "sleeping"})
	for i, want := range []string{`"kind":"STATE_CHANGED","product":null,"refreshState":null,"linkState":"ERROR","errorMessage":"auth expired"`,
		`"kind":"UNKNOWN","product":null,"refreshState":"UNKNOWN","linkState":"UNKNOWN"`} {
		m := c.read()
		for m.ID == "1" && m.Type == "complete" {
			m = c.read() // gqlgen's answer to the client's complete
		}
		if m.Type != "next" || !strings.Contains(string(m.Payload), want) {
			t.Fatalf("event %d: %s %s, want %s", i, m.Type, m.Payload, want)
		}
	}
}

func TestWebSocketAuthInConnectionInit(t *testing.T) {
	s := newSubsServer(t, subsOptions{})
	for name, payload := range map[string]map[string]any{
		"missing": nil,
		"invalid": {"Authorization": "Bearer forged"},
	} {
		t.Run(name, func(t *testing.T) {
			c := s.connect(t, payload, false)
			if code := c.closeStatus(); code != 4401 {
				t.Fatalf("close code %d, want 4401", code)
			}
		})
	}
	for name, payload := range map[string]map[string]any{
		"lowercase authorization": {"authorization": "Bearer user"},
		"api key":                 {"X-Api-Key": "key"},
		"api key lowercase":       {"x-api-key": "key"},
	} {
		t.Run(name, func(t *testing.T) { s.connect(t, payload, true) })
	}
	t.Run("upgrade header", func(t *testing.T) {
		conn, _, err := s.dial(t, http.Header{"Authorization": {"Bearer user"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		c := &wsClient{t: t, conn: conn}
		c.send(wsMessage{Type: "connection_init"})
		if m := c.read(); m.Type != "connection_ack" {
			t.Fatalf("got %s", m.Type)
		}
	})
}

func TestWebSocketForbiddenLinkGetsError(t *testing.T) {
	s := newSubsServer(t, subsOptions{})
	c := s.connect(t, map[string]any{"Authorization": "Bearer user"}, true)
	for id, link := range map[string]string{"f": otherLink, "bad": ".."} {
		c.subscribe(id, eventQuery, link)
		m := c.read()
		if m.Type != "error" || m.ID != id {
			t.Fatalf("got %s %s: %s", m.Type, m.ID, m.Payload)
		}
		want := apierr.CodeForbidden
		if id == "bad" {
			want = apierr.CodeInvalidArgument
		}
		if !strings.Contains(string(m.Payload), `"code":"`+want+`"`) {
			t.Fatalf("payload %s, want %s", m.Payload, want)
		}
	}
	if _, n := s.bus.Links(); n != 0 {
		t.Fatalf("%d bus subscriptions after refusals", n)
	}
	if s.fetcher.calls.Load() != 0 {
		t.Fatal("a refusal made an upstream call")
	}
	// Queries are not served over WebSocket.
	c.subscribe("q", `query($id: ID!) { link(id: $id) { id } }`, okLink)
	if m := c.read(); !strings.Contains(string(m.Payload), apierr.CodeBadRequest) {
		t.Fatalf("query over WebSocket: %s %s", m.Type, m.Payload)
	}
}

func TestWebSocketOrigin(t *testing.T) {
	s := newSubsServer(t, subsOptions{})
	for origin, ok := range map[string]bool{
		"":                     true,
		"https://app.example":  true,
		"https://evil.example": false,
		"null":                 false,
		strings.Replace(s.url, "127.0.0.1", "localhost", 1): false, // another host
		s.url: true, // same origin
	} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		conn, resp, err := s.dial(t, h)
		if ok != (err == nil) {
			t.Errorf("origin %q: err %v, want allowed %v", origin, err, ok)
		}
		if conn != nil {
			conn.CloseNow()
		}
		if !ok && resp != nil && resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %q: status %d, want 403", origin, resp.StatusCode)
		}
	}
	// A client that does not speak graphql-transport-ws is refused.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/graphql", &websocket.DialOptions{Subprotocols: []string{"graphql-ws"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("legacy protocol: %v %v", err, resp)
	}
}

func TestWebSocketLimits(t *testing.T) {
	s := newSubsServer(t, subsOptions{cfg: graph.SubscriptionConfig{PerConnection: 2, PerCaller: 3, Connections: 3}})
	c1 := s.connect(t, map[string]any{"Authorization": "Bearer user"}, true)
	c1.subscribe("a", eventQuery, okLink)
	c1.subscribe("b", eventQuery, okLink)
	s.waitSubscribers(t, 2)
	c1.subscribe("c", eventQuery, okLink)
	if m := c1.read(); m.Type != "error" || m.ID != "c" || !strings.Contains(string(m.Payload), apierr.CodeTooManySubscriptions) {
		t.Fatalf("third on a connection: %s %s %s", m.Type, m.ID, m.Payload)
	}
	c2 := s.connect(t, map[string]any{"Authorization": "Bearer user"}, true)
	c2.subscribe("a", eventQuery, okLink)
	s.waitSubscribers(t, 3)
	c2.subscribe("b", eventQuery, okLink)
	if m := c2.read(); m.Type != "error" || !strings.Contains(string(m.Payload), "caller") {
		t.Fatalf("fourth for the caller: %s %s", m.Type, m.Payload)
	}
	// Another caller is not held back by this one's bound.
	c3 := s.connect(t, map[string]any{"Authorization": "Bearer backend"}, true)
	c3.subscribe("a", eventQuery, okLink)
	s.waitSubscribers(t, 4)
	// A fourth connection is refused before the upgrade.
	if conn, resp, err := s.dial(t, nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		if conn != nil {
			conn.CloseNow()
		}
		t.Fatalf("fourth connection: %v %v", err, resp)
	}
	if s.subs.Connections() != 3 || s.subs.Active() != 4 {
		t.Fatalf("stats: %d connections, %d subscriptions", s.subs.Connections(), s.subs.Active())
	}
	// Completing one frees room on its connection.
	c1.send(wsMessage{ID: "a", Type: "complete"})
	s.waitSubscribers(t, 3)
	c1.subscribe("d", eventQuery, okLink)
	s.waitSubscribers(t, 4)
}

func TestWebSocketSlowConsumerDroppedWithoutBlockingOthers(t *testing.T) {
	block := make(chan struct{})
	slow := &countingFetcher{block: block}
	s := newSubsServer(t, subsOptions{cfg: graph.SubscriptionConfig{Buffer: 2}, fetcher: slow})
	// The slow one selects the link, whose fetch hangs; the other does not.
	slowC := s.connect(t, map[string]any{"Authorization": "Bearer user"}, true)
	slowC.subscribe("s", eventQuery, okLink)
	fast := s.connect(t, map[string]any{"Authorization": "Bearer user"}, true)
	fast.subscribe("f", `subscription($id: ID!) { linkEvents(linkId: $id) { kind occurredAt } }`, okLink)
	s.waitSubscribers(t, 2)
	for i := range 6 {
		start := time.Now()
		s.bus.Publish(context.Background(), refreshEvent)
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("publish %d took %v", i, d)
		}
		if m := fast.read(); m.Type != "next" {
			t.Fatalf("fast subscriber, event %d: %s %s", i, m.Type, m.Payload)
		}
	}
	close(block)
	for {
		m := slowC.read()
		if m.Type == "next" {
			continue // what it had taken before it fell behind
		}
		if m.Type != "error" || !strings.Contains(string(m.Payload), apierr.CodeSubscriptionOverflow) {
			t.Fatalf("slow subscriber: %s %s", m.Type, m.Payload)
		}
		break
	}
	if s.subs.Dropped() != 1 {
		t.Fatalf("dropped %d, want 1", s.subs.Dropped())
	}
	// The connection stays usable.
	slowC.subscribe("s2", `subscription($id: ID!) { linkEvents(linkId: $id) { kind } }`, okLink)
	s.waitSubscribers(t, 2)
}

func TestWebSocketShutdownClosesWithServiceRestart(t *testing.T) {
	t.Run("Shutdown", func(t *testing.T) {
		s := newSubsServer(t, subsOptions{})
		c := s.connect(t, map[string]any{"Authorization": "Bearer user"}, true)
		c.subscribe("1", eventQuery, okLink)
		s.waitSubscribers(t, 1)
		s.subs.Shutdown()
		if code := c.closeStatus(); code != graph.CloseServiceRestart {
			t.Fatalf("close code %d, want %d", code, graph.CloseServiceRestart)
		}
		if _, _, err := s.dial(t, nil); err == nil {
			t.Fatal("a connection was accepted after Shutdown")
		}
	})
	t.Run("bus closed", func(t *testing.T) {
		s := newSubsServer(t, subsOptions{})
		c := s.connect(t, map[string]any{"Authorization": "Bearer user"}, true)
		c.subscribe("1", eventQuery, okLink)
		s.waitSubscribers(t, 1)
		s.bus.Close()
		if code := c.closeStatus(); code != graph.CloseServiceRestart {
			t.Fatalf("close code %d, want %d", code, graph.CloseServiceRestart)
		}
	})
}

func TestWebSocketSubscriptionsOff(t *testing.T) {
	s := newSubsServer(t, subsOptions{noBus: true})
	c := s.connect(t, map[string]any{"Authorization": "Bearer user"}, true)
	c.subscribe("1", eventQuery, okLink)
	if m := c.read(); m.Type != "error" || !strings.Contains(string(m.Payload), apierr.CodeSubscriptionsUnavailable) {
		t.Fatalf("%s %s", m.Type, m.Payload)
	}
}

// TestSubscribersShareOneUpstreamCall: 1,000 subscribers selecting the link
// of one event (50 connections of 20 subscriptions) cost one upstream call
// (the identity cache's single flight), each with fresh loaders. The issue's
// figure: upstream calls when 1,000 subscribers select link on one
// completed event, which must be 1.
func TestSubscribersShareOneUpstreamCall(t *testing.T) {
	const conns, perConn = 50, 20
	s := newSubsServer(t, subsOptions{cfg: graph.SubscriptionConfig{PerCaller: conns * perConn}})
	var clients []*wsClient
	for i := range conns {
		c := s.connect(t, map[string]any{"Authorization": "Bearer user"}, true)
		for j := range perConn {
			c.subscribe(fmt.Sprint(i, "-", j), eventQuery, okLink)
		}
		clients = append(clients, c)
	}
	s.waitSubscribers(t, conns*perConn)
	s.bus.Publish(context.Background(), refreshEvent)
	var wg sync.WaitGroup
	var bad atomic.Int64
	for _, c := range clients {
		wg.Go(func() {
			for range perConn {
				m, err := c.tryRead(30 * time.Second)
				if err != nil || m.Type != "next" || !strings.Contains(string(m.Payload), `"institutionName":"Chase"`) {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d subscribers did not get the link", bad.Load())
	}
	if n := s.fetcher.calls.Load(); n != 1 {
		t.Fatalf("%d upstream calls for %d subscribers, want 1", n, conns*perConn)
	}
	if got := s.subs.Delivered(); got != conns*perConn {
		t.Fatalf("delivered %d, want %d", got, conns*perConn)
	}
	t.Logf("%d subscribers selecting link on one event: %d upstream call", conns*perConn, s.fetcher.calls.Load())
}

// sseUnread posts a subscription and never reads its stream.
func (s *subsServer) sseUnread(t *testing.T, ctx context.Context, auth, linkID string) *http.Response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": eventQuery, "variables": map[string]any{"id": linkID}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// sse posts a subscription with Accept: text/event-stream and returns the
// events' lines as they come.
func (s *subsServer) sse(t *testing.T, ctx context.Context, auth, linkID string) (*http.Response, <-chan string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": eventQuery, "variables": map[string]any{"id": linkID}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if l := sc.Text(); l != "" && !strings.HasPrefix(l, ":") {
				lines <- l
			}
		}
	}()
	return resp, lines
}

func nextLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			return "EOF"
		}
		return l
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
		return ""
	}
}

func TestSSESubscription(t *testing.T) {
	s := newSubsServer(t, subsOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, lines := s.sse(t, ctx, "Bearer user", okLink)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s.waitSubscribers(t, 1)
	s.bus.Publish(context.Background(), refreshEvent)
	if l := nextLine(t, lines); l != "event: next" {
		t.Fatalf("got %q", l)
	}
	if l := nextLine(t, lines); !strings.HasPrefix(l, "data: ") || !strings.Contains(l, `"institutionName":"Chase"`) {
		t.Fatalf("got %q", l)
	}
	// The client leaves: the bus subscription ends.
	cancel()
	s.waitSubscribers(t, 0)

	t.Run("forbidden", func(t *testing.T) {
		_, lines := s.sse(t, context.Background(), "Bearer user", otherLink)
		got := []string{nextLine(t, lines), nextLine(t, lines), nextLine(t, lines)}
		if got[0] != "event: next" || !strings.Contains(got[1], apierr.CodeForbidden) || got[2] != "event: complete" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("slow consumer", func(t *testing.T) {
		// Not read at all: the stream's writes fill the socket, then the
		// buffer; the subscriber is dropped, the publisher is not held.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp := s.sseUnread(t, ctx, "Bearer user", okLink)
		defer resp.Body.Close()
		s.waitSubscribers(t, 1)
		before := s.subs.Dropped()
		deadline := time.Now().Add(10 * time.Second)
		for s.subs.Dropped() == before {
			if time.Now().After(deadline) {
				t.Fatal("never dropped")
			}
			big := refreshEvent
			big.ErrorMessage = strings.Repeat("x", 16<<10)
			s.bus.Publish(context.Background(), big)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		_, lines := s.sse(t, context.Background(), "Bearer user", okLink)
		s.waitSubscribers(t, 1)
		s.subs.Shutdown()
		if l := nextLine(t, lines); l != "EOF" {
			t.Fatalf("got %q, want the stream to end without complete", l)
		}
	})
}

func TestSubscriptionOverPlainHTTPRefused(t *testing.T) {
	s := newSubsServer(t, subsOptions{})
	body, _ := json.Marshal(map[string]any{"query": eventQuery, "variables": map[string]any{"id": okLink}})
	req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer user")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

const refreshMutation = `mutation($id: ID!) { refreshIdentity(linkId: $id) { linkId requestedAt status { refreshedAt lastAttemptedAt } } }`

func TestRefreshIdentity(t *testing.T) {
	var calls atomic.Int64
	s := newSubsServer(t, subsOptions{refresh: func(ctx context.Context, id string) (*upstream.Link, error) {
		calls.Add(1)
		if id == "mk_limited" {
			return nil, &apierr.Error{Code: apierr.CodeRateLimitExceeded, Status: 429, Message: "Rate limit exceeded.", RetryAfter: 30 * time.Second, HasRetryAfter: true}
		}
		return &upstream.Link{LinkID: id, Products: map[string]*upstream.ProductStatus{"identity": {
			RefreshedAt: upstream.Timestamp{Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}, LastAttemptedAt: upstream.Timestamp{Time: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)}}}}, nil
	}})
	post := func(auth, id string) map[string]any {
		body, _ := json.Marshal(map[string]any{"query": refreshMutation, "variables": map[string]any{"id": id}})
		req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return out
	}
	before := time.Now().UTC().Add(-time.Second)
	out := post("Bearer user", okLink)
	r, _ := out["data"].(map[string]any)["refreshIdentity"].(map[string]any)
	if r == nil || r["linkId"] != okLink {
		t.Fatalf("%v", out)
	}
	at, err := time.Parse(time.RFC3339Nano, r["requestedAt"].(string))
	if err != nil || at.Before(before) || at.After(time.Now().Add(time.Second)) {
		t.Fatalf("requestedAt %v", r["requestedAt"])
	}
	if st := r["status"].(map[string]any); st["refreshedAt"] != "2024-01-02T03:04:05Z" || st["lastAttemptedAt"] != "2024-06-01T00:00:00Z" {
		t.Fatalf("status %v", st)
	}
	for _, c := range []struct{ auth, id, code string }{
		{"Bearer user", otherLink, apierr.CodeForbidden},
		{"Bearer user", "..", apierr.CodeInvalidArgument},
		{"Bearer backend", "mk_limited", apierr.CodeRateLimitExceeded},
	} {
		before := calls.Load()
		out := post(c.auth, c.id)
		errs, _ := out["errors"].([]any)
		if len(errs) != 1 {
			t.Fatalf("%s: %v", c.id, out)
		}
		e := errs[0].(map[string]any)["extensions"].(map[string]any)
		if e["code"] != c.code {
			t.Fatalf("%s: %v", c.id, e)
		}
		if c.code == apierr.CodeRateLimitExceeded {
			if e["retryAfter"] != float64(30) {
				t.Fatalf("retryAfter %v", e["retryAfter"])
			}
		} else if calls.Load() != before {
			t.Fatalf("%s: a refusal called upstream", c.id)
		}
	}
	// Over GET: 405.
	req, _ := http.NewRequest(http.MethodGet, s.url+"/graphql?query="+strings.ReplaceAll(`mutation { refreshIdentity(linkId: "`+okLink+`") { linkId } }`, " ", "+"), nil)
	req.Header.Set("Authorization", "Bearer user")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET mutation: %d", resp.StatusCode)
	}
}

var _ = errors.New
