package auth

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/edge/httperr"
)

// Messages of facade.unauthenticated: fixed, so that nothing a caller sent
// (least of all a token or key) is ever echoed.
const (
	msgMissing     = "Missing credentials: send Authorization: Bearer <token>."
	msgInvalid     = "Invalid token."
	msgExpired     = "Token expired."
	msgBadScheme   = "Invalid credentials: the Authorization header must be Bearer <token>."
	msgBadAPIKey   = "Invalid API key."
	msgConflicting = "Invalid credentials: send a bearer token or an API key, not both."
)

func unauthenticated(msg string, cause error) *apierr.Error {
	return &apierr.Error{Code: apierr.CodeUnauthenticated, Message: msg, Err: cause}
}

// Authenticate returns the caller of r: an anonymous caller when auth is
// off; otherwise the backend of an API key (in the APIKeyHeader) or the user
// or backend of a bearer JWT. The error is always an *apierr.Error with
// code facade.unauthenticated: credentials missing, invalid, expired, of
// another scheme, or of both kinds at once. Its Err says why, for logs; it
// never holds the token or key.
func (a *Authenticator) Authenticate(r *http.Request) (*Caller, error) {
	c, e := a.authenticate(r)
	if e != nil {
		return nil, e
	}
	return c, nil
}

func (a *Authenticator) authenticate(r *http.Request) (*Caller, *apierr.Error) {
	if a.none {
		return Anonymous(), nil
	}
	authz := r.Header.Values("Authorization")
	keys := r.Header.Values(a.keyHeader)
	switch {
	case len(authz) == 0 && len(keys) == 0:
		return nil, unauthenticated(msgMissing, errors.New("no credentials"))
	case len(authz) > 0 && len(keys) > 0:
		// Two identities in one request: refuse rather than guess whose
		// rights apply.
		return nil, unauthenticated(msgConflicting, errors.New("both a bearer token and an API key"))
	case len(keys) > 0:
		return a.apiKey(keys)
	}
	if len(authz) > 1 {
		return nil, unauthenticated(msgBadScheme, errors.New("more than one Authorization header"))
	}
	scheme, token, _ := strings.Cut(strings.TrimSpace(authz[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return nil, unauthenticated(msgBadScheme, errors.New("authorization scheme is not Bearer"))
	}
	return a.bearer(r.Context(), strings.TrimSpace(token))
}

// apiKey finds the backend whose key hashes like the one presented.
func (a *Authenticator) apiKey(vals []string) (*Caller, *apierr.Error) {
	if len(vals) != 1 || vals[0] == "" || len(vals[0]) > maxAPIKeyBytes {
		return nil, unauthenticated(msgBadAPIKey, errors.New("malformed API key header"))
	}
	name, ok := a.keys.lookup(sha256.Sum256([]byte(vals[0])))
	if !ok {
		return nil, unauthenticated(msgBadAPIKey, errors.New("unknown API key"))
	}
	return NewBackend(name), nil
}

// Middleware authenticates every request. On success the Caller is in the
// request's context (FromContext); on failure it sets
// "WWW-Authenticate: Bearer" and calls fail, which answers (the server:
// httperr.Write with 401). A nil fail answers 401 with httperr.Write.
func (a *Authenticator) Middleware(fail func(w http.ResponseWriter, r *http.Request, err *apierr.Error)) func(http.Handler) http.Handler {
	if fail == nil {
		fail = func(w http.ResponseWriter, r *http.Request, err *apierr.Error) {
			httperr.Write(w, r, http.StatusUnauthorized, err)
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, e := a.authenticate(r)
			if e != nil {
				w.Header().Set("WWW-Authenticate", "Bearer")
				fail(w, r, e)
				return
			}
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), c)))
		})
	}
}
