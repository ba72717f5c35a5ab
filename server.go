// Command mkgraph serves a GraphQL facade over MoneyKit's Get Identity
// endpoint. With no MONEYKIT_BASE_URL and no credentials it serves the
// embedded sandbox, so `go run .` works on a fresh machine.
//
//	mkgraph [flags]          serve GraphQL on MKGRAPH_ADDR (default :8080)
//	mkgraph sandbox [flags]  serve only the MoneyKit sandbox on its own port
//	mkgraph hash-key NAME KEY  print a line for MKGRAPH_API_KEYS_FILE
package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/rs/xid"
	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"

	"github.com/mkgraph/mkgraph/graph"
	"github.com/mkgraph/mkgraph/graph/limits"
	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/edge/auth"
	"github.com/mkgraph/mkgraph/internal/edge/browser"
	"github.com/mkgraph/mkgraph/internal/edge/httperr"
	"github.com/mkgraph/mkgraph/internal/edge/ratelimit"
	"github.com/mkgraph/mkgraph/internal/gctune"
	"github.com/mkgraph/mkgraph/internal/obs/metrics"
	"github.com/mkgraph/mkgraph/internal/obs/reqlog"
	"github.com/mkgraph/mkgraph/internal/obs/tracing"
	"github.com/mkgraph/mkgraph/internal/redisstore"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// Garbage collector defaults, unless the standard GOGC or GOMEMLIMIT say
// otherwise. The facade's live heap is small (a few MB plus the identity
// cache) and it allocates fast, so Go's default of collecting whenever the
// heap doubles meant a collection every few hundred requests: a large share
// of the CPU at thousands of requests a second (cached re-reads: ~3,700
// req/s with GOGC=100, ~8,000 with fewer collections). gctune keeps the
// heap goal at the live heap + gcHeadroom instead. The soft memory limit
// caps the whole: the working set (memoryBase) plus the identity cache's
// budget, whose entries weigh their JSON size and take ~1.3× that decoded
// (so a full cache never makes the collector thrash under its own limit).
const (
	gcHeadroom = 48 << 20
	memoryBase = 64 << 20
)

