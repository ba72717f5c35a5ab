package auth_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mkgraph/mkgraph/internal/edge/auth"
)

// TestCallerExpires: a JWT's caller expires at exp plus the leeway (when
// the authenticator stops accepting the token), users and backends alike;
// an API key's and the anonymous caller never do.
func TestCallerExpires(t *testing.T) {
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	const leeway = 7 * time.Second
	a := MustNew(t, auth.Config{Mode: "jwt", HS256Secret: testSecret, Leeway: leeway, BackendScope: auth.DefaultBackendScope,
		APIKeysFile: writeFile(t, "keys", []byte("bff "+auth.HashAPIKey("a-key-0123456789")+"\n"))})
	for _, claims := range []jwt.MapClaims{
		userClaims(jwt.MapClaims{"exp": exp.Unix()}),
		userClaims(jwt.MapClaims{"exp": exp.Unix(), "scope": auth.DefaultBackendScope}),
	} {
		c, err := a.Authenticate(bearerRequest(sign(t, jwt.SigningMethodHS256, testSecret, "", claims)))
		if err != nil {
			t.Fatal(err)
		}
		if want := exp.Add(leeway); !c.Expires.Equal(want) {
			t.Errorf("%s: Expires = %v, want exp+leeway %v", c.ID(), c.Expires, want)
		}
	}
	r := httptest.NewRequest("POST", "/graphql", nil)
	r.Header.Set(auth.DefaultAPIKeyHeader, "a-key-0123456789")
	c, err := a.Authenticate(r)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Expires.IsZero() || c.Expired(time.Now().Add(100*365*24*time.Hour)) {
		t.Errorf("API key caller: Expires = %v, want none", c.Expires)
	}
	if an := auth.Anonymous(); an.Expired(time.Now().Add(time.Hour)) {
		t.Error("the anonymous caller expired")
	}
}

// TestMayReadStopsAtExpiry: a caller past its expiry may read nothing, its
// own links included.
func TestMayReadStopsAtExpiry(t *testing.T) {
	u := auth.NewUser("u", "link-a")
	u.Expires = time.Now().Add(-time.Millisecond)
	if !u.Expired(time.Now()) || u.MayRead("link-a") {
		t.Errorf("expired user: Expired %v, MayRead(own) %v; want true, false", u.Expired(time.Now()), u.MayRead("link-a"))
	}
	b := auth.NewBackend("bff")
	b.Expires = time.Now().Add(-time.Millisecond)
	if b.MayRead("any") {
		t.Error("an expired backend may read a link")
	}
	u.Expires = time.Now().Add(time.Hour)
	if u.Expired(time.Now()) || !u.MayRead("link-a") {
		t.Error("a user before expiry may not read its link")
	}
	var none *auth.Caller
	if !none.Expired(time.Now()) {
		t.Error("a nil Caller is not expired")
	}
}
