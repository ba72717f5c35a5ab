package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"strings"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

// bearer verifies a JWT and reads its caller.
func (a *Authenticator) bearer(ctx context.Context, token string) (*Caller, *apierr.Error) {
	switch {
	case token == "":
		return nil, unauthenticated(msgInvalid, errors.New("empty bearer token"))
	case len(token) > maxTokenBytes:
		return nil, unauthenticated(msgInvalid, errors.New("bearer token too long"))
	case a.parser == nil:
		return nil, unauthenticated(msgInvalid, errors.New("no JWT key configured"))
	}
	claims := jwt.MapClaims{}
	if _, err := a.parser.ParseWithClaims(token, claims, a.keyfunc(ctx)); err != nil {
		// The claims are only validated once the signature holds, so a
		// forged token is never told it expired.
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, unauthenticated(msgExpired, err)
		}
		return nil, unauthenticated(msgInvalid, err)
	}
	sub, err := claims.GetSubject()
	if err != nil || sub == "" {
		// Rate limits and logs know callers by sub.
		return nil, unauthenticated(msgInvalid, errors.New("token has no sub"))
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, unauthenticated(msgInvalid, errors.New("token has no exp")) // the parser requires one
	}
	// Accepted until exp and the leeway: so it expires.
	expires := exp.Add(a.leeway)
	if a.backendScope != "" && hasScope(claims, a.backendScope) {
		c := NewBackend(sub)
		c.Expires = expires
		return c, nil
	}
	ids, err := linkIDs(claims[a.linksClaim])
	if err != nil {
		return nil, unauthenticated(msgInvalid, fmt.Errorf("claim %q: %w", a.linksClaim, err))
	}
	c := NewUser(sub, ids...)
	c.Expires = expires
	return c, nil
}

// keyfunc returns the key to check a token with; a token with a crit header
// gets none. The HS256 secret is used
// for HMAC tokens only, JWKS keys for the others only; the parser's method
// list has already refused any algorithm not configured, and the signing
// method refuses a key of the wrong type (an RSA key for HS256, a secret for
// RS256), so no key serves an algorithm it was not made for.
func (a *Authenticator) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			// RFC 7515 4.1.11: a recipient must refuse a token whose crit
			// names an extension it does not understand, and this one
			// understands none (an empty or malformed crit is invalid too).
			return nil, errors.New("token header has crit: no critical extension is supported")
		}
		if _, hmac := t.Method.(*jwt.SigningMethodHMAC); hmac {
			if a.secret == nil {
				return nil, errors.New("no HS256 secret configured")
			}
			return a.secret, nil
		}
		if a.jwks == nil {
			return nil, errors.New("no JWKS configured")
		}
		if _, ok := t.Header["kid"]; !ok {
			return a.keysFor(ctx, t.Method.Alg())
		}
		return a.jwks.KeyfuncCtx(ctx)(t)
	}
}

// keysFor returns the JWKS keys that may check a token without a kid: those
// for signing whose alg, if they name one, is alg. (keyfunc would offer every
// key, encryption keys and keys pinned to another alg included.)
func (a *Authenticator) keysFor(ctx context.Context, alg string) (jwt.VerificationKeySet, error) {
	all, err := a.jwks.Storage().KeyReadAll(ctx)
	if err != nil {
		return jwt.VerificationKeySet{}, err
	}
	var set jwt.VerificationKeySet
	for _, k := range all {
		m := k.Marshal()
		if (m.USE != jwkset.UseSig && m.USE != "") || (m.ALG != "" && m.ALG.String() != alg) {
			continue
		}
		key := k.Key()
		if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
			key = pk.Public()
		}
		set.Keys = append(set.Keys, key)
	}
	if len(set.Keys) == 0 {
		return set, fmt.Errorf("no JWKS key for %s without kid", alg)
	}
	return set, nil
}

// hasScope reports whether the token's "scope" (a space-separated string,
// RFC 8693) or "scp" (an array, or a string) holds scope.
func hasScope(claims jwt.MapClaims, scope string) bool {
	for _, name := range []string{"scope", "scp"} {
		switch v := claims[name].(type) {
		case string:
			for _, s := range strings.Fields(v) {
				if s == scope {
					return true
				}
			}
		case []any:
			for _, s := range v {
				if s == any(scope) {
					return true
				}
			}
		}
	}
	return false
}

// linkIDs reads the links claim: absent or null is no links; a JSON array of
// strings or a space-separated string (the documented forms, see
// Config.LinksClaim) lists them, so a string of one id is that one id. Anything else, or more
// than MaxLinkIDs entries, makes the token invalid.
func linkIDs(v any) ([]string, error) {
	var ids []string
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		ids = strings.Fields(v)
	case []any:
		ids = make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("not an array of strings")
			}
			ids = append(ids, s)
		}
	default:
		return nil, errors.New("neither an array of strings nor a string")
	}
	if len(ids) > MaxLinkIDs {
		return nil, fmt.Errorf("more than %d link ids", MaxLinkIDs)
	}
	return ids, nil
}