// memoryLimit is the default soft memory limit for the configuration.
func memoryLimit(c *config) int64 {
	limit := int64(memoryBase)
	if c.CacheTTL > 0 {
		limit += c.CacheMaxBytes * 3 / 2
	}
	return limit
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkgraph:", err)
		if errors.As(err, new(*configError)) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

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
	LoaderWait            time.Duration
	MaxBodyBytes          int64
	MaxLinkIDs            int
	MaxLinksPerRequest    int
	MaxAccountsPerRequest int
	MaxAccountsInFlight   int
	MaxComplexity         int
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
	CORSOrigins           string
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
		{"addr", "MKGRAPH_ADDR", ":8080", "listen address", str(&c.Addr)},
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
		{"upstream-timeout", "MKGRAPH_UPSTREAM_TIMEOUT", "10s", "deadline of one upstream HTTP call", duration(&c.UpstreamTimeout, true)},
		{"upstream-concurrency", "MKGRAPH_UPSTREAM_CONCURRENCY", strconv.Itoa(loader.DefaultConcurrency), "distinct links one GraphQL request fetches at once", number(&c.UpstreamConcurrency)},
		{"upstream-max-body-bytes", "MKGRAPH_UPSTREAM_MAX_BODY_BYTES", strconv.Itoa(upstream.DefaultMaxBodyBytes), "largest upstream answer read", number(&c.UpstreamMaxBody)},
		{"upstream-max-retry-wait", "MKGRAPH_UPSTREAM_MAX_RETRY_WAIT", upstream.DefaultMaxRetryAfterWait.String(), "longest Retry-After a call waits out before retrying; longer ones are answered at once with retryAfter", duration(&c.MaxRetryWait, false)},
		{"upstream-max-in-flight", "MKGRAPH_UPSTREAM_MAX_IN_FLIGHT", strconv.Itoa(upstream.DefaultMaxInFlight), "upstream calls in flight at once, over all requests", number(&c.MaxInFlight)},
		{"identity-budget-per-link", "MKGRAPH_IDENTITY_BUDGET_PER_LINK", "", "identity calls per link per minute the facade allows itself (MoneyKit: 3); unset: 3 with MoneyKit, none with the embedded sandbox; 0: none", budget(&c.BudgetPerLink)},
		{"identity-budget-per-app", "MKGRAPH_IDENTITY_BUDGET_PER_APP", "", "identity calls per minute in all (MoneyKit: 600); unset: 600 with MoneyKit, none with the embedded sandbox; 0: none", budget(&c.BudgetPerApp)},
		{"breaker-cooldown", "MKGRAPH_BREAKER_COOLDOWN", upstream.DefaultBreakerCooldown.String(), "how long the circuit breaker fails fast after repeated upstream failures", duration(&c.BreakerCooldown, true)},
		{"cache-ttl", "MKGRAPH_CACHE_TTL", cache.DefaultTTL.String(), "how long an identity answer is served from the cache without an upstream call; 0s: no cache", duration(&c.CacheTTL, false)},
		{"cache-max-stale", "MKGRAPH_CACHE_MAX_STALE", cache.DefaultMaxStale.String(), "after the TTL, how long a cached answer may still be served (marked stale) when the upstream fails or refuses (429, 5xx, budget)", duration(&c.CacheMaxStale, false)},
		{"cache-max-bytes", "MKGRAPH_CACHE_MAX_BYTES", strconv.FormatInt(cache.DefaultMaxBytes, 10), "memory the identity cache may hold", number(&c.CacheMaxBytes)},
		{"request-timeout", "MKGRAPH_REQUEST_TIMEOUT", "15s", "deadline of one GraphQL request", duration(&c.RequestTimeout, true)},
		{"loader-wait", "MKGRAPH_LOADER_WAIT", loader.DefaultWait.String(), "dataloader batch window", duration(&c.LoaderWait, false)},
		{"max-body-bytes", "MKGRAPH_MAX_BODY_BYTES", strconv.Itoa(1 << 20), "largest GraphQL request body", number(&c.MaxBodyBytes)},
		{"max-link-ids", "MKGRAPH_MAX_LINK_IDS", strconv.Itoa(graph.DefaultMaxLinkIDs), "longest links(ids:) list", number(&c.MaxLinkIDs)},
		{"max-links-per-request", "MKGRAPH_MAX_LINKS_PER_REQUEST", strconv.Itoa(loader.DefaultMaxLinks), "distinct links (upstream calls) one request may load", number(&c.MaxLinksPerRequest)},
		{"max-accounts-per-request", "MKGRAPH_MAX_ACCOUNTS_PER_REQUEST", strconv.Itoa(loader.DefaultMaxAccounts), "accounts one request may return over all selections", number(&c.MaxAccountsPerRequest)},
		{"max-accounts-in-flight", "MKGRAPH_MAX_ACCOUNTS_IN_FLIGHT", strconv.Itoa(loader.DefaultMaxAccountsInFlight), "accounts of large answers (100+ accounts per link) built at once over all requests, to bound memory; others wait their turn; 0: no bound", count(&c.MaxAccountsInFlight)},
		{"max-complexity", "MKGRAPH_MAX_COMPLEXITY", strconv.Itoa(graph.DefaultMaxComplexity), "most an operation may cost (a field 1, a link 10 more, unnarrowed accounts x10)", number(&c.MaxComplexity)},
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
		{"jwt-links-claim", "MKGRAPH_JWT_LINKS_CLAIM", "link_ids", "JWT claim listing the links an end user may read", str(&c.JWTLinksClaim)},
		{"jwt-leeway", "MKGRAPH_JWT_LEEWAY", "30s", "clock skew allowed on exp/nbf/iat", duration(&c.JWTLeeway, false)},
		{"jwt-backend-scope", "MKGRAPH_JWT_BACKEND_SCOPE", "", "JWT scope that makes a trusted backend that may read any link, e.g. mkgraph:backend; unset: no JWT is a backend (only API keys)", str(&c.JWTBackendScope)},
		{"api-keys-file", "MKGRAPH_API_KEYS_FILE", "", `backend API keys, one "name sha256hex" per line (X-Api-Key header; "go run . hash-key NAME KEY" prints a line)`, str(&c.APIKeysFile)},
		{"user-rate-limit", "MKGRAPH_USER_RATE_LIMIT", "120", "requests per minute per end user; 0: none", count(&c.UserRateLimit)},
		{"backend-rate-limit", "MKGRAPH_BACKEND_RATE_LIMIT", "6000", "requests per minute per backend; 0: none", count(&c.BackendRateLimit)},
		{"cors-origins", "MKGRAPH_CORS_ORIGINS", "", "comma-separated origins allowed to call from browsers (e.g. https://app.example.com); unset: same origin only", str(&c.CORSOrigins)},
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
		{"shutdown-timeout", "MKGRAPH_SHUTDOWN_TIMEOUT", "10s", "how long in-flight requests may finish on SIGTERM", duration(&c.ShutdownTimeout, true)},
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
		{"drain-delay", "MKGRAPH_DRAIN_DELAY", "0s", "on SIGTERM, how long /readyz answers 503 before the listener closes (let a load balancer notice)", duration(&c.DrainDelay, false)},
	}
}

