package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// TestAdminReadyz: the admin listener answers /readyz exactly as the main
// one: ready while serving, 503 naming the reason while MoneyKit refuses
// the credentials.
func TestAdminReadyz(t *testing.T) {
	baseURL, logs, _ := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":      startUpstream(t, sandbox.New(sandbox.Options{})),
		"MONEYKIT_CLIENT_ID":     sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET": "wrong-secret-value",
		"MKGRAPH_ADMIN_ADDR":     "127.0.0.1:0",
	})
	adminURL := "http://" + adminAddrOf(t, logs)
	c := newClient(t)
	get := func(url string) result {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		return do(t, c, req)
	}
	for _, u := range []string{baseURL, adminURL} {
		if r := get(u + "/readyz"); r.status != http.StatusOK || string(r.body) != "ready\n" {
			t.Fatalf("%s/readyz before any call: %d %q, want 200 ready", u, r.status, r.body)
		}
	}
	postGraphQL(t, c, baseURL, gqlRequest{Query: seedQuery})
	main, admin := get(baseURL+"/readyz"), get(adminURL+"/readyz")
	if admin.status != http.StatusServiceUnavailable || !strings.Contains(string(admin.body), "api_error.auth.unauthorized") || strings.Contains(string(admin.body), "wrong-secret") {
		t.Errorf("admin /readyz with refused credentials: %d %q, want 503 naming api_error.auth.unauthorized", admin.status, admin.body)
	}
	if main.status != admin.status || string(main.body) != string(admin.body) {
		t.Errorf("main /readyz %d %q, admin %d %q: want the same", main.status, main.body, admin.status, admin.body)
	}
	if r := get(adminURL + "/healthz"); r.status != http.StatusOK {
		t.Errorf("admin /healthz: %d", r.status)
	}
}
