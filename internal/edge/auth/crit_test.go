package auth_test

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mkgraph/mkgraph/internal/edge/auth"
)

// signWithHeader returns a JWT of claims signed with key, with extra header
// parameters.
func signWithHeader(tb testing.TB, m jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	tb.Helper()
	t := jwt.NewWithClaims(m, claims)
	for k, v := range header {
		t.Header[k] = v
	}
	s, err := t.SignedString(key)
	if err != nil {
		tb.Fatalf("SignedString: %v", err)
	}
	return s
}

// TestCritHeader: RFC 7515 section 4.1.11: a token whose crit names an
// extension the verifier does not understand must be refused, however
// well signed; the facade understands none, so any crit (even empty or
// malformed) is facade.unauthenticated. Without crit the same token passes.
func TestCritHeader(t *testing.T) {
	file := writeFile(t, "jwks.json", jwksJSON(t, jwk{kid: "a", key: &rsaA().PublicKey}))
	a := MustNew(t, auth.Config{Mode: "jwt", HS256Secret: testSecret, JWKSFile: file})
	for name, crit := range map[string]any{
		"unknown extension":        []string{"http://example.com/UNDEFINED"},
		"unknown, parameter given": []string{"exp"},
		"b64 (RFC 7797)":           []string{"b64"},
		"empty list":               []string{},
		"not a list":               "http://example.com/UNDEFINED",
		"null":                     nil,
	} {
		header := map[string]any{"crit": crit, "http://example.com/UNDEFINED": true, "exp": 1363284000, "b64": true}
		for alg, token := range map[string]string{
			"HS256": signWithHeader(t, jwt.SigningMethodHS256, testSecret, header, userClaims(nil)),
			"RS256": signWithHeader(t, jwt.SigningMethodRS256, rsaA(), map[string]any{"kid": "a", "crit": crit, "b64": true}, userClaims(nil)),
		} {
			t.Run(name+"/"+alg, func(t *testing.T) {
				c, err := a.Authenticate(bearerRequest(token))
				checkOutcome(t, c, err, wantCaller{}, msgInvalid, token)
			})
		}
	}
	for alg, token := range map[string]string{
		"HS256": signWithHeader(t, jwt.SigningMethodHS256, testSecret, map[string]any{"x-extra": "ignored"}, userClaims(nil)),
		"RS256": signWithHeader(t, jwt.SigningMethodRS256, rsaA(), map[string]any{"kid": "a"}, userClaims(nil)),
	} {
		t.Run("no crit/"+alg, func(t *testing.T) {
			c, err := a.Authenticate(bearerRequest(token))
			checkOutcome(t, c, err, user1, "", token)
		})
	}
}

// TestLinksClaimString: the documented forms of the links claim are a JSON
// array of strings and a space-separated string; a string holding one id is
// a list of that one id, not a refusal, and not a prefix match.
func TestLinksClaimString(t *testing.T) {
	a := MustNew(t, auth.Config{Mode: "jwt", HS256Secret: testSecret})
	for name, tt := range map[string]struct {
		claim any
		want  wantCaller
	}{
		"one id as a string":   {"link-a", wantCaller{kind: auth.KindUser, subject: "user-1", may: []string{"link-a"}, mayNot: []string{"link-b", "link", "link-a ", ""}}},
		"one id in an array":   {[]string{"link-a"}, wantCaller{kind: auth.KindUser, subject: "user-1", may: []string{"link-a"}, mayNot: []string{"link-b", ""}}},
		"space-separated":      {"link-a link-b", user1},
		"tabs and newlines":    {"link-a\tlink-b\n", user1},
		"comma is not a space": {"link-a,link-b", wantCaller{kind: auth.KindUser, subject: "user-1", may: []string{"link-a,link-b"}, mayNot: []string{"link-a", "link-b"}}},
	} {
		t.Run(name, func(t *testing.T) {
			token := sign(t, jwt.SigningMethodHS256, testSecret, "", userClaims(jwt.MapClaims{"link_ids": tt.claim}))
			c, err := a.Authenticate(bearerRequest(token))
			checkOutcome(t, c, err, tt.want, "", token)
		})
	}
}
