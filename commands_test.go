package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/internal/edge/auth"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

func TestSandboxSubcommand(t *testing.T) {
	addr, logs, _ := startRun(t, nil, "sandbox", "-addr", "127.0.0.1:0")
	if _, ok := logs.find(func(f map[string]any) bool { return f["addr"] == addr && f["client_id"] == sandbox.DefaultClientID }); !ok {
		t.Errorf("no listening line with addr and client_id; logs:\n%s", logs)
	}
	c := newClient(t)
	token := func(id, secret string) result {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/auth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return do(t, c, req)
	}
	r := token(sandbox.DefaultClientID, sandbox.DefaultClientSecret)
	if r.status != http.StatusCreated {
		t.Fatalf("POST /auth/token: HTTP %d, want 201\n%s", r.status, r.body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(r.body, &tr); err != nil || tr.AccessToken == "" {
		t.Errorf("POST /auth/token: no access_token in %s", r.body)
	}
	if r := token(sandbox.DefaultClientID, "wrong"); r.status != http.StatusUnauthorized {
		t.Errorf("POST /auth/token with a wrong secret: HTTP %d, want 401", r.status)
	}
	if strings.Contains(logs.String(), sandbox.DefaultClientSecret) {
		t.Errorf("the sandbox logged its client secret:\n%s", logs)
	}
}

func TestHashKeySubcommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"hash-key", "bff", "k3y"}, func(string) string { return "" }, &out); err != nil {
		t.Fatal(err)
	}
	if want := "bff " + auth.HashAPIKey("k3y") + "\n"; out.String() != want || strings.Contains(out.String(), "k3y") {
		t.Errorf("hash-key printed %q, want %q", out.String(), want)
	}
	if err := run(t.Context(), []string{"hash-key", "only-name"}, func(string) string { return "" }, &out); !errors.As(err, new(*configError)) {
		t.Errorf("hash-key without a key: %v, want a usage error", err)
	}
}
