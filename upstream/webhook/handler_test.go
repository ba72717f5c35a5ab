package webhook_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream/webhook"
)

func TestValidDeliveryAcceptedOnce(t *testing.T) {
	f := newFixture(t)
	body := eventBody("idem-1", nil)
	expect(t, f.deliver(body), http.StatusOK, wantAccepted)

	want := []webhook.Event{{
		LinkID: testLinkID, Kind: webhook.ProductRefresh, Product: "identity", State: "completed",
		RefreshState: webhook.RefreshCompleted, OccurredAt: time.Date(2024, 5, 1, 11, 59, 57, 0, time.UTC),
		IdempotencyKey: "idem-1", RawEvent: "link.product_refresh", LinkTags: []string{"customer"},
	}}
	if diff := cmp.Diff(want, f.applied()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if got := f.allVerdicts(); !cmp.Equal(got, []string{webhook.VerdictAccepted}) {
		t.Errorf("verdicts = %v", got)
	}
	hs := f.jwks.requestHeaders()
	if len(hs) != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", len(hs))
	}
	if got := hs[0].Get("X-Client-Id"); got != testClientID {
		t.Errorf("JWKS request X-Client-Id = %q, want %q", got, testClientID)
	}
	if got := hs[0].Get("Authorization"); got != "" {
		t.Errorf("JWKS request carries Authorization %q, want none", got)
	}
}

func TestRepeatedKeyAppliedOnce(t *testing.T) {
	f := newFixture(t)
	body := eventBody("idem-repeat", nil)
	for i := range 3 {
		f.clock.Advance(time.Minute) // MoneyKit signs each attempt anew
		expect(t, f.deliver(body), http.StatusOK, wantAccepted)
		if i == 0 {
			f.clock.Advance(2 * time.Hour) // retries go on for 2 hours
		}
	}
	if n := len(f.applied()); n != 1 {
		t.Errorf("applied %d times, want 1", n)
	}
	want := []string{webhook.VerdictAccepted, webhook.VerdictDuplicate, webhook.VerdictDuplicate}
	if got := f.allVerdicts(); !cmp.Equal(got, want) {
		t.Errorf("verdicts = %v, want %v", got, want)
	}
	// Past DefaultDedupeTTL the key is forgotten (MoneyKit stopped retrying long before).
	f.clock.Advance(webhook.DefaultDedupeTTL)
	expect(t, f.deliver(body), http.StatusOK, wantAccepted)
	if n := len(f.applied()); n != 2 {
		t.Errorf("applied %d times after the dedupe TTL, want 2", n)
	}
}

func TestConcurrentDuplicatesAppliedOnce(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	f.setOnEvent(func(context.Context, webhook.Event) error { <-release; return nil })
	body := eventBody("idem-concurrent", nil)
	sig := f.signed(body)
	const n = 20
	recs := make([]*httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { recs[i] = f.post(body, sig) })
	}
	time.Sleep(50 * time.Millisecond) // let them all reach the store
	close(release)
	wg.Wait()
	for _, rec := range recs {
		expect(t, rec, http.StatusOK, wantAccepted)
	}
	if got := len(f.applied()); got != 1 {
		t.Errorf("applied %d times, want 1", got)
	}
	accepted := 0
	for _, v := range f.allVerdicts() {
		if v == webhook.VerdictAccepted {
			accepted++
		}
	}
	if accepted != 1 {
		t.Errorf("verdicts %v: %d accepted, want 1 (the rest duplicate)", f.allVerdicts(), accepted)
	}
}

func TestConcurrentDuplicateAppliesWhenTheFirstFails(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	calls := 0
	started := make(chan struct{})
	release := make(chan struct{})
	f.setOnEvent(func(context.Context, webhook.Event) error {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			close(started)
			<-release
			return errors.New("cache unavailable")
		}
		return nil
	})
	body := eventBody("idem-first-fails", nil)
	sig := f.signed(body)
	var first, second *httptest.ResponseRecorder
	var wg sync.WaitGroup
	wg.Go(func() { first = f.post(body, sig) })
	<-started
	wg.Go(func() { second = f.post(body, sig) })
	time.Sleep(30 * time.Millisecond) // the second waits on the busy key
	close(release)
	wg.Wait()
	expect(t, first, http.StatusServiceUnavailable, wantUnavailable)
	expect(t, second, http.StatusOK, wantAccepted)
	if n := len(f.applied()); n != 1 {
		t.Errorf("applied %d times, want 1", n)
	}
}

