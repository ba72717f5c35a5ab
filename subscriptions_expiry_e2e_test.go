package main

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/edge/auth"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// startShortLeewayServer is startSubsServer with a leeway of 1 ms, so that
// tokens end at their exp.
func startShortLeewayServer(t *testing.T) string {
	t.Helper()
	baseURL, _, _ := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":        startUpstream(t, sandbox.New(sandbox.Options{})),
		"MONEYKIT_CLIENT_ID":       sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET":   sandbox.DefaultClientSecret,
		"MKGRAPH_AUTH":             "jwt",
		"MKGRAPH_JWT_HS256_SECRET": e2eSecret,
		"MKGRAPH_JWT_LEEWAY":       "1ms",
	})
	return baseURL
}

// shortToken is alice's token for the seed link, expiring 2 s from now
// (exp is in whole seconds), and its expiry.
func shortToken(t *testing.T) (string, time.Time) {
	t.Helper()
	exp := time.Now().Add(2 * time.Second).Truncate(time.Second)
	return mustSign(t, jwt.SigningMethodHS256, []byte(e2eSecret), jwt.MapClaims{
		"sub": "alice", "link_ids": []string{sandbox.LinkSeed}, "exp": exp.Unix(), "iat": time.Now().Unix(),
	}), exp
}

// TestWebSocketEndsAtTokenExpiry: a WebSocket opened with a token that
// expires is closed with 4401 shortly after its exp, its subscription
// ended with it.
func TestWebSocketEndsAtTokenExpiry(t *testing.T) {
	baseURL := startShortLeewayServer(t)
	tok, exp := shortToken(t)
	c := wsOpen(t, baseURL, tok)
	wsSubscribe(t, c, "s", `subscription { linkEvents(linkId: "`+sandbox.LinkSeed+`") { kind link { id } } }`)
	wsAccepted(t, c, "a subscription before expiry")
	m, err := wsRead(c, 5*time.Second)
	if err == nil {
		t.Fatalf("before the close: got %s", toJSON(m))
	}
	closed := time.Now()
	if code := websocket.CloseStatus(err); code != 4401 {
		t.Fatalf("closed with %d (%v), want 4401", code, err)
	}
	if closed.Before(exp) || closed.After(exp.Add(time.Second)) {
		t.Errorf("closed at %v, want shortly after exp %v", closed, exp)
	}
}

// TestSSEEndsAtTokenExpiry: an SSE subscription ends at its token's exp
// (the request timeout does not apply to it) with facade.unauthenticated,
// then complete.
func TestSSEEndsAtTokenExpiry(t *testing.T) {
	baseURL := startShortLeewayServer(t)
	tok, exp := shortToken(t)
	req, _ := http.NewRequest(http.MethodPost, baseURL+"/graphql",
		strings.NewReader(`{"query":"subscription { linkEvents(linkId: \"`+sandbox.LinkSeed+`\") { kind link { id } } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tok)
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var lines []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if l := sc.Text(); l != "" && !strings.HasPrefix(l, ":") {
				lines = append(lines, l)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end at the token's exp")
	}
	ended := time.Now()
	if len(lines) != 4 || lines[0] != "event: next" || !strings.Contains(lines[1], apierr.CodeUnauthenticated) || lines[2] != "event: complete" {
		t.Fatalf("stream: %q, want a next with %s, then complete", lines, apierr.CodeUnauthenticated)
	}
	if ended.Before(exp) || ended.After(exp.Add(time.Second)) {
		t.Errorf("ended at %v, want shortly after exp %v", ended, exp)
	}
}

// TestAuthorizeRefusesExpiredCaller: authorization refuses a caller whose
// token expired after it was authenticated, its own links included.
func TestAuthorizeRefusesExpiredCaller(t *testing.T) {
	u := auth.NewUser("alice", sandbox.LinkSeed)
	ctx := auth.NewContext(context.Background(), u)
	if err := authorize(ctx, sandbox.LinkSeed); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	u.Expires = time.Now().Add(-time.Millisecond)
	var e *apierr.Error
	if err := authorize(ctx, sandbox.LinkSeed); !errors.As(err, &e) || e.Code != apierr.CodeUnauthenticated {
		t.Errorf("after expiry: %v, want %s", err, apierr.CodeUnauthenticated)
	}
	if !callerExpires(ctx).Equal(u.Expires) || !callerExpires(context.Background()).IsZero() {
		t.Error("callerExpires: not the caller's expiry")
	}
}
