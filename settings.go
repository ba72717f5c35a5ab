package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/graph"
	"github.com/mkgraph/mkgraph/graph/limits"
	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/internal/edge"
	"github.com/mkgraph/mkgraph/internal/edge/auth"
	"github.com/mkgraph/mkgraph/internal/edge/ratelimit"
	"github.com/mkgraph/mkgraph/internal/redisstore"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
	"github.com/mkgraph/mkgraph/upstream/webhook"
)

// moneyKitURL is used when credentials are given without MONEYKIT_BASE_URL.
const moneyKitURL = "https://api.moneykit.com"

// config is every setting, read once at start.
type config struct {
	Addr                  string
	BaseURL               string
	ClientID              string
	ClientSecret          string
	LogLevel              zerolog.Level
	LogFormat             string
	UpstreamTimeout       time.Duration
	UpstreamConcurrency   int
	UpstreamMaxBody       int64
	RequestTimeout        time.Duration
	CacheTTL              time.Duration
	CacheMaxStale         time.Duration
	CacheMaxBytes         int64
	MaxRetryWait          time.Duration
	MaxInFlight           int
	BreakerCooldown       time.Duration
	BudgetPerLink         int // -1: unset (the default for the upstream)
	BudgetPerApp          int
	RefreshBudgetPerLink  int // -1: unset (1 with MoneyKit, none on the embedded sandbox)
	WebhookJWKSTTL        time.Duration
	WebhookMaxAge         time.Duration
	LoaderWait            time.Duration
	MaxBodyBytes          int64
	MaxLinkIDs            int
	MaxLinksPerRequest    int
	MaxAccountsPerRequest int
	MaxAccountsInFlight   int
	MaxComplexity         int
	Executor              string
	Env                   string
	Introspection         optionalBool
	GraphiQL              optionalBool
	Suggestions           optionalBool
	Auth                  string
	JWTSecret             string
	JWKSURL               string
	JWKSFile              string
	JWTIssuer             string
	JWTAudience           string
	JWTLinksClaim         string
	JWTLeeway             time.Duration
	JWTBackendScope       string
	APIKeysFile           string
	UserRateLimit         int
	BackendRateLimit      int
	UserRateBurst         int // 0: unset, a sixth of UserRateLimit
	BackendRateBurst      int // 0: unset, a sixth of BackendRateLimit
	CORSOrigins           string
	CORSHeaders           string
	CORSMaxAge            time.Duration
	APQCacheSize          int
	PersistedFile         string
	PersistedOnly         bool
	Limits                limits.Config
	SandboxLatency        time.Duration
	ShutdownTimeout       time.Duration
	DrainDelay            time.Duration
	AdminAddr             string
	Pprof                 bool
	RedisURL              string
	RedisPrefix           string
	RedisTimeout          time.Duration
	RedisKeys             [][]byte // MKGRAPH_REDIS_ENCRYPTION_KEY, parsed; nil: derived from the client secret
	redisKeysText         string
}

// configError is a bad setting: main exits with status 2.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }

func (e *configError) Unwrap() error { return e.err }

// setting is one configuration value, settable by flag and environment.
type setting struct {
	flag, env, def, usage string
	binding
}

// binding parses a setting into its config field and formats it back.
type binding struct {
	set func(string) error
	get func() string
}

