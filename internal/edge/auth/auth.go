package auth

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/edge/httperr"
)

// Defaults of Config.
const (
	DefaultLinksClaim   = "link_ids"
	DefaultLeeway       = 30 * time.Second
	DefaultBackendScope = "mkgraph:backend" // the scope suggested in docs; backends by JWT are off unless a scope is set
	DefaultAPIKeyHeader = "X-Api-Key"
)

// Bounds on what a caller may send.
const (
	// MaxLinkIDs is the most link ids a token's links claim may list; a
	// token with more is invalid.
	MaxLinkIDs = 1000
	// maxTokenBytes bounds a bearer token before it is parsed: room for
	// MaxLinkIDs ids of some 40 bytes, base64-encoded, and a signature.
	maxTokenBytes = 64 << 10
	// maxLeeway keeps the clock skew "small": a larger one would keep
	// expired tokens alive.
	maxLeeway = 5 * time.Minute
)

// hmacMethods and jwksMethods are the algorithms accepted for the HS256
// secret and for JWKS keys. Everything else, "none" first, is refused before
// a key is looked up.
var (
	hmacMethods = []string{"HS256"}
	jwksMethods = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "PS256"}
)

// reservedClaims may not serve as the links claim: a token that carries them
// means something else by them.
var reservedClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true,
	"scope": true, "scp": true,
}

// Config says how to authenticate callers. The comments name the
// environment settings that fill each field.
type Config struct {
	Mode         string        // MKGRAPH_AUTH: "jwt" (verify credentials) or "none" (every request is an anonymous caller that may read any link)
	HS256Secret  []byte        // MKGRAPH_JWT_HS256_SECRET: at least 32 bytes
	JWKSURL      string        // MKGRAPH_JWT_JWKS_URL: https (or http to a loopback host); fetched at start, refreshed hourly and on an unknown kid (at most every 5 minutes)
	JWKSFile     string        // MKGRAPH_JWT_JWKS_FILE: public keys only
	Issuer       string        // MKGRAPH_JWT_ISSUER: when set, iss must match
	Audience     string        // MKGRAPH_JWT_AUDIENCE: when set, aud must contain it
	LinksClaim   string        // MKGRAPH_JWT_LINKS_CLAIM, default "link_ids": a JSON array of strings, or a space-separated string
	Leeway       time.Duration // MKGRAPH_JWT_LEEWAY: clock skew for exp/nbf/iat; 0 means the default, 30s; at most 5m
	BackendScope string        // MKGRAPH_JWT_BACKEND_SCOPE: a JWT whose "scope" (space-separated) or "scp" (array) holds it is a backend; "" (the default): no JWT is a backend
	APIKeysFile  string        // MKGRAPH_API_KEYS_FILE: lines "name sha256hex" (see HashAPIKey); # comments and blank lines allowed
	APIKeyHeader string        // header of the API key; default "X-Api-Key"
	HTTPClient   *http.Client  // for the JWKS URL; nil: a client with a 10 s timeout

	// For tests: how the JWKS URL is refreshed (zero: hourly, and at most
	// every 5 minutes on an unknown kid).
	refreshInterval time.Duration
	unknownKIDEvery time.Duration
}

// Authenticator decides who is calling. It is safe for concurrent use.
type Authenticator struct {
	none bool // MKGRAPH_AUTH=none

	parser       *jwt.Parser     // nil when no JWT key is configured
	secret       []byte          // HS256; nil when not configured
	jwks         keyfunc.Keyfunc // nil when neither JWKS URL nor file is configured
	linksClaim   string
	backendScope string

	keys      keySet
	keyHeader string

	closeOnce sync.Once
	cancel    context.CancelFunc
}

