package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/net/http/httpguts"
)

// Defaults of Config.
const (
	DefaultLinksClaim   = "link_ids"
	DefaultLeeway       = 30 * time.Second
	DefaultBackendScope = "mkgraph:backend" // the scope suggested in docs; backends by JWT are off unless a scope is set
	DefaultAPIKeyHeader = "X-Api-Key"
	// DefaultJWKSTimeout bounds one fetch of the JWKS URL when HTTPClient is
	// nil or has no timeout of its own.
	DefaultJWKSTimeout = 10 * time.Second
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
	HTTPClient   *http.Client  // for the JWKS URL; nil: a client with DefaultJWKSTimeout

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
	leeway       time.Duration // clock skew allowed on exp: a token is accepted until exp+leeway

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
	if !httpguts.ValidHeaderFieldName(keyHeader) || keyHeader == "Authorization" {
		return nil, errors.New("auth: APIKeyHeader must be a header name other than Authorization")
	}

	a := &Authenticator{
		linksClaim:   linksClaim,
		backendScope: backendScope,
		leeway:       leeway,
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