func str(p *string) binding {
	return binding{func(s string) error { *p = s; return nil }, func() string { return *p }}
}

func duration(p *time.Duration, positive bool) binding {
	return binding{
		set: func(s string) (err error) {
			*p, err = time.ParseDuration(s)
			switch {
			case err != nil:
			case positive && *p <= 0:
				err = errors.New("must be positive")
			case *p < 0:
				err = errors.New("must not be negative")
			}
			return err
		},
		get: func() string { return p.String() },
	}
}

// number binds a positive integer.
func number[T int | int64](p *T) binding {
	return binding{
		set: func(s string) error {
			v, err := strconv.ParseInt(s, 10, 64)
			if err == nil && (v <= 0 || int64(T(v)) != v) {
				err = errors.New("must be a positive integer")
			}
			*p = T(v)
			return err
		},
		get: func() string { return strconv.FormatInt(int64(*p), 10) },
	}
}

// optionalBool is a boolean whose default depends on other settings.
type optionalBool struct{ set, v bool }

// or returns the value, or def when it was not set.
func (b optionalBool) or(def bool) bool {
	if b.set {
		return b.v
	}
	return def
}

func optBool(p *optionalBool) binding {
	return binding{
		set: func(s string) error {
			if s == "" {
				*p = optionalBool{}
				return nil
			}
			v, err := strconv.ParseBool(s)
			*p = optionalBool{set: true, v: v}
			return err
		},
		get: func() string {
			if !p.set {
				return "default"
			}
			return strconv.FormatBool(p.v)
		},
	}
}

// oneOf binds a string that must be one of values.
func oneOf(p *string, values ...string) binding {
	return binding{
		set: func(s string) error {
			if !slices.Contains(values, s) {
				return fmt.Errorf("want one of %q", values)
			}
			*p = s
			return nil
		},
		get: func() string { return *p },
	}
}

// count binds a non-negative integer; 0 usually means "off".
func count(p *int) binding {
	return binding{
		set: func(s string) error {
			v, err := strconv.Atoi(s)
			if err != nil || v < 0 {
				return errors.New("must be a non-negative integer")
			}
			*p = v
			return nil
		},
		get: func() string { return strconv.Itoa(*p) },
	}
}

// budget binds a rate budget: "" is unset (-1), 0 none, else a positive count.
func budget(p *int) binding {
	return binding{
		set: func(s string) error {
			if s == "" {
				*p = -1
				return nil
			}
			v, err := strconv.Atoi(s)
			if err != nil || v < 0 {
				return errors.New("must be a count of calls per minute, 0 for none")
			}
			*p = v
			return nil
		},
		get: func() string {
			if *p < 0 {
				return "default"
			}
			return strconv.Itoa(*p)
		},
	}
}

// rateBudget is the facade's mirror of MoneyKit's identity limits: unset
// budgets are MoneyKit's own with a real upstream, and none with the
// embedded sandbox (which has no limits, and where a developer re-running a
// query should not be refused).
func rateBudget(c *config, embedded bool, rs *redisstore.Client, namespace string) upstream.RateBudget {
	perLink, perApp := c.BudgetPerLink, c.BudgetPerApp
	if perLink < 0 {
		perLink = upstream.IdentityCallsPerLink
		if embedded {
			perLink = 0
		}
	}
	if perApp < 0 {
		perApp = upstream.IdentityCallsPerApp
		if embedded {
			perApp = 0
		}
	}
	switch {
	case perLink == 0 && perApp == 0:
		return nil
	case rs != nil:
		return redisstore.NewBudget(rs, namespace, perLink, perApp, time.Minute)
	}
	return upstream.NewSlidingWindow(perLink, perApp, time.Minute, nil)
}

func boolean(p *bool) binding {
	return binding{
		set: func(s string) (err error) { *p, err = strconv.ParseBool(s); return err },
		get: func() string { return strconv.FormatBool(*p) },
	}
}

// parseConfig applies defaults, then the environment, then flags. A bad
// environment value is an error unless a flag replaces it.
func parseConfig(name string, args []string, getenv func(string) string, out io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
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

func newLogger(c *config, out io.Writer) zerolog.Logger {
	if c.LogFormat == "console" {
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: time.RFC3339}
	}
	return zerolog.New(out).Level(c.LogLevel).With().Timestamp().Logger()
}

