package upstream_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestGetIdentityRequestHeaders(t *testing.T) {
	f := newFakeUpstream(t, fakeOptions{})
	c := MustNewClient(t, f.URL, upstream.Config{ClientID: "client-1", ClientSecret: "secret-1"})
	for range 3 {
		if _, err := c.GetIdentity(t.Context(), "mk_test"); err != nil {
			t.Fatalf("GetIdentity(ctx, %q): %v, want nil", "mk_test", err)
		}
	}
	want := map[string]string{
		"Authorization":    "Bearer tok-1",
		"X-Client-Id":      "client-1",
		"X-Client-Secret":  "secret-1",
		"Moneykit-Version": "2023-02-18",
		"Accept":           "application/json",
	}
	n := 0
	for _, r := range f.Requests() {
		if r.EscapedPath == "/auth/token" {
			continue
		}
		n++
		got := make(map[string]string, len(want))
		for k := range want {
			got[k] = r.Header.Get(k)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("identity request %d headers mismatch (-want +got):\n%s", n, diff)
		}
		if r.Method != http.MethodGet || r.RawQuery != "" {
			t.Errorf("identity request %d: %s with query %q, want GET without query (no account_ids)", n, r.Method, r.RawQuery)
		}
	}
	if n != 3 {
		t.Errorf("saw %d identity requests, want 3", n)
	}
	if upstream.Version != "2023-02-18" {
		t.Errorf("Version = %q, want 2023-02-18", upstream.Version)
	}
}

func TestNew(t *testing.T) {
	valid := upstream.Config{BaseURL: "https://api.moneykit.com", ClientID: "id", ClientSecret: "secret"}
	with := func(f func(*upstream.Config)) upstream.Config {
		c := valid
		f(&c)
		return c
	}
	bad := map[string]upstream.Config{
		"ftp scheme":         with(func(c *upstream.Config) { c.BaseURL = "ftp://x" }),
		"not a url":          with(func(c *upstream.Config) { c.BaseURL = "not a url" }),
		"no host":            with(func(c *upstream.Config) { c.BaseURL = "http://" }),
		"query":              with(func(c *upstream.Config) { c.BaseURL = "https://api.moneykit.com/?env=sandbox" }),
		"fragment":           with(func(c *upstream.Config) { c.BaseURL = "https://api.moneykit.com/#x" }),
		"empty":              with(func(c *upstream.Config) { c.BaseURL = "" }),
		"scheme-relative":    with(func(c *upstream.Config) { c.BaseURL = "//api.moneykit.com" }),
		"unparseable":        with(func(c *upstream.Config) { c.BaseURL = "http://[::1" }),
		"mailto":             with(func(c *upstream.Config) { c.BaseURL = "mailto:a@example.com" }),
		"missing client id":  with(func(c *upstream.Config) { c.ClientID = "" }),
		"missing secret":     with(func(c *upstream.Config) { c.ClientSecret = "" }),
		"missing both creds": with(func(c *upstream.Config) { c.ClientID, c.ClientSecret = "", "" }),
	}
	for name, cfg := range bad {
		if c, err := upstream.New(cfg); err == nil || c != nil {
			t.Errorf("New(%s: %+v) = %v, %v; want nil, an error", name, cfg, c, err)
		}
	}
	for _, base := range []string{"https://api.moneykit.com", "https://api.moneykit.com/", "http://127.0.0.1:8080", "HTTPS://api.moneykit.com", "http://localhost:9/prefix/"} {
		cfg := with(func(c *upstream.Config) { c.BaseURL = base })
		if c, err := upstream.New(cfg); err != nil || c == nil {
			t.Errorf("New(BaseURL %q) = %v, %v; want a client, nil", base, c, err)
		}
	}
}

func TestNewErrorHidesSecret(t *testing.T) {
	_, err := upstream.New(upstream.Config{BaseURL: "ftp://x", ClientID: "id", ClientSecret: "hunter2"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("New(bad base URL): %v, want an error without the secret", err)
	}
}

// TestNewBaseURLEmptyQuery: "https://host/?" has an empty query that
// url.URL keeps (ForceQuery), so every path would land in the query string.
func TestNewBaseURLEmptyQuery(t *testing.T) {
	f := newFakeUpstream(t, fakeOptions{})
	c, err := upstream.New(upstream.Config{BaseURL: f.URL + "/?", ClientID: "id", ClientSecret: "secret", HTTPClient: newHTTPClient(t)})
	if err != nil {
		return // refused: fine
	}
	c.GetIdentity(t.Context(), "mk_test")
	for _, r := range f.Requests() {
		if r.EscapedPath != "/auth/token" && r.EscapedPath != "/links/mk_test/identity" || r.RawQuery != "" {
			t.Errorf("New(BaseURL %q) accepted, then requested %s %s?%s; want New to refuse the URL", f.URL+"/?", r.Method, r.EscapedPath, r.RawQuery)
		}
	}
}

// TestBaseURLWithPath: a base URL with a path prefix keeps it for every call.
func TestBaseURLWithPath(t *testing.T) {
	sb := sandbox.New(sandbox.Options{})
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.EscapedPath())
		mu.Unlock()
		http.StripPrefix("/mk", sb).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c := MustNewClient(t, srv.URL+"/mk/", upstream.Config{})
	if _, err := c.GetIdentity(t.Context(), "a/b"); MustAsError(t, err).Code != "link_error.not_found" {
		t.Errorf("GetIdentity(ctx, %q): %v, want link_error.not_found", "a/b", err)
	}
	if _, err := c.GetIdentity(t.Context(), sandbox.LinkSeed); err != nil {
		t.Errorf("GetIdentity(ctx, %q): %v, want nil", sandbox.LinkSeed, err)
	}
	want := []string{"/mk/auth/token", "/mk/links/a%2Fb/identity", "/mk/links/" + sandbox.LinkSeed + "/identity"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("requested paths mismatch (-want +got):\n%s", diff)
	}
}

