package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// wsOpen dials baseURL and gets connection_ack for token.
func wsOpen(t *testing.T, baseURL, token string) *websocket.Conn {
	t.Helper()
	c, _, err := wsDial(t, baseURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	wsSend(t, c, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}})
	if m, err := wsRead(c, 5*time.Second); err != nil || m["type"] != "connection_ack" {
		t.Fatalf("connection_init: %v %v", m, err)
	}
	return c
}

func wsSubscribe(t *testing.T, c *websocket.Conn, id, query string) {
	t.Helper()
	wsSend(t, c, map[string]any{"id": id, "type": "subscribe", "payload": map[string]any{"query": query}})
}

// wsErrorCode reads the next message, which must be an "error" for id, and
// returns its first error's extensions.
func wsErrorFor(t *testing.T, c *websocket.Conn, id string) map[string]any {
	t.Helper()
	m, err := wsRead(c, 5*time.Second)
	if err != nil {
		t.Fatalf("reading the answer to %s: %v", id, err)
	}
	errs, _ := m["payload"].([]any)
	if m["type"] != "error" || m["id"] != id || len(errs) == 0 {
		t.Fatalf("answer to %s: %s, want an error message for it", id, toJSON(m))
	}
	e, _ := errs[0].(map[string]any)
	ext, _ := e["extensions"].(map[string]any)
	return ext
}

// wsAccepted checks that the subscribes sent so far got no answer: the
// server answers a ping after it has handled the messages before it (a
// refusal by the limits is sent as the subscribe is read). A "complete"
// for an id in done (one refused before) is skipped. (A read that times
// out would close the socket.)
func wsAccepted(t *testing.T, c *websocket.Conn, what string, done ...string) {
	t.Helper()
	wsSend(t, c, map[string]any{"type": "ping"})
	for {
		m, err := wsRead(c, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		switch {
		case m["type"] == "pong":
			return
		case m["type"] == "complete" && slices.Contains(done, fmt.Sprint(m["id"])):
		default:
			t.Fatalf("%s: got %s, want none before pong", what, toJSON(m))
		}
	}
}

// TestWebSocketSubscribeOperationLimits: a subscribe message is held to
// the operation limits as an HTTP request is (the same code), before
// gqlgen parses it; an SSE POST of the same gets its 400 from the
// middleware.
func TestWebSocketSubscribeOperationLimits(t *testing.T) {
	baseURL := startSubsServer(t)
	alice := signHS256(t, e2eSecret, "alice", []string{sandbox.LinkSeed}, time.Hour)
	var aliases strings.Builder
	for i := range 200 {
		fmt.Fprintf(&aliases, " k%d: kind", i)
	}
	linkEvents := `subscription { linkEvents(linkId: "` + sandbox.LinkSeed + `") {`
	deep := linkEvents + ` link { accounts { owners { addresses { street } } } } } }` // 6 deep: within 10
	tests := []struct {
		name, query, code string
	}{
		{"200 aliases", linkEvents + aliases.String() + ` } }`, "facade.too_many_aliases"},
		{"too deep", `subscription { linkEvents(linkId: "x") ` + strings.Repeat("{ a ", 11) + strings.Repeat("}", 11) + ` }`, "facade.query_too_deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postGraphQL(t, newClient(t), baseURL, gqlRequest{Query: tt.query}, "Authorization", "Bearer "+alice, "Accept", "text/event-stream")
			if r.status != 400 || !strings.Contains(string(r.body), tt.code) {
				t.Errorf("over SSE: %d %s, want 400 %s", r.status, r.body, tt.code)
			}
			c := wsOpen(t, baseURL, alice)
			wsSubscribe(t, c, "bad", tt.query)
			if ext := wsErrorFor(t, c, "bad"); ext["code"] != tt.code {
				t.Errorf("over WebSocket: %v, want %s", ext, tt.code)
			}
			// The socket is still good for a subscription within limits.
			wsSubscribe(t, c, "ok", deep)
			wsAccepted(t, c, "a subscription within the limits", "bad")
		})
	}
}

// TestWebSocketSubscribeRateLimit: each subscribe message costs one request
// of the caller's rate limit, shared with its HTTP requests; one beyond it
// gets an "error" with facade.rate_limit_exceeded and retryAfter, and the
// socket stays open.
func TestWebSocketSubscribeRateLimit(t *testing.T) {
	baseURL, _, _ := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":        startUpstream(t, sandbox.New(sandbox.Options{})),
		"MONEYKIT_CLIENT_ID":       sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET":   sandbox.DefaultClientSecret,
		"MKGRAPH_AUTH":             "jwt",
		"MKGRAPH_JWT_HS256_SECRET": e2eSecret,
		"MKGRAPH_USER_RATE_LIMIT":  "6", // one every 10 s
		"MKGRAPH_USER_RATE_BURST":  "3",
	})
	alice := signHS256(t, e2eSecret, "alice", []string{sandbox.LinkSeed}, time.Hour)
	bob := signHS256(t, e2eSecret, "bob", []string{sandbox.LinkSeed}, time.Hour)
	sub := `subscription { linkEvents(linkId: "` + sandbox.LinkSeed + `") { kind } }`

	c := wsOpen(t, baseURL, alice)
	for i := range 3 {
		wsSubscribe(t, c, fmt.Sprint("s", i), sub)
	}
	wsAccepted(t, c, "three subscribes within the burst")
	wsSubscribe(t, c, "s3", sub)
	ext := wsErrorFor(t, c, "s3")
	if ext["code"] != "facade.rate_limit_exceeded" {
		t.Fatalf("fourth subscribe: %v, want facade.rate_limit_exceeded", ext)
	}
	if ra, _ := ext["retryAfter"].(float64); ra < 1 || ra > 10 {
		t.Errorf("retryAfter %v, want 1 to 10 s", ext["retryAfter"])
	}
	// The same caller's HTTP requests share the allowance.
	r := postGraphQL(t, newClient(t), baseURL, gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id } }`}, "Authorization", "Bearer "+alice)
	if r.status != 429 {
		t.Errorf("alice's POST after her subscribes: %d %s, want 429", r.status, r.body)
	}
	// Another caller has an allowance of its own, on another socket.
	b := wsOpen(t, baseURL, bob)
	wsSubscribe(t, b, "b0", sub)
	wsAccepted(t, b, "another caller's subscribe")
}