func TestBusyKeyTimesOut(t *testing.T) {
	f := newFixture(t, func(c *webhook.Config) { c.BusyWait = 50 * time.Millisecond })
	release := make(chan struct{})
	started := make(chan struct{})
	f.setOnEvent(func(context.Context, webhook.Event) error { close(started); <-release; return nil })
	body := eventBody("idem-slow", nil)
	sig := f.signed(body)
	var wg sync.WaitGroup
	var first *httptest.ResponseRecorder
	wg.Go(func() { first = f.post(body, sig) })
	<-started
	expect(t, f.post(body, sig), http.StatusServiceUnavailable, wantUnavailable)
	if v := f.lastVerdict(); v != webhook.VerdictBusy {
		t.Errorf("verdict = %q, want %q", v, webhook.VerdictBusy)
	}
	close(release)
	wg.Wait()
	expect(t, first, http.StatusOK, wantAccepted)
}

func TestOnEventFailureIsRetried(t *testing.T) {
	for _, failure := range []string{"error", "panic"} {
		t.Run(failure, func(t *testing.T) {
			f := newFixture(t)
			fail := true
			f.setOnEvent(func(context.Context, webhook.Event) error {
				if fail {
					if failure == "panic" {
						panic("boom")
					}
					return errors.New("redis down")
				}
				return nil
			})
			body := eventBody("idem-retry", nil)
			expect(t, f.deliver(body), http.StatusServiceUnavailable, wantUnavailable)
			if v := f.lastVerdict(); v != webhook.VerdictApplyFailed {
				t.Errorf("verdict = %q, want %q", v, webhook.VerdictApplyFailed)
			}
			if n := f.store.Len(); n != 0 {
				t.Errorf("the store holds %d keys after a failed apply, want none", n)
			}
			f.setOnEvent(nil)
			f.clock.Advance(time.Minute)
			expect(t, f.deliver(body), http.StatusOK, wantAccepted)
			expect(t, f.deliver(body), http.StatusOK, wantAccepted)
			if n := len(f.applied()); n != 1 {
				t.Errorf("applied %d times, want 1", n)
			}
		})
	}
}

func TestOnEventContextOutlivesTheRequest(t *testing.T) {
	f := newFixture(t, func(c *webhook.Config) { c.ApplyTimeout = time.Second })
	var deadline time.Time
	var hasDeadline bool
	var ctxErr error
	f.setOnEvent(func(ctx context.Context, _ webhook.Event) error {
		deadline, hasDeadline = ctx.Deadline()
		ctxErr = ctx.Err()
		return nil
	})
	body := eventBody("idem-ctx", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // MoneyKit hung up
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, webhook.Path, bytes.NewReader(body))
	req.Header.Set(webhook.SignatureHeader, f.signed(body))
	// The keys are fetched with a context detached from the request too.
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	expect(t, rec, http.StatusOK, wantAccepted)
	if ctxErr != nil || !hasDeadline || time.Until(deadline) > time.Second {
		t.Errorf("OnEvent context: err %v, deadline %v (%v): want live, within ApplyTimeout", ctxErr, deadline, hasDeadline)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []webhook.Config{
		{ClientID: "c"},
		{BaseURL: "api.moneykit.com", ClientID: "c"},
		{BaseURL: "ftp://api.moneykit.com", ClientID: "c"},
		{BaseURL: "https://api.moneykit.com"},
	} {
		if _, err := webhook.New(cfg); err == nil {
			t.Errorf("New(%+v) = nil error", cfg)
		}
	}
	if _, err := webhook.New(webhook.Config{BaseURL: "https://api.moneykit.com/", ClientID: "c"}); err != nil {
		t.Errorf("New: %v", err)
	}
}
