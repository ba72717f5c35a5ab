package graph_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mkgraph/mkgraph/graph"
)

// A caller's connection_init over ConnectionsPerCaller closes with 4429;
// other callers are not held back, and a closed connection frees its room.
func TestWebSocketConnectionsPerCaller(t *testing.T) {
	s := newSubsServer(t, subsOptions{cfg: graph.SubscriptionConfig{ConnectionsPerCaller: 2}})
	user := map[string]any{"Authorization": "Bearer user"}
	c1 := s.connect(t, user, true)
	s.connect(t, user, true)
	if got := s.connect(t, user, false).closeStatus(); got != 4429 {
		t.Fatalf("third connection of a caller closed with %d, want 4429", got)
	}
	other := s.connect(t, map[string]any{"Authorization": "Bearer backend"}, true)
	other.subscribe("1", eventQuery, okLink)
	s.waitSubscribers(t, 1)

	c1.conn.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(5 * time.Second)
	for s.subs.Connections() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections after a close, want 2", s.subs.Connections())
		}
		time.Sleep(5 * time.Millisecond)
	}
	c := s.connect(t, user, true)
	c.subscribe("1", eventQuery, okLink)
	s.waitSubscribers(t, 2)
}

// WebSockets that have not sent connection_init are few: more are refused
// at the upgrade (503) until one is acked or times out.
func TestWebSocketPendingConnections(t *testing.T) {
	s := newSubsServer(t, subsOptions{cfg: graph.SubscriptionConfig{PendingConnections: 2, InitTimeout: 300 * time.Millisecond}})
	dial := func() (*websocket.Conn, int) {
		t.Helper()
		conn, resp, err := s.dial(t, nil)
		if err != nil {
			if resp == nil {
				t.Fatalf("dial: %v", err)
			}
			return nil, resp.StatusCode
		}
		t.Cleanup(func() { conn.CloseNow() })
		return conn, http.StatusSwitchingProtocols
	}
	silent, _ := dial()
	conn, _ := dial()
	if _, code := dial(); code != http.StatusServiceUnavailable {
		t.Fatalf("third pending connection: %d, want 503", code)
	}
	c := &wsClient{t: t, conn: conn}
	c.send(wsMessage{Type: "connection_init", Payload: []byte(`{"Authorization":"Bearer user"}`)})
	if m := c.read(); m.Type != "connection_ack" {
		t.Fatalf("got %s, want connection_ack", m.Type)
	}
	// Acked: no longer pending.
	if _, code := dial(); code != http.StatusSwitchingProtocols {
		t.Fatalf("after an ack: %d", code)
	}
	// Pending ones time out after InitTimeout, and free their room.
	(&wsClient{t: t, conn: silent}).closeStatus()
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, code := dial()
		if code == http.StatusSwitchingProtocols {
			conn.CloseNow()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending connections not freed: %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The acked connection serves subscriptions.
	c.subscribe("1", eventQuery, okLink)
	s.waitSubscribers(t, 1)
}

// One remote address may hold only a few WebSockets without
// connection_init, whatever room the replica has: a client opening sockets
// and never initialising them cannot take every slot.
func TestWebSocketPendingPerAddress(t *testing.T) {
	s := newSubsServer(t, subsOptions{cfg: graph.SubscriptionConfig{PendingConnections: 100, PendingPerAddress: 2}})
	for i := range 2 {
		conn, _, err := s.dial(t, nil)
		if err != nil {
			t.Fatalf("pending connection %d: %v", i+1, err)
		}
		t.Cleanup(func() { conn.CloseNow() })
	}
	_, resp, err := s.dial(t, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third pending connection from one address: %v %v, want 503", resp, err)
	}
}
