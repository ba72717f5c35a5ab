package upstream_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestGetIdentityConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := MustNewClient(t, "http://"+addr, upstream.Config{})
	_, err = c.GetIdentity(t.Context(), "mk_test")
	e := MustAsError(t, err)
	want := apierr.Error{Code: apierr.CodeUpstreamUnavailable, Message: msgUnavailable}
	if diff := cmp.Diff(want, errorFields(e)); diff != "" {
		t.Errorf("GetIdentity(ctx, %q) error mismatch (-want +got):\n%s", "mk_test", diff)
	}
	if !e.Temporary() {
		t.Errorf("GetIdentity(ctx, %q): Temporary() = false, want true", "mk_test")
	}
}

func TestGetIdentityTimeout(t *testing.T) {
	f := newFakeUpstream(t, fakeOptions{identity: func(w http.ResponseWriter, r *http.Request, n int) { blockUntilGone(w, r) }})
	c := MustNewClient(t, f.URL, upstream.Config{Timeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := c.GetIdentity(t.Context(), "mk_test")
	e := MustAsError(t, err)
	want := apierr.Error{Code: apierr.CodeUpstreamTimeout, Message: msgTimeout}
	if diff := cmp.Diff(want, errorFields(e)); diff != "" {
		t.Errorf("GetIdentity(ctx, %q) error mismatch (-want +got):\n%s", "mk_test", diff)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("GetIdentity(ctx, %q) took %v with Timeout 100ms", "mk_test", elapsed)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GetIdentity(ctx, %q): %v, want it to wrap context.DeadlineExceeded", "mk_test", err)
	}
}

// TestGetIdentityTimeoutWhileReadingBody: headers arrive, the body never ends.
func TestGetIdentityTimeoutWhileReadingBody(t *testing.T) {
	f := newFakeUpstream(t, fakeOptions{identity: func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(`{"accounts":[`))
		w.(http.Flusher).Flush()
		blockUntilGone(w, r)
	}})
	c := MustNewClient(t, f.URL, upstream.Config{Timeout: 100 * time.Millisecond})
	_, err := c.GetIdentity(t.Context(), "mk_test")
	if e := MustAsError(t, err); e.Code != apierr.CodeUpstreamTimeout {
		t.Errorf("GetIdentity(ctx, %q): %v, want %s", "mk_test", err, apierr.CodeUpstreamTimeout)
	}
}

func TestGetIdentityCallerCancelled(t *testing.T) {
	started := make(chan struct{}, 1)
	f := newFakeUpstream(t, fakeOptions{identity: func(w http.ResponseWriter, r *http.Request, n int) {
		started <- struct{}{}
		blockUntilGone(w, r)
	}})
	c := MustNewClient(t, f.URL, upstream.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-started
		cancel()
	}()
	start := time.Now()
	_, err := c.GetIdentity(ctx, "mk_test")
	e := MustAsError(t, err)
	want := apierr.Error{Code: apierr.CodeUpstreamTimeout, Message: msgTimeout}
	if diff := cmp.Diff(want, errorFields(e)); diff != "" {
		t.Errorf("GetIdentity(cancelled ctx, %q) error mismatch (-want +got):\n%s", "mk_test", diff)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("GetIdentity(cancelled ctx, %q): %v, want it to wrap context.Canceled", "mk_test", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("GetIdentity(cancelled ctx, %q) took %v", "mk_test", elapsed)
	}
}

func TestGetIdentityCallerDeadline(t *testing.T) {
	f := newFakeUpstream(t, fakeOptions{identity: func(w http.ResponseWriter, r *http.Request, n int) { blockUntilGone(w, r) }})
	c := MustNewClient(t, f.URL, upstream.Config{Timeout: time.Minute})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := c.GetIdentity(ctx, "mk_test")
	if e := MustAsError(t, err); e.Code != apierr.CodeUpstreamTimeout || e.Status != 0 {
		t.Errorf("GetIdentity(ctx with deadline, %q): %v, want %s", "mk_test", err, apierr.CodeUpstreamTimeout)
	}
}

func TestGetIdentityPreCancelledContext(t *testing.T) {
	_, srv := MustSandbox(t, sandbox.Options{})
	c := MustNewClient(t, srv.URL, upstream.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.GetIdentity(ctx, sandbox.LinkSeed)
	if e := MustAsError(t, err); e.Code != apierr.CodeUpstreamTimeout || !errors.Is(err, context.Canceled) {
		t.Errorf("GetIdentity(cancelled ctx, %q): %v, want %s wrapping context.Canceled", sandbox.LinkSeed, err, apierr.CodeUpstreamTimeout)
	}
}