// run is the whole program; main only exits with its result. It returns
// when ctx is done and the server has shut down.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "sandbox" {
		return runSandbox(ctx, args[1:], getenv, stdout)
	}
	if len(args) > 0 && args[0] == "hash-key" {
		// The keys file stores only hashes: this prints the line to add.
		if len(args) != 3 {
			return &configError{errors.New("usage: mkgraph hash-key NAME KEY")}
		}
		fmt.Fprintf(stdout, "%s %s\n", args[1], auth.HashAPIKey(args[2]))
		return nil
	}
	c, err := parseConfig("mkgraph", args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := newLogger(c, stdout)
	logConfig(log, c)
	// Process-wide settings, put back when run returns (tests run several).
	if getenv("GOMEMLIMIT") == "" && c.CacheMaxBytes > 0 {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(memoryLimit(c)))
	}
	if getenv("GOGC") == "" {
		gogc := debug.SetGCPercent(-1)
		debug.SetGCPercent(gogc)
		defer debug.SetGCPercent(gogc)
		tctx, stopTuning := context.WithCancel(ctx)
		defer gctune.Start(tctx, gcHeadroom, 250*time.Millisecond)()
		defer stopTuning()
	}
	log.Info().Int64("GOMEMLIMIT", debug.SetMemoryLimit(-1)).Msg("garbage collector soft memory limit (bytes)")

	baseURL, clientID, clientSecret := c.BaseURL, c.ClientID, c.ClientSecret
	embedded := baseURL == ""
	if embedded {
		sbx, stopSandbox, err := startSandbox(c.SandboxLatency)
		if err != nil {
			return err
		}
		defer stopSandbox()
		baseURL, clientID, clientSecret = sbx, sandbox.DefaultClientID, sandbox.DefaultClientSecret
		log.Warn().Str("upstream", baseURL).Msg("MONEYKIT_BASE_URL is unset: serving the embedded sandbox's fixture data, not MoneyKit")
	}
	tracingOn, stopTracing, err := tracing.Setup(ctx, getenv)
	if err != nil {
		return &configError{fmt.Errorf("OTEL_*: %w", err)}
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stopTracing(sctx)
	}()
	log.Info().Bool("tracing", tracingOn).Msg("OpenTelemetry tracing (OTEL_EXPORTER_OTLP_ENDPOINT)")

	m := metrics.New()
	namespace := cache.NamespaceFor(baseURL, clientID)
	var rs *redisstore.Client
	var redisKeys [][]byte // identity encryption keys, the first also naming keys
	if c.RedisURL != "" {
		redisKeys = c.RedisKeys
		if redisKeys == nil {
			redisKeys = [][]byte{redisstore.DeriveKey(clientSecret, clientID)}
		}
		rs, err = redisstore.Open(ctx, redisstore.Config{
			URL: c.RedisURL, Prefix: c.RedisPrefix, Timeout: c.RedisTimeout,
			Log: log, OnError: m.RedisError, NameKey: redisstore.NameKey(redisKeys[0]),
		})
		if err != nil {
			return &configError{fmt.Errorf("MKGRAPH_REDIS_URL: %w", err)}
		}
		defer rs.Close()
	}
	client, err := upstream.New(upstream.Config{
		BaseURL:      baseURL,
		ClientID:     clientID,
		ClientSecret: clientSecret,
		Timeout:      c.UpstreamTimeout,
		MaxBodyBytes: c.UpstreamMaxBody,
		Observer:     observeUpstream(m),

		WrapTransport:     tracing.Transport,
		Budget:            rateBudget(c, embedded, rs, namespace),
		OnBudgetRefused:   m.BudgetRefused,
		MaxRetryAfterWait: c.MaxRetryWait,
		MaxInFlight:       c.MaxInFlight,
		BreakerCooldown:   c.BreakerCooldown,
	})
	if err != nil {
		return &configError{err}
	}

	// Repeat reads are served from the identity cache, keyed by these
	// credentials, behind authorization (the resolvers decide before any
	// loader asks it).
	var fetcher loader.Fetcher = client
	if c.CacheTTL > 0 {
		cc := cache.Config{
			Next:      client,
			Namespace: namespace,
			MaxBytes:  c.CacheMaxBytes,
			TTL:       c.CacheTTL,
			MaxStale:  c.CacheMaxStale,
			OnResult:  m.Cache,
			// A shared call nobody waits for any more is cancelled; none
			// outlives the longest request.
			FetchTimeout: c.RequestTimeout,
		}
		// With Redis, one replica calls MoneyKit per link while the others
		// wait; should it die, another takes over after the lock's TTL, by
		// default the shared call's own bound (FetchTimeout).
		if rs != nil {
			if cc.Shared, err = redisstore.NewIdentities(rs, redisKeys); err != nil {
				return &configError{fmt.Errorf("MKGRAPH_REDIS_ENCRYPTION_KEY: %w", err)}
			}
		}
		ic, err := cache.New(cc)
		if err != nil {
			return &configError{err}
		}
		defer ic.Close()
		fetcher = ic
	}

	authn, err := newAuthenticator(ctx, c, embedded, log)
	if err != nil {
		return err
	}
	defer authn.Close()

	var serving atomic.Bool
	ready := func() error {
		if !serving.Load() {
			return errors.New("shutting down")
		}
		return client.Ready()
	}
	handler, err := newHandler(c, log, fetcher, ready, authn, m, rs)
	if err != nil {
		return &configError{err}
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      c.RequestTimeout + 5*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          stdLogger(log),
	}
	// Listen before Serve so that a bad address fails here, synchronously,
	// and ":0" works in tests.
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return &configError{fmt.Errorf("MKGRAPH_ADDR: %w", err)}
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	if c.AdminAddr != "" {
		aln, err := net.Listen("tcp", c.AdminAddr)
		if err != nil {
			srv.Close()
			return &configError{fmt.Errorf("MKGRAPH_ADMIN_ADDR: %w", err)}
		}
		admin := &http.Server{Handler: adminHandler(c, m), ReadHeaderTimeout: 10 * time.Second}
		defer admin.Close()
		go func() {
			if err := admin.Serve(aln); !errors.Is(err, http.ErrServerClosed) {
				serveErr <- err
			}
		}()
		log.Info().Str("addr", aln.Addr().String()).Bool("pprof", c.Pprof).Msg("admin listening")
	}
	serving.Store(true)
	log.Info().Str("addr", ln.Addr().String()).Msg("listening")

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	serving.Store(false)
	if c.DrainDelay > 0 {
		log.Info().Dur("drain_delay", c.DrainDelay).Msg("shutting down: /readyz answers 503 while load balancers notice")
		time.Sleep(c.DrainDelay)
	}
	log.Info().Dur("timeout", c.ShutdownTimeout).Msg("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn().Err(err).Msg("in-flight requests did not finish in time; closing")
		srv.Close()
	}
	log.Info().Msg("stopped")
	return nil
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

