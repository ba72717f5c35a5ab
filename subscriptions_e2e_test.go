package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

const e2eSecret = "an-hs256-secret-of-at-least-32-bytes!!"

// startSubsServer is the facade in JWT mode over a sandbox on its own port.
func startSubsServer(t *testing.T) string {
	t.Helper()
	baseURL, _, _ := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":        startUpstream(t, sandbox.New(sandbox.Options{})),
		"MONEYKIT_CLIENT_ID":       sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET":   sandbox.DefaultClientSecret,
		"MKGRAPH_AUTH":             "jwt",
		"MKGRAPH_JWT_HS256_SECRET": e2eSecret,
		"MKGRAPH_CORS_ORIGINS":     "https://app.example",
	})
	return baseURL
}

func wsDial(t *testing.T, baseURL string, h http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(baseURL, "http")+"/graphql",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: h})
	if conn != nil {
		t.Cleanup(func() { conn.CloseNow() })
	}
	return conn, resp, err
}

func wsSend(t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
}

// wsRead returns the next message (pings answered), or the error.
func wsRead(c *websocket.Conn, d time.Duration) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		if m["type"] == "ping" {
			c.Write(ctx, websocket.MessageText, []byte(`{"type":"pong"}`))
			continue
		}
		return m, nil
	}
}

// TestSubscriptionsEndToEnd: through the server's whole chain, a WebSocket
// from an allowed (or no) origin opens without the CSRF header, is
// authenticated by its connection_init's JWT (4401 without one), and a
// subscription to another's link is refused; a cross-site origin is refused
// before the upgrade. Event delivery is tested in graph (a Local bus).
func TestSubscriptionsEndToEnd(t *testing.T) {
	baseURL := startSubsServer(t)
	alice := signHS256(t, e2eSecret, "alice", []string{sandbox.LinkSeed}, time.Hour)

	if _, resp, err := wsDial(t, baseURL, http.Header{"Origin": {"https://evil.example"}}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site origin: %v %v", err, resp)
	}
	t.Run("no credentials", func(t *testing.T) {
		c, _, err := wsDial(t, baseURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		wsSend(t, c, map[string]any{"type": "connection_init"})
		_, err = wsRead(c, 5*time.Second)
		if code := websocket.CloseStatus(err); code != 4401 {
			t.Fatalf("close %d (%v), want 4401", code, err)
		}
	})
	t.Run("forged token", func(t *testing.T) {
		c, _, err := wsDial(t, baseURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		wsSend(t, c, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + signHS256(t, "another-secret-of-at-least-32-bytes!!!", "mallory", []string{sandbox.LinkSeed}, time.Hour)}})
		_, err = wsRead(c, 5*time.Second)
		if code := websocket.CloseStatus(err); code != 4401 {
			t.Fatalf("close %d (%v), want 4401", code, err)
		}
	})
	for _, origin := range []string{"", "https://app.example"} {
		t.Run("origin "+origin, func(t *testing.T) {
			h := http.Header{}
			if origin != "" {
				h.Set("Origin", origin)
			}
			c, _, err := wsDial(t, baseURL, h)
			if err != nil {
				t.Fatal(err)
			}
			wsSend(t, c, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + alice}})
			if m, err := wsRead(c, 5*time.Second); err != nil || m["type"] != "connection_ack" {
				t.Fatalf("%v %v", m, err)
			}
			wsSend(t, c, map[string]any{"id": "x", "type": "subscribe", "payload": map[string]any{
				"query": `subscription { linkEvents(linkId: "` + sandbox.LinkHousehold + `") { kind } }`}})
			m, err := wsRead(c, 5*time.Second)
			if err != nil || m["type"] != "error" || !strings.Contains(toJSON(m), "facade.forbidden") {
				t.Fatalf("another's link: %v %v", m, err)
			}
			wsSend(t, c, map[string]any{"id": "ok", "type": "subscribe", "payload": map[string]any{
				"query": `subscription { linkEvents(linkId: "` + sandbox.LinkSeed + `") { kind } }`}})
			m, err = wsRead(c, time.Second)
			switch {
			case err != nil && errorsIsTimeout(err):
				// accepted: no error within a second
			default:
				t.Fatalf("own link: %v %v", m, err)
			}
		})
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func errorsIsTimeout(err error) bool {
	return err == context.DeadlineExceeded || strings.Contains(err.Error(), "deadline exceeded")
}
