package sandbox_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/testing/clocktest"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestRefreshWebhooks(t *testing.T) {
	recv := newHookReceiver(t, nil)
	clock := clocktest.New(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	s, base := startClosing(t, sandbox.Options{Now: clock.Now, RefreshDelay: 20 * time.Millisecond, WebhookURL: recv.URL})
	recv.attach(base, clock.Now)
	reader := newClient(t, 5*time.Second, false)
	recv.onReceive = func() []byte {
		_, b, err := fetch(t.Context(), reader, base, sandbox.LinkHousehold, clientHeaders())
		if err != nil {
			return nil
		}
		return b
	}

	if res, b := postRefresh(t, base, sandbox.LinkHousehold, identityRefresh); res.StatusCode != 202 {
		t.Fatalf("refresh: %d %s", res.StatusCode, b)
	}
	got := recv.waitFor(t, 2)
	wantStates := []string{"pending", "completed"}
	keys := map[string]bool{}
	for i, h := range got {
		if h.Err != nil {
			t.Errorf("delivery %d: signature does not verify: %v", i, h.Err)
		}
		if h.Kid != s.KeyIDs()[0] {
			t.Errorf("delivery %d: kid %q, want the current key %q", i, h.Kid, s.KeyIDs()[0])
		}
		if h.Header.Get("Content-Type") != "application/json" || h.Header.Get(sandbox.HeaderDeliveryToken) == "" || h.Header.Get(sandbox.HeaderDeliveryAttempt) != "1" {
			t.Errorf("delivery %d headers %v: want application/json, a delivery token, attempt 1", i, h.Header)
		}
		var b productRefreshHook
		mustDecode(t, h.Body, &b, true)
		if !bytes.Contains(h.Body, []byte(`"error_message":null`)) {
			t.Errorf("delivery %d body %s: error_message absent, want null", i, h.Body)
		}
		if b.MajorVersion != 1 || b.MinorVersion != sandbox.WebhookMinorVersion || b.LinkID != sandbox.LinkHousehold ||
			b.Event != sandbox.EventProductRefresh || b.Product != "identity" || b.State != wantStates[i] || b.LinkTags == nil {
			t.Errorf("delivery %d body %s: want v1 %s identity %s for %s", i, h.Body, sandbox.EventProductRefresh, wantStates[i], sandbox.LinkHousehold)
		}
		for _, ts := range []string{b.Timestamp, b.StateChangedAt} {
			if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
				t.Errorf("delivery %d: timestamp %q: %v", i, ts, err)
			}
		}
		if b.IdempotencyKey == "" || keys[b.IdempotencyKey] {
			t.Errorf("delivery %d: idempotency key %q, want a new one", i, b.IdempotencyKey)
		}
		keys[b.IdempotencyKey] = true
	}
	// Completed comes once the data changed: the receiver, reading
	// identity as it gets the webhook, sees the new email.
	if !bytes.Contains(got[1].Extra, []byte("refreshed-1@example.com")) {
		t.Errorf("identity read on the completed webhook lacks refreshed-1@example.com")
	}
	if !bytes.Contains(got[0].Extra, []byte(`"link_id"`)) || bytes.Contains(got[0].Extra, []byte("refreshed-1@example.com")) {
		t.Errorf("identity read on the pending webhook already changed, or unreadable: %.200s", got[0].Extra)
	}
	waitFor(t, "the counters", func() bool { return s.WebhooksDelivered() == 2 })
	if st := s.Stats(); st.WebhooksSent != 2 || st.RefreshCalls != 1 {
		t.Errorf("Stats() = %+v, want 2 webhooks sent, 1 refresh call", st)
	}
}

func TestRefreshWebhookLinkTags(t *testing.T) {
	recv := newHookReceiver(t, nil)
	_, base := startClosing(t, sandbox.Options{RefreshDelay: time.Hour, WebhookURL: recv.URL})
	recv.attach(base, nil)
	_, idBody := getIdentity(t, base, sandbox.LinkSeed, "", clientHeaders())
	var id identityResponse
	mustDecode(t, idBody, &id, true)
	postRefresh(t, base, sandbox.LinkSeed, identityRefresh)
	got := recv.waitFor(t, 1)
	var b productRefreshHook
	mustDecode(t, got[0].Body, &b, true)
	if !slices.Equal(b.LinkTags, id.Link.LinkTags) || len(b.LinkTags) == 0 {
		t.Errorf("link_tags %v, want the link's %v", b.LinkTags, id.Link.LinkTags)
	}
}