// observeUpstream counts each upstream call for the request's access log
// and the metrics.
func observeUpstream(m *metrics.Metrics) func(context.Context, upstream.Call) {
	return func(ctx context.Context, call upstream.Call) {
		reqlog.From(ctx).AddUpstreamCall()
		m.ObserveUpstream(call)
		if call.Endpoint == upstream.EndpointToken {
			m.TokenRenewed(call.Code == "")
		}
		zerolog.Ctx(ctx).Debug().Str("endpoint", call.Endpoint).Int("status", call.Status).
			Str("code", call.Code).Dur("duration", call.Duration).Msg("upstream call")
	}
}

// newHandler wires the routes and the middleware chain. ready reports why
// the server should not get traffic (shutting down, credentials refused).
//
// With rs (Redis), replicas share the APQ store and the per-caller limits;
// without it both are this process's own.
func newHandler(c *config, log zerolog.Logger, client loader.Fetcher, ready func() error, authn *auth.Authenticator, m *metrics.Metrics, rs *redisstore.Client) (http.Handler, error) {
	cors, err := browser.CORS(splitList(c.CORSOrigins))
	if err != nil {
		return nil, err
	}
	var persisted *graph.PersistedQueries
	if c.PersistedFile != "" {
		if persisted, err = graph.LoadPersistedQueries(c.PersistedFile, c.PersistedOnly); err != nil {
			return nil, fmt.Errorf("MKGRAPH_PERSISTED_QUERIES_FILE: %w", err)
		}
	} else if c.PersistedOnly {
		return nil, errors.New("MKGRAPH_PERSISTED_QUERIES_ONLY needs MKGRAPH_PERSISTED_QUERIES_FILE")
	}
	prod := c.production()
	loaders := loader.NewFactory(loader.Config{
		Fetcher:             client,
		Concurrency:         c.UpstreamConcurrency,
		Wait:                c.LoaderWait,
		MaxLinks:            c.MaxLinksPerRequest,
		MaxAccounts:         c.MaxAccountsPerRequest,
		MaxAccountsInFlight: cmp.Or(c.MaxAccountsInFlight, -1),
		OnBatch:             m.LoaderBatch,
	})
	m.Gauge("mkgraph_large_answer_accounts_in_flight", "Accounts of large answers (100+ per link) being built now (bounded by MKGRAPH_MAX_ACCOUNTS_IN_FLIGHT).",
		func() float64 { a, _ := loaders.Gate(); return float64(a) })
	m.Gauge("mkgraph_large_answers_waiting", "Requests waiting for room to build a large answer.",
		func() float64 { _, w := loaders.Gate(); return float64(w) })
	if rs != nil {
		m.Gauge("mkgraph_redis_down", "1 while the Redis breaker is open (repeated failures): this replica is on its in-memory state.",
			func() float64 {
				if rs.Down() {
					return 1
				}
				return 0
			})
	}
	gql := graph.NewHandler(graph.HandlerConfig{
		MaxLinkIDs:         c.MaxLinkIDs,
		MaxComplexity:      c.MaxComplexity,
		MaxTokens:          2 * c.Limits.MaxTokens, // gqlgen counts comments too; the limits middleware has already refused real excess
		Introspection:      c.Introspection.or(!prod),
		Suggestions:        c.Suggestions.or(!prod),
		Authorize:          authorize,
		APQCacheSize:       c.APQCacheSize,
		APQCache:           apqCache(c, rs),
		Persisted:          persisted,
		ResponseExtensions: staleExtensions,
	})
	fail := func(w http.ResponseWriter, r *http.Request, e *apierr.Error) {
		httperr.Write(w, r, http.StatusUnauthorized, e)
	}
	users := callerLimiter(rs, m, auth.KindUser.String(), c.UserRateLimit)
	backends := callerLimiter(rs, m, auth.KindBackend.String(), c.BackendRateLimit)

	mux := http.NewServeMux()
	// The GraphQL chain, outermost first: cheap refusals before costly work,
	// the caller known before anything is loaded.
	mux.Handle("/graphql", chain(gql,
		graphqlHeaders,
		browser.CSRF,
		bodyLimit(c.MaxBodyBytes),
		c.Limits.Middleware,
		authn.Middleware(fail),
		ratelimit.Middleware(users, callerKey(auth.KindUser)),
		ratelimit.Middleware(backends, callerKey(auth.KindBackend)),
		timeout(c.RequestTimeout),
		withServed,
		loaders.Middleware,
	))
	if c.GraphiQL.or(!prod) {
		mux.Handle("GET /{$}", browser.GraphiQL(playground.Handler("mkgraph", "/graphql")))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := ready(); err != nil {
			// The reason is an error code or a fixed text, never a secret.
			http.Error(w, "not ready: "+apierr.AsError(err).Code, http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})

	// The chain, outermost first: every request gets a logger, an id, a
	// summary record, one access log line, panic recovery, safe headers and
	// CORS (preflights are answered here, before CSRF and auth).
	return chain(mux,
		hlog.NewHandler(log),
		requestID,
		func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx, _ := reqlog.NewContext(r.Context())
				next.ServeHTTP(w, r.WithContext(ctx))
			})
		},
		m.Middleware,
		hlog.AccessHandler(accessLog),
		recoverer,
		browser.SecurityHeaders,
		cors,
	), nil
}

