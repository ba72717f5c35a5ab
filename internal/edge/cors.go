package edge

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/cors"
	"golang.org/x/net/http/httpguts"
)

// DefaultCORSMaxAge is how long a browser may cache a preflight answer:
// long enough to spare a round trip per request, short enough that removing
// an origin takes effect soon (Chrome caps it at 2 hours anyway).
const DefaultCORSMaxAge = 10 * time.Minute

// maxCORSMaxAge is the longest max age accepted (Firefox's own cap).
const maxCORSMaxAge = 24 * time.Hour

// DefaultCORSHeaders are the request headers a listed origin may send when
// CORSConfig.Headers is empty: what the facade reads (Content-Type, Accept,
// Authorization, X-Api-Key, X-Request-Id), what CSRF accepts
// (Apollo-Require-Preflight, X-Apollo-Operation-Name, X-Requested-With),
// what Apollo Client sends (apollographql-client-name,
// apollographql-client-version) and the W3C trace context and baggage that
// OpenTelemetry's browser SDKs add (traceparent, tracestate, baggage).
var DefaultCORSHeaders = []string{
	"Content-Type", "Accept", "Authorization", "X-Api-Key", "X-Request-Id",
	"Apollo-Require-Preflight", "X-Apollo-Operation-Name", "X-Requested-With",
	"Apollographql-Client-Name", "Apollographql-Client-Version",
	"Traceparent", "Tracestate", "Baggage",
}

// CORSConfig says which browser origins may call the facade.
type CORSConfig struct {
	// Origins are exact origins (MKGRAPH_CORS_ORIGINS), see CORS.
	Origins []string
	// Headers are the request headers allowed in preflights
	// (MKGRAPH_CORS_HEADERS), matched case-insensitively; each must be an
	// HTTP token, "*" is refused. Empty (after dropping blank entries):
	// DefaultCORSHeaders.
	Headers []string
	// MaxAge is Access-Control-Max-Age (MKGRAPH_CORS_MAX_AGE), in whole
	// seconds, at most 24 h. 0: DefaultCORSMaxAge; negative: preflights are
	// not cached (Access-Control-Max-Age: 0).
	MaxAge time.Duration
	// LocalhostAnyPort also allows http://localhost:<port> and
	// http://127.0.0.1:<port> for every port (and without one): a frontend
	// dev server (Vite on :5173, Next on :3000 …) calling a facade over the
	// embedded sandbox. The facade sets it only with the sandbox, never in
	// production or with a real MoneyKit: any local process could otherwise
	// read identity data with the user's credentials.
	LocalhostAnyPort bool
}

// CORSPolicy is a checked CORSConfig: what is allowed, for the start-up log,
// and the middleware that enforces it.
type CORSPolicy struct {
	Origins          []string // exact origins, as listed
	Headers          []string // allowed request headers, lowercase
	MaxAge           time.Duration
	LocalhostAnyPort bool

	mw func(http.Handler) http.Handler
}

// Middleware wraps next in the policy's CORS handling.
func (p *CORSPolicy) Middleware(next http.Handler) http.Handler { return p.mw(next) }

// CORS returns middleware that lets the listed origins read the facade's
// answers from a browser, credentials (cookies, Authorization) included, and
// no other origin; it is NewCORS with only Origins set. Each origin is exact,
// as a browser sends it in Origin: "scheme://host[:port]", lowercase, http
// or https, without path or default port. A malformed entry, "*", "null" or
// a wildcard is an error naming MKGRAPH_CORS_ORIGINS: with credentials, a
// wildcard or "null" (sandboxed frames, file: pages) would hand identity
// data to any page.
//
// A listed origin gets Access-Control-Allow-Origin echoing it,
// Access-Control-Allow-Credentials: true, and for preflights the methods GET,
// POST and OPTIONS, the request headers of CORSConfig.Headers
// (DefaultCORSHeaders by default), and a max age of 10 minutes by default;
// X-Request-Id and Retry-After are exposed to scripts. Any other origin gets
// no CORS header, and its preflight is answered 204 without them, so the
// browser refuses. Preflights stop here: they carry no credentials and must
// not reach authentication or rate limits.
//
// An empty list (after dropping blank entries), without LocalhostAnyPort,
// returns middleware that adds nothing: same-origin only, and OPTIONS goes
// on to the next handler.
func CORS(origins []string) (func(http.Handler) http.Handler, error) {
	p, err := NewCORS(CORSConfig{Origins: origins})
	if err != nil {
		return nil, err
	}
	return p.Middleware, nil
}