// settings lists every setting with its default. The environment overrides
// the default and a flag overrides the environment.
func (c *config) settings() []setting {
	return []setting{
		{"addr", "MKGRAPH_ADDR", defaultAddr, "listen address", str(&c.Addr)},
		{"moneykit-base-url", "MONEYKIT_BASE_URL", "", "MoneyKit API base URL; unset: the embedded sandbox (or " + moneyKitURL + " when credentials are set)", str(&c.BaseURL)},
		{"moneykit-client-id", "MONEYKIT_CLIENT_ID", "", "MoneyKit client id", str(&c.ClientID)},
		{"moneykit-client-secret", "MONEYKIT_CLIENT_SECRET", "", "MoneyKit client secret (prefer the environment: flags show in ps)", str(&c.ClientSecret)},
		{"log-level", "MKGRAPH_LOG_LEVEL", "info", "trace, debug, info, warn, error", binding{
			set: func(s string) (err error) {
				c.LogLevel, err = zerolog.ParseLevel(strings.ToLower(s))
				if err == nil && c.LogLevel == zerolog.NoLevel {
					err = errors.New("empty level")
				}
				return err
			},
			get: func() string { return c.LogLevel.String() },
		}},
		{"log-format", "MKGRAPH_LOG_FORMAT", "json", "json or console", binding{
			set: func(s string) error {
				if s != "json" && s != "console" {
					return errors.New("want json or console")
				}
				c.LogFormat = s
				return nil
			},
			get: func() string { return c.LogFormat },
		}},
		{"upstream-timeout", "MKGRAPH_UPSTREAM_TIMEOUT", upstream.DefaultTimeout.String(), "deadline of one upstream HTTP call", duration(&c.UpstreamTimeout, true)},
		{"upstream-concurrency", "MKGRAPH_UPSTREAM_CONCURRENCY", strconv.Itoa(loader.DefaultConcurrency), "distinct links one GraphQL request fetches at once", number(&c.UpstreamConcurrency)},
		{"upstream-max-body-bytes", "MKGRAPH_UPSTREAM_MAX_BODY_BYTES", strconv.Itoa(upstream.DefaultMaxBodyBytes), "largest upstream answer read", number(&c.UpstreamMaxBody)},
		{"upstream-max-retry-wait", "MKGRAPH_UPSTREAM_MAX_RETRY_WAIT", upstream.DefaultMaxRetryAfterWait.String(), "longest Retry-After a call waits out before retrying; longer ones are answered at once with retryAfter", duration(&c.MaxRetryWait, false)},
		{"upstream-max-in-flight", "MKGRAPH_UPSTREAM_MAX_IN_FLIGHT", strconv.Itoa(upstream.DefaultMaxInFlight), "upstream calls in flight at once, over all requests; a call waits at most 1 s for a slot, then facade.upstream_unavailable", number(&c.MaxInFlight)},
		{"identity-budget-per-link", "MKGRAPH_IDENTITY_BUDGET_PER_LINK", "", "identity calls per link per minute the facade allows itself (MoneyKit: 3); unset: 3 with MoneyKit, none with the embedded sandbox; 0: none", budget(&c.BudgetPerLink)},
		{"identity-budget-per-app", "MKGRAPH_IDENTITY_BUDGET_PER_APP", "", "identity calls per minute in all (MoneyKit: 600); unset: 600 with MoneyKit, none with the embedded sandbox; 0: none", budget(&c.BudgetPerApp)},
		{"refresh-budget-per-link", "MKGRAPH_REFRESH_BUDGET_PER_LINK", "", "identity refreshes (refreshIdentity) per link per day the facade allows itself, refused with api_error.rate_limit_exceeded before any call (MoneyKit: 1); unset: 1 with MoneyKit, none with the embedded sandbox; 0: none", budget(&c.RefreshBudgetPerLink)},
		{"webhook-jwks-ttl", "MKGRAPH_WEBHOOK_JWKS_TTL", webhook.DefaultJWKSTTL.String(), "how long MoneyKit's webhook signing keys ({MONEYKIT_BASE_URL}/.well-known/jwks.json) are used before they are fetched again (an unknown kid refetches sooner); MoneyKit allows at most 24h", duration(&c.WebhookJWKSTTL, true)},
		{"webhook-max-age", "MKGRAPH_WEBHOOK_MAX_AGE", webhook.DefaultMaxAge.String(), "how far a webhook signature's iat may be from now, either way; older deliveries are refused as replays", duration(&c.WebhookMaxAge, true)},
		{"breaker-cooldown", "MKGRAPH_BREAKER_COOLDOWN", upstream.DefaultBreakerCooldown.String(), "when at least half of at least 20 calls in the last 10 s failed (5xx, timeouts, connection failures), how long the facade fails fast with facade.upstream_unavailable before a few probes", duration(&c.BreakerCooldown, true)},
		{"cache-ttl", "MKGRAPH_CACHE_TTL", cache.DefaultTTL.String(), "how long an identity answer is served from the cache without an upstream call; 0s: no cache", duration(&c.CacheTTL, false)},
		{"cache-max-stale", "MKGRAPH_CACHE_MAX_STALE", cache.DefaultMaxStale.String(), "after the TTL, how long a cached answer may still be served (marked stale) when the upstream fails or refuses (429, 5xx, budget)", duration(&c.CacheMaxStale, false)},
		{"cache-max-bytes", "MKGRAPH_CACHE_MAX_BYTES", strconv.FormatInt(cache.DefaultMaxBytes, 10), "memory the identity cache may hold (bounded by bytes, not entries)", number(&c.CacheMaxBytes)},
		{"request-timeout", "MKGRAPH_REQUEST_TIMEOUT", defaultRequestTimeout.String(), "deadline of one GraphQL request, upstream calls included", duration(&c.RequestTimeout, true)},
		{"loader-wait", "MKGRAPH_LOADER_WAIT", loader.DefaultWait.String(), "dataloader batch window (see docs/performance.md)", duration(&c.LoaderWait, false)},
		{"max-body-bytes", "MKGRAPH_MAX_BODY_BYTES", strconv.Itoa(edge.DefaultMaxBodyBytes), "largest GraphQL request body", number(&c.MaxBodyBytes)},
		{"max-link-ids", "MKGRAPH_MAX_LINK_IDS", strconv.Itoa(graph.DefaultMaxLinkIDs), "longest links(ids:) list", number(&c.MaxLinkIDs)},
		{"max-links-per-request", "MKGRAPH_MAX_LINKS_PER_REQUEST", strconv.Itoa(loader.DefaultMaxLinks), "distinct links (upstream calls) one request may load, however they are written", number(&c.MaxLinksPerRequest)},
		{"max-accounts-per-request", "MKGRAPH_MAX_ACCOUNTS_PER_REQUEST", strconv.Itoa(loader.DefaultMaxAccounts), "accounts one request may return over all selections", number(&c.MaxAccountsPerRequest)},
		{"max-accounts-in-flight", "MKGRAPH_MAX_ACCOUNTS_IN_FLIGHT", strconv.Itoa(loader.DefaultMaxAccountsInFlight), "accounts of large answers (100+ accounts per link) built at once over all requests, to bound memory; others wait their turn; 0: no bound", count(&c.MaxAccountsInFlight)},
		{"max-complexity", "MKGRAPH_MAX_COMPLEXITY", strconv.Itoa(graph.DefaultMaxComplexity), "most an operation may cost (a field 1, a link 10 more, unnarrowed accounts x10)", number(&c.MaxComplexity)},
		{"executor", "MKGRAPH_EXECUTOR", graph.ExecutorPlan, "plan: read queries over link/links run on a plan compiled per document (byte-identical to gqlgen, faster); gqlgen: every operation on gqlgen's executor", oneOf(&c.Executor, graph.ExecutorPlan, graph.ExecutorGQLgen)},
		{"env", "MKGRAPH_ENV", "development", "development or production: production turns introspection, GraphiQL and field suggestions off, requires auth and refuses the sandbox", oneOf(&c.Env, "development", "production")},
		{"introspection", "MKGRAPH_INTROSPECTION", "", "answer __schema/__type queries (default: true, false in production)", optBool(&c.Introspection)},
		{"graphiql", "MKGRAPH_GRAPHIQL", "", "serve GraphiQL at / (default: true, false in production)", optBool(&c.GraphiQL)},
		{"suggestions", "MKGRAPH_SUGGESTIONS", "", `"Did you mean …" in validation errors (default: true, false in production)`, optBool(&c.Suggestions)},
		{"auth", "MKGRAPH_AUTH", "", "jwt or none (default: none with the embedded sandbox, jwt otherwise; none with a real upstream is logged loudly)", oneOf(&c.Auth, "", "jwt", "none")},
		{"jwt-hs256-secret", "MKGRAPH_JWT_HS256_SECRET", "", "HS256 secret of end-user JWTs (at least 32 bytes)", str(&c.JWTSecret)},
		{"jwt-jwks-url", "MKGRAPH_JWT_JWKS_URL", "", "JWKS URL of end-user JWT keys (RS256/ES256, by kid, refreshed)", str(&c.JWKSURL)},
		{"jwt-jwks-file", "MKGRAPH_JWT_JWKS_FILE", "", "JWKS file of end-user JWT keys", str(&c.JWKSFile)},
		{"jwt-issuer", "MKGRAPH_JWT_ISSUER", "", "required iss of JWTs, when set", str(&c.JWTIssuer)},
		{"jwt-audience", "MKGRAPH_JWT_AUDIENCE", "", "required aud of JWTs, when set", str(&c.JWTAudience)},
		{"jwt-links-claim", "MKGRAPH_JWT_LINKS_CLAIM", auth.DefaultLinksClaim, "JWT claim listing the links an end user may read", str(&c.JWTLinksClaim)},
		{"jwt-leeway", "MKGRAPH_JWT_LEEWAY", auth.DefaultLeeway.String(), "clock skew allowed on exp/nbf/iat", duration(&c.JWTLeeway, false)},
		{"jwt-backend-scope", "MKGRAPH_JWT_BACKEND_SCOPE", "", "JWT scope that makes a trusted backend that may read any link, e.g. mkgraph:backend; unset: no JWT is a backend (only API keys)", str(&c.JWTBackendScope)},
		{"api-keys-file", "MKGRAPH_API_KEYS_FILE", "", `backend API keys, one "name sha256hex" per line (X-Api-Key header; "go run . hash-key NAME KEY" prints a line)`, str(&c.APIKeysFile)},
		{"user-rate-limit", "MKGRAPH_USER_RATE_LIMIT", strconv.Itoa(ratelimit.DefaultUserPerMinute), "requests per minute per end user; 0: none", count(&c.UserRateLimit)},
		{"backend-rate-limit", "MKGRAPH_BACKEND_RATE_LIMIT", strconv.Itoa(ratelimit.DefaultBackendPerMinute), "requests per minute per backend; 0: none", count(&c.BackendRateLimit)},
		{"user-rate-burst", "MKGRAPH_USER_RATE_BURST", "", "requests an end user may send at once before MKGRAPH_USER_RATE_LIMIT paces them; unset: a sixth of the limit (10 s worth), at least 1", optPositive(&c.UserRateBurst)},
		{"backend-rate-burst", "MKGRAPH_BACKEND_RATE_BURST", "", "requests a backend may send at once before MKGRAPH_BACKEND_RATE_LIMIT paces them; unset: a sixth of the limit (10 s worth), at least 1", optPositive(&c.BackendRateBurst)},
		{"cors-origins", "MKGRAPH_CORS_ORIGINS", "", "comma-separated origins allowed to call from browsers (e.g. https://app.example.com); unset: same origin only; with the embedded sandbox (never in production) http://localhost and http://127.0.0.1 on any port are allowed too", str(&c.CORSOrigins)},
		{"cors-headers", "MKGRAPH_CORS_HEADERS", strings.Join(edge.DefaultCORSHeaders, ","), "comma-separated request headers a browser on an allowed origin may send (case-insensitive)", str(&c.CORSHeaders)},
		{"cors-max-age", "MKGRAPH_CORS_MAX_AGE", edge.DefaultCORSMaxAge.String(), "how long a browser may cache a CORS preflight answer (Access-Control-Max-Age, whole seconds, at most 24h); 0s: not cached", duration(&c.CORSMaxAge, false)},
		{"apq-cache-size", "MKGRAPH_APQ_CACHE_SIZE", "1000", "automatic persisted queries kept (query texts, never data); 0: APQ off", count(&c.APQCacheSize)},
		{"persisted-queries-file", "MKGRAPH_PERSISTED_QUERIES_FILE", "", "the app's persisted query manifest (Apollo format)", str(&c.PersistedFile)},
		{"persisted-queries-only", "MKGRAPH_PERSISTED_QUERIES_ONLY", "false", "accept only operations in the manifest (allowlist)", boolean(&c.PersistedOnly)},
		{"max-query-bytes", "MKGRAPH_MAX_QUERY_BYTES", strconv.Itoa(limits.DefaultMaxQueryBytes), "longest query text", number(&c.Limits.MaxQueryBytes)},
		{"max-tokens", "MKGRAPH_MAX_TOKENS", strconv.Itoa(limits.DefaultMaxTokens), "most lexical tokens in a query", number(&c.Limits.MaxTokens)},
		{"max-depth", "MKGRAPH_MAX_DEPTH", strconv.Itoa(limits.DefaultMaxDepth), "deepest selection", number(&c.Limits.MaxDepth)},
		{"max-aliases", "MKGRAPH_MAX_ALIASES", strconv.Itoa(limits.DefaultMaxAliases), "most aliases in an operation", number(&c.Limits.MaxAliases)},
		{"max-directives", "MKGRAPH_MAX_DIRECTIVES", strconv.Itoa(limits.DefaultMaxDirectives), "most directives in an operation", number(&c.Limits.MaxDirectives)},
		{"max-root-fields", "MKGRAPH_MAX_ROOT_FIELDS", strconv.Itoa(limits.DefaultMaxRootFields), "most root fields in an operation", number(&c.Limits.MaxRootFields)},
		{"max-repeats", "MKGRAPH_MAX_REPEATS", strconv.Itoa(limits.DefaultMaxRepeats), "most repeated selections (a field again under its name, fragment spreads after the first) in an operation", number(&c.Limits.MaxRepeats)},
		{"max-batch", "MKGRAPH_MAX_BATCH", "0", "operations in one batched (JSON array) request; 0: batching refused", count(&c.Limits.MaxBatch)},
		{"sandbox-latency", "MKGRAPH_SANDBOX_LATENCY", "0s", "latency the embedded sandbox adds to each identity call", duration(&c.SandboxLatency, false)},
		{"shutdown-timeout", "MKGRAPH_SHUTDOWN_TIMEOUT", defaultShutdownTimeout.String(), "how long in-flight requests may finish after SIGINT/SIGTERM", duration(&c.ShutdownTimeout, true)},
		{"admin-addr", "MKGRAPH_ADMIN_ADDR", "", "listen address of the admin endpoints (unset: none); keep it off the public network", str(&c.AdminAddr)},
		{"pprof", "MKGRAPH_PPROF", "false", "serve /debug/pprof/ on the admin listener", boolean(&c.Pprof)},
		{"redis-url", "MKGRAPH_REDIS_URL", "", "Redis shared by replicas (redis:// or rediss://): identity cache (encrypted), APQ, rate budgets, caller limits; unset: all in memory (prefer the environment when it holds a password: flags show in ps)", str(&c.RedisURL)},
		{"redis-prefix", "MKGRAPH_REDIS_PREFIX", redisstore.DefaultPrefix, "prefix of every Redis key (deployments sharing one Redis need different ones)", str(&c.RedisPrefix)},
		{"redis-timeout", "MKGRAPH_REDIS_TIMEOUT", redisstore.DefaultTimeout.String(), "deadline of one Redis operation; past it the replica's in-memory state answers", duration(&c.RedisTimeout, true)},
		{"redis-encryption-key", "MKGRAPH_REDIS_ENCRYPTION_KEY", "", "AES-256 key(s) of identity data in Redis: 32 bytes in base64 or hex (openssl rand -base64 32), comma-separated for rotation (the first encrypts); unset: derived from MONEYKIT_CLIENT_SECRET (prefer the environment: flags show in ps)", binding{
			set: func(v string) error {
				c.redisKeysText, c.RedisKeys = v, nil
				if v == "" {
					return nil
				}
				keys, err := redisstore.ParseKeys(v)
				c.RedisKeys = keys
				return err
			},
			get: func() string { return c.redisKeysText },
		}},
		{"drain-delay", "MKGRAPH_DRAIN_DELAY", "0s", "after SIGINT/SIGTERM, how long /readyz answers 503 before the listener closes (set it to your load balancer's probe interval)", duration(&c.DrainDelay, false)},
	}
}

