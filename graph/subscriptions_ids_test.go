package graph_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A subscribe with the id of an active subscription closes the socket with
// 4409 (graphql-transport-ws); the first subscription delivered until then
// and is not left running.
func TestWebSocketRepeatedSubscribeIDCloses4409(t *testing.T) {
	s := newSubsServer(t, subsOptions{})
	c := s.connect(t, map[string]any{"Authorization": "Bearer user"}, true)
	c.subscribe("1", eventQuery, okLink)
	s.waitSubscribers(t, 1)
	if err := s.bus.Publish(context.Background(), refreshEvent); err != nil {
		t.Fatal(err)
	}
	if m := c.read(); m.Type != "next" || m.ID != "1" {
		t.Fatalf("first event: %s %s %s", m.Type, m.ID, m.Payload)
	}
	c.subscribe("1", eventQuery, okLink)
	_, err := c.tryRead(5 * time.Second)
	if got := websocket.CloseStatus(err); got != 4409 {
		t.Fatalf("close %d (%v), want 4409", got, err)
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Reason != "Subscriber for 1 already exists" {
		t.Fatalf("close reason: %v", err)
	}
	s.waitSubscribers(t, 0) // both ended with the connection
	waitActive(t, s, 0)
}

// An id may be reused once the server has said its subscription ended; a
// repeat on one connection does not touch another connection's same id.
func TestWebSocketSubscribeIDReusedAfterComplete(t *testing.T) {
	s := newSubsServer(t, subsOptions{})
	c := s.connect(t, map[string]any{"Authorization": "Bearer user"}, true)
	other := s.connect(t, map[string]any{"Authorization": "Bearer user"}, true)
	c.subscribe("1", eventQuery, okLink)
	other.subscribe("1", eventQuery, okLink)
	s.waitSubscribers(t, 2)

	c.send(wsMessage{ID: "1", Type: "complete"})
	if m := c.read(); m.Type != "complete" || m.ID != "1" {
		t.Fatalf("after complete: %s %s %s", m.Type, m.ID, m.Payload)
	}
	s.waitSubscribers(t, 1)
	// A refused subscribe ("error") ends its id too.
	c.subscribe("1", eventQuery, "mk_sub_other")
	if m := c.read(); m.Type != "error" || m.ID != "1" {
		t.Fatalf("forbidden link: %s %s %s", m.Type, m.ID, m.Payload)
	}
	c.subscribe("1", eventQuery, okLink)
	s.waitSubscribers(t, 2)
	if err := s.bus.Publish(context.Background(), refreshEvent); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*wsClient{c, other} {
		if m := cl.read(); m.Type != "next" || m.ID != "1" || !strings.Contains(string(m.Payload), okLink) {
			t.Fatalf("event: %s %s %s", m.Type, m.ID, m.Payload)
		}
	}
	// complete still stops the reused id's subscription.
	c.send(wsMessage{ID: "1", Type: "complete"})
	if m := c.read(); m.Type != "complete" || m.ID != "1" {
		t.Fatalf("after complete: %s %s %s", m.Type, m.ID, m.Payload)
	}
	s.waitSubscribers(t, 1)
}

// waitActive waits until the replica counts n open subscriptions.
func waitActive(t *testing.T, s *subsServer, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.subs.Active() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscriptions open, want %d", s.subs.Active(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A repeated id hidden behind trailing bytes (gqlgen's decoder reads the
// first JSON value and ignores the rest) is still a repeated id: 4409.
func TestWebSocketRepeatedSubscribeIDTrailingBytes(t *testing.T) {
	s := newSubsServer(t, subsOptions{})
	c := s.connect(t, map[string]any{"Authorization": "Bearer user"}, true)
	c.subscribe("1", eventQuery, okLink)
	s.waitSubscribers(t, 1)
	p, _ := json.Marshal(map[string]any{"query": eventQuery, "variables": map[string]any{"id": okLink}})
	b, _ := json.Marshal(wsMessage{ID: "1", Type: "subscribe", Payload: p})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, append(b, []byte(" x")...)); err != nil {
		t.Fatal(err)
	}
	_, err := c.tryRead(5 * time.Second)
	if got := websocket.CloseStatus(err); got != 4409 {
		t.Fatalf("close %d (%v), want 4409", got, err)
	}
	s.waitSubscribers(t, 0)
	waitActive(t, s, 0)
}
