package loader_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/internal/apierr"
)

// request returns a context carrying a fresh request's loaders, and the
// function that ends the request (releasing what it holds).
func request(t *testing.T, f *loader.Factory) (context.Context, func()) {
	t.Helper()
	var ctx context.Context
	done := make(chan struct{})
	ended := make(chan struct{})
	h := f.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		ctx = r.Context()
		close(done)
		<-ended
	}))
	go h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/graphql", nil))
	<-done
	return ctx, func() { close(ended) }
}

// TestAccountsInFlightGate: large answers wait while others' large answers
// fill the gate; small ones never do; a waiter gives up with its context; a
// request already holding room never waits for more.
func TestAccountsInFlightGate(t *testing.T) {
	f := loader.NewFactory(loader.Config{Fetcher: nil, MaxAccountsInFlight: 600})

	a, endA := request(t, f)
	if err := loader.SpendAccounts(a, 500); err != nil {
		t.Fatalf("first large answer: %v", err)
	}
	// A's second large answer does not wait, though the gate is full.
	if err := loader.SpendAccounts(a, 500); err != nil {
		t.Fatalf("second large answer of the same request: %v", err)
	}

	b, endB := request(t, f)
	defer endB()
	// Small answers pass at once.
	if err := loader.SpendAccounts(b, loader.LargeAnswer-1); err != nil {
		t.Fatalf("small answer: %v", err)
	}
	// B's large answer waits for A; with a short deadline it gives up.
	short, cancel := context.WithTimeout(b, 50*time.Millisecond)
	defer cancel()
	if err := loader.SpendAccounts(short, 500); apierr.AsError(err).Code != apierr.CodeUpstreamTimeout {
		t.Fatalf("large answer while the gate is full = %v, want %s after the deadline", err, apierr.CodeUpstreamTimeout)
	}

	c, endC := request(t, f)
	defer endC()
	admitted := make(chan error, 1)
	go func() { admitted <- loader.SpendAccounts(c, 500) }()
	select {
	case err := <-admitted:
		t.Fatalf("large answer admitted while the gate was full (%v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	if held, waiting := f.Gate(); held != 500 || waiting != 1 {
		t.Errorf("Gate() = %d accounts, %d waiting; want 500 (A's first answer; its second found no room), 1", held, waiting)
	}
	endA() // A's response is written: its room is free
	select {
	case err := <-admitted:
		if err != nil {
			t.Fatalf("large answer after A ended: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("large answer still waiting after A ended")
	}
}

// TestAccountsInFlightUnbounded: a negative bound turns the gate off.
func TestAccountsInFlightUnbounded(t *testing.T) {
	f := loader.NewFactory(loader.Config{MaxAccountsInFlight: -1, MaxAccounts: 100000})
	for range 3 {
		ctx, end := request(t, f)
		defer end()
		done := make(chan error, 1)
		go func() { done <- loader.SpendAccounts(ctx, 5000) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("waited with no bound")
		}
	}
}

// TestReleaseLarge: a built answer gives its room back before the request
// ends (a slow reader holds nothing), and the request's end does not give
// it back twice.
func TestReleaseLarge(t *testing.T) {
	f := loader.NewFactory(loader.Config{MaxAccountsInFlight: 500})
	a, endA := request(t, f)
	defer endA()
	if err := loader.SpendAccounts(a, 500); err != nil {
		t.Fatal(err)
	}
	loader.ReleaseLarge(a)
	loader.ReleaseLarge(a) // idempotent
	for i := range 2 {
		b, endB := request(t, f)
		ctx, cancel := context.WithTimeout(b, time.Second)
		if err := loader.SpendAccounts(ctx, 500); err != nil {
			t.Fatalf("request %d after A's answer was built: %v", i+1, err)
		}
		cancel()
		endB()
		time.Sleep(10 * time.Millisecond) // B's middleware returns after endB
	}
}
