package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mkgraph/mkgraph/internal/edge/auth"
)

func TestAPIKeys(t *testing.T) {
	keysFile := writeFile(t, "keys", []byte(strings.Join([]string{
		"# backends allowed to read any link",
		"",
		"bff-web " + auth.HashAPIKey("web-key-0123456789"),
		"   bff-mobile   " + strings.ToUpper(auth.HashAPIKey("mobile-key-0123456789")) + "   # rotated 2026-11",
		"\t",
	}, "\n")))
	a := MustNew(t, auth.Config{Mode: "jwt", APIKeysFile: keysFile, HS256Secret: testSecret})
	custom := MustNew(t, auth.Config{Mode: "jwt", APIKeysFile: keysFile, APIKeyHeader: "x-backend-key"})
	noKeys := MustNew(t, auth.Config{Mode: "jwt", HS256Secret: testSecret})
	tok := sign(t, jwt.SigningMethodHS256, testSecret, "", userClaims(nil))

	tests := []struct {
		name    string
		a       *auth.Authenticator
		header  http.Header
		want    wantCaller
		wantErr string
	}{
		{name: "first key", a: a, header: http.Header{"X-Api-Key": {"web-key-0123456789"}}, want: backend("bff-web")},
		{name: "second key, upper-case hash", a: a, header: http.Header{"X-Api-Key": {"mobile-key-0123456789"}}, want: backend("bff-mobile")},
		{name: "unlisted key", a: a, header: http.Header{"X-Api-Key": {"web-key-012345678"}}, wantErr: msgBadAPIKey},
		{name: "the hash itself", a: a, header: http.Header{"X-Api-Key": {auth.HashAPIKey("web-key-0123456789")}}, wantErr: msgBadAPIKey},
		{name: "the name", a: a, header: http.Header{"X-Api-Key": {"bff-web"}}, wantErr: msgBadAPIKey},
		{name: "empty key", a: a, header: http.Header{"X-Api-Key": {""}}, wantErr: msgBadAPIKey},
		{name: "two keys", a: a, header: http.Header{"X-Api-Key": {"web-key-0123456789", "web-key-0123456789"}}, wantErr: msgBadAPIKey},
		{name: "key too long", a: a, header: http.Header{"X-Api-Key": {strings.Repeat("k", 600)}}, wantErr: msgBadAPIKey},
		{name: "key and bearer token", a: a, header: http.Header{"X-Api-Key": {"web-key-0123456789"}, "Authorization": {"Bearer " + tok}}, wantErr: msgConflicting},
		{name: "bad key, good token", a: a, header: http.Header{"X-Api-Key": {"nope"}, "Authorization": {"Bearer " + tok}}, wantErr: msgConflicting},
		{name: "bearer token alone", a: a, header: http.Header{"Authorization": {"Bearer " + tok}}, want: user1},
		{name: "custom header", a: custom, header: http.Header{"X-Backend-Key": {"web-key-0123456789"}}, want: backend("bff-web")},
		{name: "custom header: default header unknown", a: custom, header: http.Header{"X-Api-Key": {"web-key-0123456789"}}, wantErr: msgMissing},
		{name: "no keys file", a: noKeys, header: http.Header{"X-Api-Key": {"web-key-0123456789"}}, wantErr: msgBadAPIKey},
		{name: "keys only: bearer token", a: custom, header: http.Header{"Authorization": {"Bearer " + tok}}, wantErr: msgInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/query", nil)
			r.Header = tt.header
			c, err := tt.a.Authenticate(r)
			checkOutcome(t, c, err, tt.want, tt.wantErr, tt.header.Get("X-Api-Key"))
		})
	}
}

func TestHashAPIKey(t *testing.T) {
	// FIPS 180-2 test vector.
	if got, want := auth.HashAPIKey("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("HashAPIKey(%q) = %q, want %q", "abc", got, want)
	}
}

func TestAPIKeysFileErrors(t *testing.T) {
	h := auth.HashAPIKey("some-key")
	tests := []struct {
		name    string
		content string
		leak    string // must not appear in the error
	}{
		{"empty", "", ""},
		{"comments only", "# nothing\n\n", ""},
		{"raw key instead of hash", "bff super-secret-raw-key\n", "super-secret-raw-key"},
		{"hash not hex", "bff " + strings.Repeat("zz", 32) + "\n", "zzzz"},
		{"name only", "bff\n", ""},
		{"extra field", "bff " + h + " extra\n", h},
		{"duplicate name", "bff " + h + "\nbff " + auth.HashAPIKey("other") + "\n", h},
		{"duplicate key", "bff " + h + "\nops " + h + "\n", h},
		{"bad name", "b/f\x01f " + h + "\n", h},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.New(context.Background(), auth.Config{Mode: "jwt", APIKeysFile: writeFile(t, "keys", []byte(tt.content))})
			if err == nil {
				t.Fatal("New accepted the keys file")
			}
			if !strings.Contains(err.Error(), "MKGRAPH_API_KEYS_FILE") {
				t.Errorf("New error %q does not name MKGRAPH_API_KEYS_FILE", err)
			}
			if tt.leak != "" && strings.Contains(err.Error(), tt.leak) {
				t.Errorf("New error %q echoes the file's content", err)
			}
		})
	}
}