// NewCORS checks cfg and returns its policy; see CORS. Errors name the
// setting at fault and report every bad entry at once.
func NewCORS(cfg CORSConfig) (*CORSPolicy, error) {
	p := &CORSPolicy{LocalhostAnyPort: cfg.LocalhostAnyPort}
	var errs []error
	for _, o := range cfg.Origins {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if err := checkOrigin(o); err != nil {
			errs = append(errs, fmt.Errorf("MKGRAPH_CORS_ORIGINS: %q: %w", o, err))
			continue
		}
		if !slices.Contains(p.Origins, o) {
			p.Origins = append(p.Origins, o)
		}
	}
	for _, h := range cfg.Headers {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if h == "*" || !httpguts.ValidHeaderFieldName(h) {
			errs = append(errs, fmt.Errorf("MKGRAPH_CORS_HEADERS: %q: want a header name (an HTTP token; wildcards are not allowed: credentials are)", h))
			continue
		}
		if h = strings.ToLower(h); !slices.Contains(p.Headers, h) {
			p.Headers = append(p.Headers, h)
		}
	}
	if len(p.Headers) == 0 {
		for _, h := range DefaultCORSHeaders {
			p.Headers = append(p.Headers, strings.ToLower(h))
		}
	}
	switch p.MaxAge = cfg.MaxAge; {
	case p.MaxAge == 0:
		p.MaxAge = DefaultCORSMaxAge
	case p.MaxAge > maxCORSMaxAge:
		errs = append(errs, fmt.Errorf("MKGRAPH_CORS_MAX_AGE: %v: at most %v", p.MaxAge, maxCORSMaxAge))
	case p.MaxAge < 0:
		p.MaxAge = 0
	}
	p.MaxAge = p.MaxAge.Truncate(time.Second)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(p.Origins) == 0 && !p.LocalhostAnyPort {
		// rs/cors reads an empty list as "every origin": never hand it one.
		p.mw = func(next http.Handler) http.Handler { return next }
		return p, nil
	}
	maxAge := int(p.MaxAge / time.Second)
	if maxAge == 0 {
		maxAge = -1 // rs/cors: send "Access-Control-Max-Age: 0"
	}
	exact := make(map[string]bool, len(p.Origins))
	for _, o := range p.Origins {
		exact[o] = true
	}
	localhost := p.LocalhostAnyPort
	c := cors.New(cors.Options{
		// The function replaces AllowedOrigins: exact matches, plus the
		// loopback rule when it is on. It never sees an origin it would
		// allow by a pattern.
		AllowOriginFunc:  func(origin string) bool { return exact[origin] || localhost && isLocalhostOrigin(origin) },
		AllowCredentials: true,
		AllowedMethods:   []string{http.MethodGet, http.MethodPost, http.MethodOptions},
		AllowedHeaders:   p.Headers,
		ExposedHeaders:   []string{"X-Request-Id", "Retry-After"},
		MaxAge:           maxAge,
	})
	p.mw = c.Handler
	return p, nil
}

// isLocalhostOrigin reports whether o is http://localhost or
// http://127.0.0.1, with or without a port (1-65535, as a browser writes
// it: no leading zero, not 80).
func isLocalhostOrigin(o string) bool {
	var rest string
	switch {
	case strings.HasPrefix(o, "http://localhost"):
		rest = o[len("http://localhost"):]
	case strings.HasPrefix(o, "http://127.0.0.1"):
		rest = o[len("http://127.0.0.1"):]
	default:
		return false
	}
	if rest == "" {
		return true
	}
	port, ok := strings.CutPrefix(rest, ":")
	if !ok || port == "" || len(port) > 5 || port[0] == '0' {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535 && n != 80 && strconv.Itoa(n) == port
}

// checkOrigin reports why o is not an origin a browser would send.
func checkOrigin(o string) error {
	if o == "*" || o == "null" || strings.Contains(o, "*") {
		return errors.New("wildcards and null are not allowed: list each origin exactly (credentials are allowed)")
	}
	const want = "want scheme://host[:port], e.g. https://app.example.com"
	u, err := url.Parse(o)
	if err != nil {
		return fmt.Errorf("%s: %w", want, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%s: scheme must be http or https", want)
	}
	if u.Opaque != "" || u.User != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.HasSuffix(o, "#") {
		return errors.New(want + ", with no user, path (not even /), query or fragment")
	}
	host := u.Hostname()
	if host == "" || !validHost(host) {
		return fmt.Errorf("%s: bad host %q (use the punycode form of international names)", want, host)
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || p[0] == '0' {
			return fmt.Errorf("%s: bad port %q", want, p)
		}
		if (u.Scheme == "http" && n == 80) || (u.Scheme == "https" && n == 443) {
			return fmt.Errorf("browsers omit the default port: write %s://%s", u.Scheme, strings.TrimSuffix(u.Host, ":"+p))
		}
	}
	if canon := strings.ToLower(o); canon != o {
		return fmt.Errorf("browsers send origins in lower case: write %s", canon)
	}
	return nil
}

// validHost accepts a DNS name, an IPv4 address or a bracketed IPv6 address
// (url.URL.Hostname strips the brackets) in ASCII.
func validHost(h string) bool {
	if strings.Contains(h, ":") { // IPv6
		for _, c := range h {
			if !(c == ':' || c == '.' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')) {
				return false
			}
		}
		return true
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c == '-' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')) {
				return false
			}
		}
	}
	return true
}