// callerLimiter limits one kind of caller to perMinute requests a minute,
// with bursts of 10 s worth of requests (a sixth of perMinute): in Redis with rs, else in memory. Its refusals are counted as
// mkgraph_rate_budget_refusals_total{scope="caller"}.
func callerLimiter(rs *redisstore.Client, m *metrics.Metrics, kind string, perMinute int) ratelimit.Limiter {
	burst := max(1, perMinute/6)
	var l ratelimit.Limiter = ratelimit.NewMemory(perMinute, burst)
	if rs != nil {
		l = redisstore.NewLimiter(rs, kind, perMinute, burst)
	}
	return countRefusals{l, m}
}

// countRefusals counts a Limiter's refusals in the metrics.
type countRefusals struct {
	ratelimit.Limiter
	m *metrics.Metrics
}

func (c countRefusals) Allow(ctx context.Context, key string) (time.Duration, bool, error) {
	d, ok, err := c.Limiter.Allow(ctx, key)
	if err == nil && !ok {
		c.m.BudgetRefused(metrics.ScopeCaller)
	}
	return d, ok, err
}

// apqCache is the automatic persisted query store shared through Redis, or
// nil (gqlgen's in-memory LRU) without it or with APQ off.
func apqCache(c *config, rs *redisstore.Client) graphql.Cache[string] {
	if rs == nil || c.APQCacheSize == 0 {
		return nil
	}
	return redisstore.NewAPQ(rs, c.APQCacheSize, redisstore.DefaultAPQTTL)
}