// parseConfig applies defaults, then the environment, then flags. A bad
// environment value is an error unless a flag replaces it.
func parseConfig(name string, args []string, getenv func(string) string, out io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	if name == "mkgraph" {
		fs.Usage = func() { usage(fs) }
	}
	envErrs := map[string]error{} // by flag name
	for _, s := range c.settings() {
		if err := s.set(s.def); err != nil {
			panic(fmt.Sprintf("default of %s: %v", s.env, err))
		}
		if v, ok := lookup(getenv, s.env); ok {
			if err := s.set(v); err != nil {
				envErrs[s.flag] = &configError{fmt.Errorf("%s=%q: %w", s.env, mask(s.env, v), err)}
			}
		}
		fs.Func(s.flag, fmt.Sprintf("%s (env %s, default %q)", s.usage, s.env, s.def), s.set)
	}
	if err := fs.Parse(args); err != nil {
		return nil, &configError{err}
	}
	if fs.NArg() > 0 {
		return nil, &configError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	fs.Visit(func(f *flag.Flag) { delete(envErrs, f.Name) })
	for _, s := range c.settings() {
		if err := envErrs[s.flag]; err != nil {
			return nil, err
		}
	}
	hasCreds := c.ClientID != "" || c.ClientSecret != ""
	if c.BaseURL == "" && hasCreds {
		c.BaseURL = moneyKitURL
	}
	if c.BaseURL != "" && (c.ClientID == "" || c.ClientSecret == "") {
		return nil, &configError{errors.New("MONEYKIT_CLIENT_ID and MONEYKIT_CLIENT_SECRET are both required with a MoneyKit upstream; unset MONEYKIT_BASE_URL and both for the sandbox")}
	}
	if c.BaseURL != "" {
		if _, err := upstream.New(upstream.Config{BaseURL: c.BaseURL, ClientID: c.ClientID, ClientSecret: c.ClientSecret}); err != nil {
			return nil, &configError{fmt.Errorf("MONEYKIT_BASE_URL: %w", err)}
		}
	}
	if c.production() && c.BaseURL == "" {
		return nil, &configError{errors.New("MKGRAPH_ENV=production refuses the embedded sandbox (fixture data): set MONEYKIT_CLIENT_ID and MONEYKIT_CLIENT_SECRET (and MONEYKIT_BASE_URL if not api.moneykit.com)")}
	}
	if c.production() && c.Auth == "none" {
		return nil, &configError{errors.New("MKGRAPH_ENV=production requires auth: MKGRAPH_AUTH=none is refused (set the JWT or API key settings)")}
	}
	if c.Auth == "" {
		c.Auth = "jwt"
		if c.BaseURL == "" {
			c.Auth = "none" // the sandbox's fixtures are nobody's data
		}
	}
	return c, nil
}

// usage prints -h: the commands, then every flag with its environment
// variable and default.
func usage(fs *flag.FlagSet) {
	fmt.Fprint(fs.Output(), `Usage:
  mkgraph [flags]              serve GraphQL on MKGRAPH_ADDR (default :8080)
  mkgraph sandbox [flags]      serve only the MoneyKit sandbox on its own port (mkgraph sandbox -h lists its flags)
  mkgraph hash-key NAME KEY    print the MKGRAPH_API_KEYS_FILE line of a backend's API key

Flags (each also set by the environment variable named; a flag wins):
`)
	fs.PrintDefaults()
}

// secretSetting reports whether the setting named env holds a secret, whose
// value is never logged or echoed.
func secretSetting(env string) bool {
	return strings.Contains(env, "SECRET") || strings.HasSuffix(env, "_KEY")
}

// production reports MKGRAPH_ENV=production.
func (c *config) production() bool { return c.Env == "production" }

// lookup reads an environment variable; an empty value counts as unset.
func lookup(getenv func(string) string, key string) (string, bool) {
	v := getenv(key)
	return v, v != ""
}

// mask hides secret values in logs and errors: the client secret, and a
// password inside a URL.
func mask(key, v string) string {
	if secretSetting(key) && v != "" {
		return "[set]"
	}
	if strings.HasSuffix(key, "_URL") {
		return upstream.RedactURL(v)
	}
	return v
}

// logConfig prints the effective settings, secrets masked.
func logConfig(log zerolog.Logger, c *config) {
	ev := log.Info()
	for _, s := range c.settings() {
		if secretSetting(s.env) {
			ev = ev.Bool(s.env+"_SET", s.get() != "")
			continue
		}
		ev = ev.Str(s.env, mask(s.env, s.get()))
	}
	ev.Msg("configuration")
}
