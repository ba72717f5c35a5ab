package graph_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/graph"
	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/linkevents"
	"github.com/mkgraph/mkgraph/upstream/cache"
)

type expiresKey struct{}

// newExpiringSubsServer is newSubsServer's setup with credentials that
// expire ttl after they are authenticated (connection_init, or the HTTP
// request): "Bearer user" may read okLink until then, as the server's
// authorize allows.
func newExpiringSubsServer(t *testing.T, ttl time.Duration) *subsServer {
	t.Helper()
	s := &subsServer{bus: linkevents.NewLocal(), fetcher: &countingFetcher{}}
	c, err := cache.New(cache.Config{Next: s.fetcher.GetIdentity, Namespace: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	loaders := loader.NewFactory(loader.Config{Fetcher: c})
	authed := func(ctx context.Context, h http.Header) (context.Context, bool) {
		if h.Get("Authorization") != "Bearer user" {
			return ctx, false
		}
		return context.WithValue(context.WithValue(ctx, callerKey{}, "Bearer user"), expiresKey{}, time.Now().Add(ttl)), true
	}
	expires := func(ctx context.Context) time.Time { exp, _ := ctx.Value(expiresKey{}).(time.Time); return exp }
	s.subs = graph.NewSubscriptions(graph.SubscriptionConfig{
		Authenticate: func(ctx context.Context, h http.Header) (context.Context, error) {
			if ctx, ok := authed(ctx, h); ok {
				return ctx, nil
			}
			return ctx, &apierr.Error{Code: apierr.CodeUnauthenticated, Message: "Invalid token."}
		},
	})
	h := graph.NewHandler(graph.HandlerConfig{
		Authorize: func(ctx context.Context, id string) error {
			if exp := expires(ctx); !exp.IsZero() && !time.Now().Before(exp) {
				return &apierr.Error{Code: apierr.CodeUnauthenticated, Message: "Token expired."}
			}
			if ctx.Value(callerKey{}) == "Bearer user" && id == okLink {
				return nil
			}
			return &apierr.Error{Code: apierr.CodeForbidden, Message: "You may not read this link."}
		},
		Expires:       expires,
		Loaders:       loaders,
		Subscriptions: s.subs,
		Events:        s.bus,
	})
	log := zerolog.Nop()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, _ := authed(log.WithContext(r.Context()), r.Header)
		loaders.Middleware(graph.StreamContext(h)).ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(hs.Close)
	t.Cleanup(s.subs.Shutdown)
	s.url = hs.URL
	return s
}

// TestWebSocketClosedAtTokenExpiry: a WebSocket delivers events until the
// token that opened it expires, is then closed with 4401, and an event
// published after that is not delivered.
func TestWebSocketClosedAtTokenExpiry(t *testing.T) {
	const ttl = 700 * time.Millisecond
	s := newExpiringSubsServer(t, ttl)
	opened := time.Now()
	c := s.connect(t, map[string]any{"Authorization": "Bearer user"}, true)
	c.subscribe("1", eventQuery, okLink)
	s.waitSubscribers(t, 1)
	s.bus.Publish(context.Background(), refreshEvent)
	if m := c.read(); m.Type != "next" || !strings.Contains(string(m.Payload), `"institutionName":"Chase"`) {
		t.Fatalf("event before expiry: %s %s", m.Type, m.Payload)
	}

	m, err := c.tryRead(5 * time.Second)
	closed := time.Since(opened)
	if err == nil {
		t.Fatalf("got %s %s, want the socket closed at expiry", m.Type, m.Payload)
	}
	if code := websocket.CloseStatus(err); code != 4401 {
		t.Fatalf("closed with %d (%v), want 4401", code, err)
	}
	if closed < ttl || closed > ttl+time.Second {
		t.Errorf("closed %v after opening, want shortly after the token's %v", closed, ttl)
	}
	s.waitSubscribers(t, 0) // the subscription ended with the socket
	if err := s.bus.Publish(context.Background(), refreshEvent); err != nil {
		t.Fatal(err)
	}
	if m, err := c.tryRead(200 * time.Millisecond); err == nil {
		t.Errorf("after expiry: got %s %s", m.Type, m.Payload)
	}
}

// TestSSEStreamEndsAtTokenExpiry: an SSE stream outlives the request
// timeout but not its token: it ends at expiry with facade.unauthenticated
// and complete, and no event after that is delivered.
func TestSSEStreamEndsAtTokenExpiry(t *testing.T) {
	const ttl = 700 * time.Millisecond
	s := newExpiringSubsServer(t, ttl)
	opened := time.Now()
	resp, lines := s.sse(t, context.Background(), "Bearer user", okLink)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	s.waitSubscribers(t, 1)
	s.bus.Publish(context.Background(), refreshEvent)
	if l := nextLine(t, lines); l != "event: next" {
		t.Fatalf("got %q", l)
	}
	if l := nextLine(t, lines); !strings.Contains(l, `"institutionName":"Chase"`) {
		t.Fatalf("event before expiry: %q", l)
	}
	got := []string{nextLine(t, lines), nextLine(t, lines), nextLine(t, lines), nextLine(t, lines)}
	ended := time.Since(opened)
	if got[0] != "event: next" || !strings.Contains(got[1], apierr.CodeUnauthenticated) || strings.Contains(got[1], "Chase") ||
		got[2] != "event: complete" || got[3] != "data:" {
		t.Fatalf("at expiry: %q, want a last next with %s, then complete", got, apierr.CodeUnauthenticated)
	}
	if ended < ttl || ended > ttl+time.Second {
		t.Errorf("ended %v after opening, want shortly after the token's %v", ended, ttl)
	}
	s.waitSubscribers(t, 0)
	s.bus.Publish(context.Background(), refreshEvent)
	if l := nextLine(t, lines); l != "EOF" {
		t.Errorf("after expiry: %q, want the stream ended", l)
	}
}

// TestSubscribeRefusedOnceExpired: Authorize refuses a caller whose token
// has expired: a subscription opened after expiry over SSE gets
// facade.unauthenticated (a WebSocket is closed by then).
func TestSubscribeRefusedOnceExpired(t *testing.T) {
	s := newExpiringSubsServer(t, -time.Second) // expired when it arrives
	_, lines := s.sse(t, context.Background(), "Bearer user", okLink)
	got := []string{nextLine(t, lines), nextLine(t, lines), nextLine(t, lines)}
	if got[0] != "event: next" || !strings.Contains(got[1], apierr.CodeUnauthenticated) || got[2] != "event: complete" {
		t.Fatalf("got %q", got)
	}
}
