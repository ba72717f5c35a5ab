package main

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// signHS256 makes an end-user token for the test secret.
func signHS256(t *testing.T, secret, sub string, links []string, ttl time.Duration) string {
	t.Helper()
	return mustSign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{
		"sub": sub, "link_ids": links, "exp": time.Now().Add(ttl).Unix(), "iat": time.Now().Unix(),
	})
}

// TestAuthEndToEnd: end users read their own links and nothing else, with no
// upstream call for another's; backends read any link; a missing or bad
// credential is a 401. Two users whose link sets differ read concurrently
// and never see each other's data.
func TestAuthEndToEnd(t *testing.T) {
	const secret = "an-hs256-secret-of-at-least-32-bytes!!"
	sbx := sandbox.New(sandbox.Options{})
	keys := writeAPIKeys(t, "bff", "bff-key-value")
	baseURL, logs, _ := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":                startUpstream(t, sbx),
		"MONEYKIT_CLIENT_ID":               sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET":           sandbox.DefaultClientSecret,
		"MKGRAPH_AUTH":                     "jwt",
		"MKGRAPH_JWT_HS256_SECRET":         secret,
		"MKGRAPH_API_KEYS_FILE":            keys,
		"MKGRAPH_IDENTITY_BUDGET_PER_LINK": "0",
		"MKGRAPH_IDENTITY_BUDGET_PER_APP":  "0",
		"MKGRAPH_USER_RATE_LIMIT":          "100000",
	})
	c := newClient(t)
	alice := signHS256(t, secret, "alice", []string{sandbox.LinkSeed}, time.Hour)
	bob := signHS256(t, secret, "bob", []string{sandbox.LinkHousehold}, time.Hour)
	query := func(header, value, id string) gqlResponse {
		t.Helper()
		r := postGraphQL(t, c, baseURL, gqlRequest{Query: `{ link(id: "` + id + `") { id accounts { owners { names } } } }`}, header, value)
		return decodeGQL(t, r)
	}

	if g := query("Authorization", "Bearer "+alice, sandbox.LinkSeed); len(g.Errors) > 0 || !bytes.Contains(g.Data, []byte("John Smith")) {
		t.Errorf("alice reading her link: %s %+v", g.Data, g.Errors)
	}
	before := sbx.IdentityCallsFor(sandbox.LinkHousehold)
	if g := query("Authorization", "Bearer "+alice, sandbox.LinkHousehold); len(g.Errors) != 1 || g.Errors[0].Extensions["code"] != "facade.forbidden" {
		t.Errorf("alice reading bob's link: %s %+v, want facade.forbidden", g.Data, g.Errors)
	}
	if sbx.IdentityCallsFor(sandbox.LinkHousehold) != before {
		t.Errorf("a forbidden read reached the upstream")
	}
	if g := query("X-Api-Key", "bff-key-value", sandbox.LinkHousehold); len(g.Errors) > 0 {
		t.Errorf("backend reading any link: %+v", g.Errors)
	}
	for _, tc := range []struct{ header, value string }{
		{"", ""},
		{"Authorization", "Bearer not-a-jwt"},
		{"Authorization", "Bearer " + signHS256(t, "another-secret-another-secret-another!!", "eve", []string{sandbox.LinkSeed}, time.Hour)},
		{"Authorization", "Bearer " + signHS256(t, secret, "alice", []string{sandbox.LinkSeed}, -time.Hour)},
		{"X-Api-Key", "wrong-key"},
	} {
		var header []string
		if tc.header != "" {
			header = []string{tc.header, tc.value}
		}
		r := postGraphQL(t, c, baseURL, gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id } }`}, header...)
		if g := decodeGQL(t, r); r.status != http.StatusUnauthorized || len(g.Errors) != 1 || g.Errors[0].Extensions["code"] != "facade.unauthenticated" {
			t.Errorf("%s %.20q: HTTP %d %s, want 401 facade.unauthenticated", tc.header, tc.value, r.status, r.body)
		}
	}

	// Concurrent readers with different link sets see only their own data.
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			tok, own, other, name := alice, sandbox.LinkSeed, sandbox.LinkHousehold, "John Smith"
			if i%2 == 1 {
				tok, own, other, name = bob, sandbox.LinkHousehold, sandbox.LinkSeed, "Alice M. Rivera"
			}
			r := postGraphQL(t, c, baseURL, gqlRequest{Query: `{ mine: link(id: "` + own + `") { accounts { owners { names } } }
				theirs: link(id: "` + other + `") { accounts { owners { names } } } }`}, "Authorization", "Bearer "+tok)
			g := decodeGQL(t, r)
			if !bytes.Contains(g.Data, []byte(name)) || !bytes.Contains(g.Data, []byte(`"theirs":null`)) || len(g.Errors) != 1 {
				t.Errorf("reader %d: %s %+v", i, g.Data, g.Errors)
			}
			if strings.Contains(string(g.Data), map[bool]string{true: "John Smith", false: "Alice M. Rivera"}[i%2 == 1]) {
				t.Errorf("reader %d saw the other user's data: %s", i, g.Data)
			}
		})
	}
	wg.Wait()
	for _, secretValue := range []string{secret, "bff-key-value", alice, bob} {
		if strings.Contains(logs.String(), secretValue) {
			t.Errorf("a credential reached the log")
		}
	}
}

// TestCallerRateLimit: each end user has a request budget of its own; past it
// the answer is HTTP 429 with a retryAfter, and other users are unaffected.
func TestCallerRateLimit(t *testing.T) {
	const secret = "an-hs256-secret-of-at-least-32-bytes!!"
	baseURL, _, _ := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":        startUpstream(t, sandbox.New(sandbox.Options{})),
		"MONEYKIT_CLIENT_ID":       sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET":   sandbox.DefaultClientSecret,
		"MKGRAPH_AUTH":             "jwt",
		"MKGRAPH_JWT_HS256_SECRET": secret,
		"MKGRAPH_USER_RATE_LIMIT":  "6", // burst 1
	})
	c := newClient(t)
	q := gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id } }`}
	alice := "Bearer " + signHS256(t, secret, "alice", []string{sandbox.LinkSeed}, time.Hour)
	bob := "Bearer " + signHS256(t, secret, "bob", []string{sandbox.LinkSeed}, time.Hour)
	if r := postGraphQL(t, c, baseURL, q, "Authorization", alice); r.status != http.StatusOK {
		t.Fatalf("first request: HTTP %d %s", r.status, r.body)
	}
	r := postGraphQL(t, c, baseURL, q, "Authorization", alice)
	g := decodeGQL(t, r)
	if r.status != http.StatusTooManyRequests || len(g.Errors) != 1 || g.Errors[0].Extensions["code"] != "facade.rate_limit_exceeded" ||
		g.Errors[0].Extensions["retryAfter"] == nil || r.header.Get("Retry-After") == "" {
		t.Errorf("second request at once: HTTP %d %s (Retry-After %q), want 429 facade.rate_limit_exceeded with retryAfter", r.status, r.body, r.header.Get("Retry-After"))
	}
	if r := postGraphQL(t, c, baseURL, q, "Authorization", bob); r.status != http.StatusOK {
		t.Errorf("another user: HTTP %d, want 200 (budgets are per caller)", r.status)
	}
}

