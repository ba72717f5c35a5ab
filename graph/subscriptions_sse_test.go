package graph_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

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
