package sandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestRouting(t *testing.T) {
	tests := []struct {
		name, method, path string
		countedFor         string // link id the call must be counted for, if any
		status             int
		code               string
	}{
		{"escaped slashes stay in the id", http.MethodGet, "/links/mk%2F..%2Fauth%2Ftoken/identity", "mk/../auth/token", 404, "link_error.not_found"},
		{"escaped magic id", http.MethodGet, "/links/mk_sandbox_error_%34%31%30/identity", sandbox.LinkDeleted, 410, "link_error.deleted"},
		{"post to identity", http.MethodPost, "/links/" + sandbox.LinkSeed + "/identity", sandbox.LinkSeed, 405, "api_error.method_not_allowed"},
		{"unknown path", http.MethodGet, "/links/" + sandbox.LinkSeed, "", 404, "api_error.not_found"},
		{"extra segment", http.MethodGet, "/links/a/b/identity", "", 404, "api_error.not_found"},
		{"empty id", http.MethodGet, "/links//identity", "", 404, "api_error.not_found"},
		{"trailing slash", http.MethodGet, "/links/" + sandbox.LinkSeed + "/identity/", "", 404, "api_error.not_found"},
		{"root", http.MethodGet, "/", "", 404, "api_error.not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, base := start(t, sandbox.Options{})
			res, body := do(t, tt.method, base+tt.path, clientHeaders(), nil)
			checkError(t, res, body, tt.status, tt.code)
			wantCalls := 0
			if tt.countedFor != "" {
				wantCalls = 1
				if got := s.IdentityCallsFor(tt.countedFor); got != 1 {
					t.Errorf("IdentityCallsFor(%q) = %d, want 1", tt.countedFor, got)
				}
			}
			if s.IdentityCalls() != wantCalls || s.TokenCalls() != 0 {
				t.Errorf("IdentityCalls() = %d, TokenCalls() = %d, want %d and 0", s.IdentityCalls(), s.TokenCalls(), wantCalls)
			}
		})
	}
}

func TestCountersAndReset(t *testing.T) {
	s, base := start(t, sandbox.Options{})
	mustToken(t, base)
	getIdentity(t, base, sandbox.LinkSeed, "", clientHeaders())
	getIdentity(t, base, sandbox.LinkSeed, "", nil) // 401: still counted
	getIdentity(t, base, sandbox.LinkRateLimited, "", clientHeaders())
	getIdentity(t, base, "mk_unknown", "x=1", clientHeaders())

	check := func(tokens, total, seed, unknown int) {
		t.Helper()
		got := []int{s.TokenCalls(), s.IdentityCalls(), s.IdentityCallsFor(sandbox.LinkSeed), s.IdentityCallsFor("mk_unknown")}
		if diff := cmp.Diff([]int{tokens, total, seed, unknown}, got); diff != "" {
			t.Errorf("[TokenCalls IdentityCalls seed unknown] mismatch (-want +got):\n%s", diff)
		}
	}
	check(1, 4, 2, 1)
	if q := s.LastIdentityQuery("mk_unknown"); q.Get("x") != "1" {
		t.Errorf("LastIdentityQuery = %v, want x=1", q)
	}
	s.LastIdentityQuery("mk_unknown").Set("x", "2") // a copy: must not change the record
	if q := s.LastIdentityQuery("mk_unknown"); q.Get("x") != "1" {
		t.Errorf("LastIdentityQuery after mutating a copy = %v, want x=1", q)
	}

	s.Reset()
	check(0, 0, 0, 0)
	if q := s.LastIdentityQuery("mk_unknown"); q != nil {
		t.Errorf("LastIdentityQuery after Reset = %v, want nil", q)
	}
}

func TestLatency(t *testing.T) {
	const latency = 50 * time.Millisecond
	s, base := start(t, sandbox.Options{Latency: latency})
	begin := time.Now()
	res, _ := getIdentity(t, base, sandbox.LinkSeed, "", clientHeaders())
	if took := time.Since(begin); res.StatusCode != http.StatusOK || took < latency {
		t.Errorf("status %d after %v, want 200 after at least %v", res.StatusCode, took, latency)
	}

	s.SetLatency(0)
	begin = time.Now()
	getIdentity(t, base, sandbox.LinkSeed, "", clientHeaders())
	if took := time.Since(begin); took >= time.Second {
		t.Errorf("call after SetLatency(0) took %v", took)
	}
}

func TestLatencyCancellable(t *testing.T) {
	s := sandbox.New(sandbox.Options{Latency: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, identityURL("", sandbox.LinkSeed, ""), nil)
	done := make(chan struct{})
	go func() {
		s.ServeHTTP(httptest.NewRecorder(), req)
		close(done)
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ServeHTTP still waiting 5s after the request was cancelled")
	}
	if s.IdentityCallsFor(sandbox.LinkSeed) != 1 {
		t.Errorf("cancelled call not counted")
	}

	// Through a real client: the caller's deadline ends the call.
	_, base := start(t, sandbox.Options{Latency: time.Hour})
	ctx, cancel = context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, identityURL(base, sandbox.LinkSeed, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = clientHeaders()
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Do = %v, want context.DeadlineExceeded", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	// Straight through ServeHTTP: t.Fatal, which the HTTP helpers may call,
	// must not run outside the test goroutine.
	s := sandbox.New(sandbox.Options{})
	// The magic fault ids hang, reset or take seconds; TestFaultsConcurrentUse covers faults.
	var links []sandbox.LinkInfo
	for _, l := range sandbox.Links() {
		if !l.Fault {
			links = append(links, l)
		}
	}
	const workers, calls = 8, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodPost, "/auth/token", strings.NewReader(defaultForm().Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			var tok tokenResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil {
				t.Errorf("token answer %q: %v", rec.Body, err)
			}
			for i := range calls {
				l := links[(w+i)%len(links)]
				req := httptest.NewRequest(http.MethodGet, identityURL("", l.ID, "account_ids=acc_large_0001"), nil)
				req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, req)
				if rec.Code != l.Status {
					t.Errorf("%s: status %d, want %d", l.ID, rec.Code, l.Status)
				}
				if i == calls/2 {
					s.SetLatency(time.Millisecond)
				}
				s.LastIdentityQuery(l.ID)
			}
		})
	}
	wg.Wait()
	if s.IdentityCalls() != workers*calls || s.TokenCalls() != workers {
		t.Errorf("IdentityCalls() = %d, TokenCalls() = %d, want %d and %d", s.IdentityCalls(), s.TokenCalls(), workers*calls, workers)
	}
}
