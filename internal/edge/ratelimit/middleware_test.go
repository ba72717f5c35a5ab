package ratelimit_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/edge/ratelimit"
)

// limiterFunc adapts a function to ratelimit.Limiter.
type limiterFunc func(ctx context.Context, key string) (time.Duration, bool, error)

func (f limiterFunc) Allow(ctx context.Context, key string) (time.Duration, bool, error) {
	return f(ctx, key)
}

// byHeader keys requests by X-Caller, as the auth middleware's caller id would.
func byHeader(r *http.Request) string { return r.Header.Get("X-Caller") }

// serve sends one request for caller through Middleware(l) and reports
// whether the next handler ran.
func serve(t *testing.T, l ratelimit.Limiter, caller string) (*httptest.ResponseRecorder, bool) {
	t.Helper()
	var called bool
	h := ratelimit.Middleware(l, byHeader)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called = true
		w.Write([]byte(`{"data":{}}`))
	}))
	r := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(`{"query":"{__typename}"}`))
	if caller != "" {
		r.Header.Set("X-Caller", caller)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w, called
}

type errorDoc struct {
	Data   any `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

func TestMiddlewareRefusal(t *testing.T) {
	tests := []struct {
		retryAfter  time.Duration
		wantSeconds int
		wantMessage string
	}{
		{1500 * time.Millisecond, 2, "try again in 2 seconds"},
		{time.Second, 1, "try again in 1 second."},
		{time.Millisecond, 1, "try again in 1 second."},
		{0, 1, "try again in 1 second."}, // a Limiter that does not know: never "come back in 0 s"
		{90 * time.Second, 90, "try again in 90 seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.retryAfter.String(), func(t *testing.T) {
			refusedBefore := ratelimit.Refused()
			l := limiterFunc(func(ctx context.Context, key string) (time.Duration, bool, error) {
				return tt.retryAfter, false, nil
			})
			w, called := serve(t, l, "user-1")
			if called {
				t.Fatal("next ran for a refused request")
			}
			if w.Code != http.StatusTooManyRequests {
				t.Fatalf("status = %d, want 429", w.Code)
			}
			if got, want := w.Header().Get("Retry-After"), strconv.Itoa(tt.wantSeconds); got != want {
				t.Errorf("Retry-After = %q, want %q", got, want)
			}
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			var doc errorDoc
			if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if len(doc.Errors) != 1 || doc.Data != nil {
				t.Fatalf("body %q: want one error and null data", w.Body)
			}
			e := doc.Errors[0]
			if got := e.Extensions["code"]; got != apierr.CodeCallerRateLimited {
				t.Errorf("extensions.code = %v, want %s", got, apierr.CodeCallerRateLimited)
			}
			if got := e.Extensions["retryAfter"]; got != float64(tt.wantSeconds) {
				t.Errorf("extensions.retryAfter = %v, want %d", got, tt.wantSeconds)
			}
			if !strings.Contains(e.Message, tt.wantMessage) {
				t.Errorf("message = %q, want it to contain %q", e.Message, tt.wantMessage)
			}
			if got := ratelimit.Refused() - refusedBefore; got != 1 {
				t.Errorf("Refused() grew by %d, want 1", got)
			}
		})
	}
}

func TestMiddlewarePassThrough(t *testing.T) {
	tests := []struct {
		name       string
		caller     string
		allow      bool
		err        error
		wantCalls  int // Limiter calls
		wantErrors int64
	}{
		{name: "allowed", caller: "user-1", allow: true, wantCalls: 1},
		{name: "no key: not limited", caller: "", allow: false, wantCalls: 0},
		{name: "limiter error: fail open", caller: "user-1", err: errors.New("redis: connection refused"), wantCalls: 1, wantErrors: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errorsBefore := ratelimit.Errors()
			calls := 0
			l := limiterFunc(func(ctx context.Context, key string) (time.Duration, bool, error) {
				calls++
				if key != tt.caller {
					t.Errorf("Allow key = %q, want %q", key, tt.caller)
				}
				return time.Second, tt.allow, tt.err
			})
			w, called := serve(t, l, tt.caller)
			if !called || w.Code != http.StatusOK {
				t.Fatalf("next ran = %v, status = %d; want the request through", called, w.Code)
			}
			if w.Header().Get("Retry-After") != "" {
				t.Errorf("Retry-After = %q on a request let through", w.Header().Get("Retry-After"))
			}
			if calls != tt.wantCalls {
				t.Errorf("Limiter called %d times, want %d", calls, tt.wantCalls)
			}
			if got := ratelimit.Errors() - errorsBefore; got != tt.wantErrors {
				t.Errorf("Errors() grew by %d, want %d", got, tt.wantErrors)
			}
		})
	}
}

// TestMiddlewareMemory runs the real in-memory limiter behind the
// middleware: a burst per caller, then 429 with Retry-After, other callers
// unaffected.
func TestMiddlewareMemory(t *testing.T) {
	m := ratelimit.NewMemory(60, 2)
	for i, tt := range []struct {
		caller   string
		wantCode int
	}{
		{"alice", 200},
		{"alice", 200},
		{"alice", 429},
		{"bob", 200},
		{"", 200},
		{"", 200},
		{"", 200},
		{"bob", 200},
		{"bob", 429},
		{"alice", 429},
	} {
		w, _ := serve(t, m, tt.caller)
		if w.Code != tt.wantCode {
			t.Fatalf("request %d by %q: status %d, want %d", i, tt.caller, w.Code, tt.wantCode)
		}
		if tt.wantCode == 429 && w.Header().Get("Retry-After") != "1" {
			t.Errorf("request %d: Retry-After = %q, want 1", i, w.Header().Get("Retry-After"))
		}
	}
}

func TestMiddlewareConcurrent(t *testing.T) {
	const burst, workers, perWorker = 50, 16, 50
	h := ratelimit.Middleware(ratelimit.NewMemory(1, burst), byHeader)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range perWorker {
				r := httptest.NewRequest(http.MethodPost, "/graphql", nil)
				r.Header.Set("X-Caller", "shared")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				mu.Lock()
				codes[w.Code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if codes[200] != burst || codes[429] != workers*perWorker-burst || len(codes) != 2 {
		t.Errorf("statuses = %v, want %d × 200 and %d × 429", codes, burst, workers*perWorker-burst)
	}
}