// TestRedirectKeepsCredentials: MoneyKit never redirects; a redirect (a
// misconfigured proxy, a hijacked DNS name) must not carry the client secret
// or the token to another host. net/http forwards custom headers such as
// X-Client-Secret to any redirect target, and re-POSTs a form on a 307.
func TestRedirectKeepsCredentials(t *testing.T) {
	var mu sync.Mutex
	var leaked []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		leaked = append(leaked, r.URL.Path)
		for _, v := range []string{r.Header.Get("X-Client-Secret"), r.Header.Get("Authorization"), r.PostForm.Get("client_secret")} {
			if v != "" {
				leaked = append(leaked, r.URL.Path+": "+v)
			}
		}
		mu.Unlock()
		writeJSON(w, http.StatusOK, minimalIdentity)
	}))
	t.Cleanup(other.Close)

	for _, tt := range []struct {
		name            string
		identity, token func(http.ResponseWriter, *http.Request, int)
		wantStatus      int
	}{
		{name: "identity 302", wantStatus: http.StatusFound, identity: func(w http.ResponseWriter, r *http.Request, n int) {
			http.Redirect(w, r, other.URL+"/links/mk_test/identity", http.StatusFound)
		}},
		{name: "identity 308", wantStatus: http.StatusPermanentRedirect, identity: func(w http.ResponseWriter, r *http.Request, n int) {
			http.Redirect(w, r, other.URL+"/links/mk_test/identity", http.StatusPermanentRedirect)
		}},
		{name: "token 307", wantStatus: http.StatusTemporaryRedirect, token: func(w http.ResponseWriter, r *http.Request, n int) {
			http.Redirect(w, r, other.URL+"/auth/token", http.StatusTemporaryRedirect)
		}},
	} {
		for _, own := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/own HTTPClient %v", tt.name, own), func(t *testing.T) {
				f := newFakeUpstream(t, fakeOptions{identity: tt.identity, token: tt.token})
				cfg := upstream.Config{BaseURL: f.URL, ClientID: "id", ClientSecret: "the-secret"}
				if own {
					cfg.HTTPClient = newHTTPClient(t) // no CheckRedirect of its own
				}
				c, err := upstream.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				if own && cfg.HTTPClient.CheckRedirect != nil {
					t.Errorf("New changed the caller's http.Client: CheckRedirect set")
				}
				_, err = c.GetIdentity(t.Context(), "mk_test")
				if err == nil {
					t.Fatalf("GetIdentity(ctx, %q) after a redirect: nil error, want %s", "mk_test", apierr.CodeUpstreamBadResponse)
				}
				if e := MustAsError(t, err); e.Code != apierr.CodeUpstreamBadResponse || e.Status != tt.wantStatus {
					t.Errorf("GetIdentity(ctx, %q) after a redirect: %v, want %s (HTTP %d)", "mk_test", err, apierr.CodeUpstreamBadResponse, tt.wantStatus)
				}
				mu.Lock()
				defer mu.Unlock()
				if len(leaked) > 0 {
					t.Errorf("the redirect target was called: %q", leaked)
					leaked = nil
				}
			})
		}
	}
}

// TestCallerCheckRedirectKept: a caller that sets CheckRedirect decides.
func TestCallerCheckRedirectKept(t *testing.T) {
	var called atomic.Bool
	f := newFakeUpstream(t, fakeOptions{identity: func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			http.Redirect(w, r, "/links/mk_test/identity", http.StatusFound)
			return
		}
		writeJSON(w, http.StatusOK, minimalIdentity)
	}})
	hc := newHTTPClient(t)
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { called.Store(true); return nil }
	c := MustNewClient(t, f.URL, upstream.Config{HTTPClient: hc})
	if _, err := c.GetIdentity(t.Context(), "mk_test"); err != nil || !called.Load() {
		t.Errorf("GetIdentity(ctx, %q) with the caller's CheckRedirect: %v (CheckRedirect called: %v), want nil, true", "mk_test", err, called.Load())
	}
}