// TestWebhookRetries: a delivery not answered 2xx is tried again, the same
// body (idempotency key) and token, a bounded number of times.
func TestWebhookRetries(t *testing.T) {
	tests := []struct {
		name          string
		status        func(n int) int
		attempts      int
		wantAttempts  int
		wantDelivered int
	}{
		{"500 twice, then 200", func(n int) int { return map[bool]int{true: 500, false: 200}[n <= 2] }, 4, 3, 1},
		{"always 503", func(int) int { return 503 }, 3, 3, 0},
		{"a redirect is not followed", func(int) int { return 307 }, 2, 2, 0},
		{"204", func(int) int { return 204 }, 4, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recv := newHookReceiver(t, tt.status)
			s, base := startClosing(t, sandbox.Options{RefreshDelay: time.Hour, WebhookURL: recv.URL, WebhookAttempts: tt.attempts, WebhookBackoff: 2 * time.Millisecond})
			recv.attach(base, nil)
			postRefresh(t, base, sandbox.LinkSeed, identityRefresh)
			got := recv.waitFor(t, tt.wantAttempts)
			waitFor(t, "the attempts to end", func() bool { return s.WebhooksSent() == tt.wantAttempts })
			time.Sleep(30 * time.Millisecond) // well past the last backoff: no more come
			if got = recv.received(); len(got) != tt.wantAttempts {
				t.Fatalf("%d attempts, want %d", len(got), tt.wantAttempts)
			}
			for i, h := range got {
				if h.Err != nil {
					t.Errorf("attempt %d: %v", i+1, h.Err)
				}
				if !bytes.Equal(h.Body, got[0].Body) || h.Header.Get(sandbox.HeaderDeliveryToken) != got[0].Header.Get(sandbox.HeaderDeliveryToken) {
					t.Errorf("attempt %d: body or delivery token differs from the first attempt's", i+1)
				}
				if a := h.Header.Get(sandbox.HeaderDeliveryAttempt); a != fmt.Sprint(i+1) {
					t.Errorf("attempt %d: %s %q", i+1, sandbox.HeaderDeliveryAttempt, a)
				}
			}
			if d := s.WebhooksDelivered(); d != tt.wantDelivered {
				t.Errorf("WebhooksDelivered() = %d, want %d", d, tt.wantDelivered)
			}
			log := s.WebhookDeliveries()
			if len(log) != tt.wantAttempts || log[len(log)-1].Attempt != tt.wantAttempts || log[0].Status != tt.status(1) {
				t.Errorf("WebhookDeliveries() = %+v", log)
			}
		})
	}
}

// TestCloseStopsBackgroundWork: Close ends a delivery waiting for its
// retry and a refresh not yet complete, promptly; goleak (TestMain) checks
// that nothing is left.
func TestCloseStopsBackgroundWork(t *testing.T) {
	recv := newHookReceiver(t, func(int) int { return 500 })
	s, base := start(t, sandbox.Options{RefreshDelay: time.Hour, WebhookURL: recv.URL, WebhookBackoff: time.Hour})
	recv.attach(base, nil)
	postRefresh(t, base, sandbox.LinkSeed, identityRefresh)
	recv.waitFor(t, 1)
	start := time.Now()
	s.Close()
	s.Close() // twice is fine
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v, want it prompt", took)
	}
	// Still answering, but nothing more happens.
	res, _ := postRefresh(t, base, sandbox.LinkHousehold, identityRefresh)
	if res.StatusCode != 202 {
		t.Errorf("refresh after Close: %d, want 202", res.StatusCode)
	}
	time.Sleep(20 * time.Millisecond)
	if n := len(recv.received()); n != 1 {
		t.Errorf("%d deliveries after Close, want the 1 before", n)
	}
	if n := s.IdentityRefreshes(sandbox.LinkSeed); n != 0 {
		t.Errorf("%d refreshes completed, want 0", n)
	}
}

// TestCloseDuringAttempt: an attempt the receiver holds is cancelled by Close.
func TestCloseDuringAttempt(t *testing.T) {
	release := make(chan struct{})
	hold := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(hold.Close)
	t.Cleanup(func() { close(release) })
	s, base := start(t, sandbox.Options{RefreshDelay: -1, WebhookURL: hold.URL})
	postRefresh(t, base, sandbox.LinkSeed, identityRefresh)
	waitFor(t, "the refresh", func() bool { return s.IdentityRefreshes(sandbox.LinkSeed) == 1 })
	start := time.Now()
	s.Close()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v with an attempt in flight, want it prompt", took)
	}
}

func TestWebhookURLMustBeAbsolute(t *testing.T) {
	for _, u := range []string{"/webhooks/moneykit", "ftp://x/y", "http://"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New with WebhookURL %q did not panic", u)
				}
			}()
			sandbox.New(sandbox.Options{WebhookURL: u})
		}()
	}
}