// TestProductionMode: one setting turns introspection, GraphiQL and field
// suggestions off, requires auth and refuses the sandbox; each can still be
// set on its own.
func TestProductionMode(t *testing.T) {
	if _, err := runOnce(nil, map[string]string{"MKGRAPH_ENV": "production", "MKGRAPH_ADDR": "127.0.0.1:0"}); !errors.As(err, new(*configError)) {
		t.Errorf("production with the embedded sandbox: %v, want a configuration error", err)
	}
	const secret = "an-hs256-secret-of-at-least-32-bytes!!"
	env := map[string]string{
		"MKGRAPH_ENV":              "production",
		"MONEYKIT_BASE_URL":        startUpstream(t, sandbox.New(sandbox.Options{})),
		"MONEYKIT_CLIENT_ID":       sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET":   sandbox.DefaultClientSecret,
		"MKGRAPH_JWT_HS256_SECRET": secret,
	}
	if _, err := runOnce(nil, merge(env, map[string]string{"MKGRAPH_ADDR": "127.0.0.1:0", "MKGRAPH_AUTH": "none"})); !errors.As(err, new(*configError)) {
		t.Errorf("production with MKGRAPH_AUTH=none: %v, want a configuration error", err)
	}
	if _, err := runOnce(nil, merge(env, map[string]string{"MKGRAPH_ADDR": "127.0.0.1:0", "MKGRAPH_JWT_HS256_SECRET": ""})); !errors.As(err, new(*configError)) {
		t.Errorf("production without any auth key: %v, want a configuration error", err)
	}
	baseURL, logs, _ := startServer(t, env)
	c := newClient(t)
	tok := "Bearer " + signHS256(t, secret, "alice", []string{sandbox.LinkSeed}, time.Hour)
	if r := postGraphQL(t, c, baseURL, gqlRequest{Query: `{ link(id: "` + sandbox.LinkSeed + `") { id } }`}); r.status != http.StatusUnauthorized {
		t.Errorf("no credentials in production: HTTP %d, want 401", r.status)
	}
	r := postGraphQL(t, c, baseURL, gqlRequest{Query: `{ __schema { types { name } } }`}, "Authorization", tok)
	if g := decodeGQL(t, r); len(g.Errors) == 0 || bytes.Contains(r.body, []byte(`"types"`)) {
		t.Errorf("introspection in production: %s, want refused", r.body)
	}
	r = postGraphQL(t, c, baseURL, gqlRequest{Query: `{ link(id: "x") { institutionNam } }`}, "Authorization", tok)
	if bytes.Contains(r.body, []byte("Did you mean")) {
		t.Errorf("field suggestion in production: %s", r.body)
	}
	if r := get(t, c, baseURL+"/"); r.status != http.StatusNotFound {
		t.Errorf("GraphiQL in production: HTTP %d, want 404", r.status)
	}
	if !strings.Contains(logs.String(), `"MKGRAPH_ENV":"production"`) || strings.Contains(logs.String(), secret) {
		t.Errorf("start-up log should print the effective settings without secrets")
	}

	// Each can be set on its own.
	baseURL, _, _ = startServer(t, merge(env, map[string]string{"MKGRAPH_INTROSPECTION": "true"}))
	r = postGraphQL(t, c, baseURL, gqlRequest{Query: `{ __schema { queryType { name } } }`}, "Authorization", tok)
	if g := decodeGQL(t, r); len(g.Errors) > 0 {
		t.Errorf("introspection switched on in production: %s", r.body)
	}
}