// withServed lets the identity cache record, per request, which answers it
// served stale.
func withServed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, _ := cache.WithServed(r.Context())
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// staleExtensions tells the frontend, in the response's top-level
// extensions, that some identity data is older than the cache's TTL, because
// the upstream failed or refused: {"identityCache": {"stale": true,
// "ageSeconds": N}}, so it can show "as of …".
func staleExtensions(ctx context.Context) map[string]any {
	age, stale := cache.ServedFrom(ctx).AnyStale()
	if !stale {
		return nil
	}
	return map[string]any{"identityCache": map[string]any{"stale": true, "ageSeconds": int(age.Seconds())}}
}

// errForbidden answers a link the caller may not read. It does not say
// whether the link exists.
var errForbidden = &apierr.Error{Code: apierr.CodeForbidden, Message: "You may not read this link."}

// authorize lets the request's caller read only its own links.
func authorize(ctx context.Context, linkID string) error {
	if auth.FromContext(ctx).MayRead(linkID) {
		return nil
	}
	return errForbidden
}

// callerKey keys per-caller rate limits: callers of kind k by their id;
// others ("" ) are not limited by that limiter.
func callerKey(k auth.Kind) func(*http.Request) string {
	return func(r *http.Request) string {
		if c := auth.FromContext(r.Context()); c != nil && c.Kind == k {
			return c.ID()
		}
		return ""
	}
}

// splitList splits a comma-separated setting, dropping blanks.
func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// newAuthenticator builds the authenticator the settings describe; auth off
// with a real upstream is allowed only explicitly, and said loudly.
func newAuthenticator(ctx context.Context, c *config, embedded bool, log zerolog.Logger) (*auth.Authenticator, error) {
	if c.Auth == "none" && !embedded {
		log.Error().Str("MKGRAPH_AUTH", "none").Msg("AUTHENTICATION IS OFF with a real MoneyKit upstream: any caller can read any link's identity data")
	}
	a, err := auth.New(ctx, auth.Config{
		Mode:         c.Auth,
		HS256Secret:  []byte(c.JWTSecret),
		JWKSURL:      c.JWKSURL,
		JWKSFile:     c.JWKSFile,
		Issuer:       c.JWTIssuer,
		Audience:     c.JWTAudience,
		LinksClaim:   c.JWTLinksClaim,
		Leeway:       c.JWTLeeway,
		BackendScope: c.JWTBackendScope,
		APIKeysFile:  c.APIKeysFile,
	})
	if err != nil {
		return nil, &configError{err}
	}
	return a, nil
}

// adminHandler serves what operators need and the public must not reach:
// Prometheus metrics, and pprof when enabled.
func adminHandler(c *config, m *metrics.Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("GET /metrics", m.Handler())
	if c.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// chain wraps h in middleware, the first outermost.
func chain(h http.Handler, mw ...func(http.Handler) http.Handler) http.Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// accessLog writes one line per request. It logs the path but never the
// query string, headers or body: they can hold credentials and identity data.
func accessLog(r *http.Request, status, size int, d time.Duration) {
	s := reqlog.From(r.Context()).Summary()
	ev := hlog.FromRequest(r).Info()
	if status >= 500 {
		ev = hlog.FromRequest(r).Warn()
	}
	ev.Str("method", r.Method).Str("path", r.URL.Path).Int("status", status).Int("size", size).
		Dur("duration", d).Str("operation", s.Operation).Int("upstream_calls", s.UpstreamCalls).
		Strs("error_codes", s.Codes).Msg("request")
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// requestID honours a well-formed incoming X-Request-Id, or makes one, and
// returns it in the response and in every log line of the request.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !requestIDPattern.MatchString(id) {
			id = xid.New().String()
		}
		w.Header().Set("X-Request-Id", id)
		zerolog.Ctx(r.Context()).UpdateContext(func(c zerolog.Context) zerolog.Context {
			return c.Str("request_id", id)
		})
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a panic outside gqlgen's own recovery into a fixed 500.
func recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			graph.LogPanic(hlog.FromRequest(r), p, "panic in handler")
			httperr.Write(w, r, http.StatusInternalServerError, &apierr.Error{Code: apierr.CodeInternal, Message: "Internal error."})
		}()
		next.ServeHTTP(w, r)
	})
}

