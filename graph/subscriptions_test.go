package graph_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mkgraph/mkgraph/graph"
	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/linkevents"
)

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
	s := newSubsServer(t, subsOptions{cfg: graph.SubscriptionConfig{PerCaller: conns * perConn, ConnectionsPerCaller: conns}})
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

var _ = errors.New