// New checks cfg, loads the JWKS and API keys files, fetches the JWKS URL
// and starts refreshing it until ctx ends or Close is called. Errors name
// the MKGRAPH_* setting at fault and never hold a secret.
func New(ctx context.Context, cfg Config) (_ *Authenticator, err error) {
	switch strings.ToLower(strings.TrimSpace(cfg.Mode)) {
	case "none":
		return &Authenticator{none: true}, nil
	case "jwt":
	default:
		return nil, fmt.Errorf("auth: MKGRAPH_AUTH must be jwt or none, not %.20q", cfg.Mode)
	}

	if len(cfg.HS256Secret) == 0 && cfg.JWKSURL == "" && cfg.JWKSFile == "" && cfg.APIKeysFile == "" {
		return nil, errors.New("auth: MKGRAPH_AUTH=jwt needs at least one of MKGRAPH_JWT_HS256_SECRET, MKGRAPH_JWT_JWKS_URL, MKGRAPH_JWT_JWKS_FILE, MKGRAPH_API_KEYS_FILE")
	}
	if n := len(cfg.HS256Secret); n > 0 && n < 32 {
		return nil, errors.New("auth: MKGRAPH_JWT_HS256_SECRET must be at least 32 bytes")
	}
	leeway := cfg.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0 || leeway > maxLeeway:
		return nil, fmt.Errorf("auth: MKGRAPH_JWT_LEEWAY must be between 0 and %v", maxLeeway)
	}
	linksClaim := strings.TrimSpace(cfg.LinksClaim)
	if linksClaim == "" {
		linksClaim = DefaultLinksClaim
	}
	if reservedClaims[linksClaim] {
		return nil, fmt.Errorf("auth: MKGRAPH_JWT_LINKS_CLAIM may not be the registered claim %q", linksClaim)
	}
	// Backends by JWT are opt-in: many auth servers grant whatever scopes a
	// client asks for, and a backend may read every link.
	backendScope := strings.TrimSpace(cfg.BackendScope)
	if strings.ContainsAny(backendScope, " \t\r\n") {
		return nil, errors.New("auth: MKGRAPH_JWT_BACKEND_SCOPE must be one scope, without spaces")
	}
	keyHeader := cfg.APIKeyHeader
	if keyHeader == "" {
		keyHeader = DefaultAPIKeyHeader
	}
	keyHeader = http.CanonicalHeaderKey(keyHeader)
	if !validHeaderName(keyHeader) || keyHeader == "Authorization" {
		return nil, errors.New("auth: APIKeyHeader must be a header name other than Authorization")
	}

	a := &Authenticator{
		linksClaim:   linksClaim,
		backendScope: backendScope,
		keyHeader:    keyHeader,
	}
	if cfg.APIKeysFile != "" {
		if a.keys, err = loadAPIKeys(cfg.APIKeysFile); err != nil {
			return nil, err
		}
	}

	// The refresh goroutine lives until Close or the end of ctx; on any
	// error below it is stopped at once.
	ctx, a.cancel = context.WithCancel(ctx)
	defer func() {
		if err != nil {
			a.cancel()
		}
	}()
	var methods []string
	if len(cfg.HS256Secret) > 0 {
		a.secret = append([]byte(nil), cfg.HS256Secret...)
		methods = append(methods, hmacMethods...)
	}
	if cfg.JWKSURL != "" || cfg.JWKSFile != "" {
		if a.jwks, err = newJWKS(ctx, cfg); err != nil {
			return nil, err
		}
		methods = append(methods, jwksMethods...)
	}
	if len(methods) > 0 {
		opts := []jwt.ParserOption{
			jwt.WithValidMethods(methods),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(leeway),
			jwt.WithStrictDecoding(),
		}
		if cfg.Issuer != "" {
			opts = append(opts, jwt.WithIssuer(cfg.Issuer))
		}
		if cfg.Audience != "" {
			opts = append(opts, jwt.WithAudience(cfg.Audience))
		}
		a.parser = jwt.NewParser(opts...)
	}
	return a, nil
}

// Close stops refreshing the JWKS URL. It is safe to call more than once.
func (a *Authenticator) Close() {
	a.closeOnce.Do(func() {
		if a.cancel != nil {
			a.cancel()
		}
	})
}

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
	if a.backendScope != "" && hasScope(claims, a.backendScope) {
		return NewBackend(sub), nil
	}
	ids, err := linkIDs(claims[a.linksClaim])
	if err != nil {
		return nil, unauthenticated(msgInvalid, fmt.Errorf("claim %q: %w", a.linksClaim, err))
	}
	return NewUser(sub, ids...), nil
}

// keyfunc returns the key to check a token with. The HS256 secret is used
// for HMAC tokens only, JWKS keys for the others only; the parser's method
// list has already refused any algorithm not configured, and the signing
// method refuses a key of the wrong type (an RSA key for HS256, a secret for
// RS256), so no key serves an algorithm it was not made for.
func (a *Authenticator) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
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
// strings or a space-separated string lists them. Anything else, or more
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

// validHeaderName reports whether s is an HTTP token (RFC 9110 5.6.2).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
