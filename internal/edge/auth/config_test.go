package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mkgraph/mkgraph/internal/edge/auth"
)

func TestNewConfigErrors(t *testing.T) {
	secret := "short-secret-never-echoed"
	tests := []struct {
		name    string
		cfg     auth.Config
		want    []string // substrings of the error
		notWant string
	}{
		{"mode unset", auth.Config{HS256Secret: testSecret}, []string{"MKGRAPH_AUTH"}, ""},
		{"mode unknown", auth.Config{Mode: "basic", HS256Secret: testSecret}, []string{"MKGRAPH_AUTH"}, ""},
		{"jwt without credentials", auth.Config{Mode: "jwt"}, []string{"MKGRAPH_JWT_HS256_SECRET", "MKGRAPH_JWT_JWKS_URL", "MKGRAPH_JWT_JWKS_FILE", "MKGRAPH_API_KEYS_FILE"}, ""},
		{"short secret", auth.Config{Mode: "jwt", HS256Secret: []byte(secret)}, []string{"MKGRAPH_JWT_HS256_SECRET", "32"}, secret},
		{"missing JWKS file", auth.Config{Mode: "jwt", JWKSFile: filepath.Join(t.TempDir(), "nope.json")}, []string{"MKGRAPH_JWT_JWKS_FILE"}, ""},
		{"JWKS URL over http", auth.Config{Mode: "jwt", JWKSURL: "http://issuer.example/jwks.json"}, []string{"MKGRAPH_JWT_JWKS_URL", "https"}, ""},
		{"JWKS URL relative", auth.Config{Mode: "jwt", JWKSURL: "/jwks.json"}, []string{"MKGRAPH_JWT_JWKS_URL"}, ""},
		{"JWKS URL unparsable", auth.Config{Mode: "jwt", JWKSURL: "https://[::1"}, []string{"MKGRAPH_JWT_JWKS_URL"}, ""},
		{"JWKS URL other scheme", auth.Config{Mode: "jwt", JWKSURL: "file:///etc/jwks.json"}, []string{"MKGRAPH_JWT_JWKS_URL"}, ""},
		{"missing keys file", auth.Config{Mode: "jwt", APIKeysFile: filepath.Join(t.TempDir(), "nope")}, []string{"MKGRAPH_API_KEYS_FILE"}, ""},
		{"negative leeway", auth.Config{Mode: "jwt", HS256Secret: testSecret, Leeway: -time.Second}, []string{"MKGRAPH_JWT_LEEWAY"}, ""},
		{"huge leeway", auth.Config{Mode: "jwt", HS256Secret: testSecret, Leeway: time.Hour}, []string{"MKGRAPH_JWT_LEEWAY"}, ""},
		{"links claim sub", auth.Config{Mode: "jwt", HS256Secret: testSecret, LinksClaim: "sub"}, []string{"MKGRAPH_JWT_LINKS_CLAIM"}, ""},
		{"links claim scope", auth.Config{Mode: "jwt", HS256Secret: testSecret, LinksClaim: "scope"}, []string{"MKGRAPH_JWT_LINKS_CLAIM"}, ""},
		{"backend scope with spaces", auth.Config{Mode: "jwt", HS256Secret: testSecret, BackendScope: "a b"}, []string{"MKGRAPH_JWT_BACKEND_SCOPE"}, ""},
		{"API key header Authorization", auth.Config{Mode: "jwt", HS256Secret: testSecret, APIKeyHeader: "authorization"}, []string{"APIKeyHeader"}, ""},
		{"API key header invalid", auth.Config{Mode: "jwt", HS256Secret: testSecret, APIKeyHeader: "X Api Key"}, []string{"APIKeyHeader"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := auth.New(context.Background(), tt.cfg)
			if err == nil {
				a.Close()
				t.Fatal("New succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New error %q does not mention %q", err, w)
				}
			}
			if tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("New error %q echoes a secret", err)
			}
		})
	}
}

func TestNewAccepts(t *testing.T) {
	for name, cfg := range map[string]auth.Config{
		"JWT upper case":        {Mode: " JWT ", HS256Secret: testSecret},
		"secret of 32 bytes":    {Mode: "jwt", HS256Secret: testSecret[:32]},
		"none ignores the rest": {Mode: "none", HS256Secret: []byte("short"), JWKSFile: "/nonexistent", APIKeysFile: "/nonexistent", JWKSURL: "http://evil.example", Leeway: -1},
	} {
		t.Run(name, func(t *testing.T) {
			MustNew(t, cfg)
		})
	}
}

func TestModeNone(t *testing.T) {
	a := MustNew(t, auth.Config{Mode: "none"})
	forged := sign(t, jwt.SigningMethodHS256, []byte("whatever-whatever-whatever-whatev"), "", userClaims(nil))
	for name, h := range map[string]http.Header{
		"no credentials": {},
		"forged token":   {"Authorization": {"Bearer " + forged}},
		"bad scheme":     {"Authorization": {"Basic Zm9vOmJhcg=="}},
		"bad API key":    {"X-Api-Key": {"nope"}},
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/query", nil)
			r.Header = h
			c, err := a.Authenticate(r)
			checkCaller(t, c, err, wantCaller{kind: auth.KindAnonymous, may: []string{"link-a", "link-z"}})
			if got := c.ID(); got != "anonymous" {
				t.Errorf("ID() = %q, want anonymous", got)
			}
		})
	}
}