// graphqlHeaders keeps identity answers out of browser and proxy caches and
// labels every answer JSON: gqlgen writes its transport errors without a
// Content-Type.
func graphqlHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(&jsonDefault{ResponseWriter: w}, r)
	})
}

// jsonDefault sets Content-Type: application/json when the handler has not
// set one by the time it writes the header.
type jsonDefault struct {
	http.ResponseWriter
	wrote bool
}

func (w *jsonDefault) WriteHeader(status int) {
	if !w.wrote {
		w.wrote = true
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *jsonDefault) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *jsonDefault) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// bodyLimit reads at most max bytes of a request body and refuses a larger
// one with 413 and facade.query_too_large before any parsing.
func bodyLimit(maxBytes int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > maxBytes {
				writeTooLarge(w, r, maxBytes)
				return
			}
			if r.Body != nil && r.Body != http.NoBody {
				// Size the buffer from Content-Length when given: growing
				// it by doubling costs several copies of a large body.
				buf := bytes.NewBuffer(make([]byte, 0, min(max(r.ContentLength, 0), maxBytes+1)+bytes.MinRead))
				_, err := buf.ReadFrom(io.LimitReader(r.Body, maxBytes+1))
				body := buf.Bytes()
				if err != nil {
					httperr.Write(w, r, http.StatusBadRequest, &apierr.Error{Code: apierr.CodeBadRequest, Message: "The request body could not be read."})
					return
				}
				if int64(len(body)) > maxBytes {
					writeTooLarge(w, r, maxBytes)
					return
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			next.ServeHTTP(w, r)
		})
	}
}

func writeTooLarge(w http.ResponseWriter, r *http.Request, max int64) {
	httperr.Write(w, r, http.StatusRequestEntityTooLarge, &apierr.Error{Code: apierr.CodeQueryTooLarge,
		Message: fmt.Sprintf("The request body is larger than %d bytes.", max)})
}

// timeout bounds each GraphQL request; the upstream calls it makes inherit
// the deadline and are cancelled when the client goes away.
func timeout(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// stdLogger adapts zerolog for http.Server's own errors (bad TLS, broken
// connections); zerolog.Logger is an io.Writer.
func stdLogger(log zerolog.Logger) *stdlog.Logger {
	return stdlog.New(log.With().Str("component", "http.Server").Logger(), "", 0)
}

// startSandbox serves the embedded sandbox on a loopback port, so the client
// talks to it over real HTTP exactly as to MoneyKit.
func startSandbox(latency time.Duration) (baseURL string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("start sandbox: %w", err)
	}
	srv := &http.Server{Handler: sandbox.New(sandbox.Options{Latency: latency}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// runSandbox serves only the sandbox, for other tools and load tests. It
// reads the MKGRAPH_LOG_* and MKGRAPH_SANDBOX_LATENCY settings and nothing
// else: the MoneyKit settings are the facade's, not the sandbox's.
func runSandbox(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	c, err := parseConfig("mkgraph sandbox", nil, func(k string) string {
		if strings.HasPrefix(k, "MKGRAPH_LOG_") || k == "MKGRAPH_SANDBOX_LATENCY" {
			return getenv(k)
		}
		return ""
	}, stdout)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("mkgraph sandbox", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:8081", "listen address")
	latency := fs.Duration("latency", c.SandboxLatency, "latency added to each identity call (env MKGRAPH_SANDBOX_LATENCY)")
	faults := fs.String("faults", "", `misbehave on a share of identity calls, e.g. "503=0.2,hang=0.05" (kinds: 429 500 502 503 504 hang reset html truncate oversize drip slow)`)
	seed := fs.Uint64("seed", 1, "seed of the fault draws, for reproducible runs")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &configError{err}
	}
	rules, err := sandbox.ParseRandomFaults(*faults)
	if err != nil {
		return &configError{fmt.Errorf("sandbox -faults: %w", err)}
	}
	log := newLogger(c, stdout)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return &configError{fmt.Errorf("sandbox -addr: %w", err)}
	}
	sbx := sandbox.New(sandbox.Options{Latency: *latency})
	sbx.SetRandomFaults(*seed, rules)
	srv := &http.Server{Handler: sbx, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info().Str("addr", ln.Addr().String()).Str("client_id", sandbox.DefaultClientID).Dur("latency", *latency).Str("faults", *faults).
		Msg("sandbox listening; its client secret is in the README")
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
