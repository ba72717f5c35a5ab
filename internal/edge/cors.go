package edge

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rs/cors"
)

// corsMaxAge is how long, in seconds, a browser may cache a preflight
// answer: long enough to spare a round trip per request, short enough that
// removing an origin takes effect soon (Chrome caps it at 2 hours anyway).
const corsMaxAge = 600

// CORS returns middleware that lets the listed origins read the facade's
// answers from a browser, credentials (cookies, Authorization) included, and
// no other origin. Each origin is exact, as a browser sends it in Origin:
// "scheme://host[:port]", lowercase, http or https, without path or default
// port. A malformed entry, "*", "null" or a wildcard is an error naming
// MKGRAPH_CORS_ORIGINS: with credentials, a wildcard or "null" (sandboxed
// frames, file: pages) would hand identity data to any page.
//
// A listed origin gets Access-Control-Allow-Origin echoing it,
// Access-Control-Allow-Credentials: true, and for preflights the methods GET,
// POST and OPTIONS, the request headers Content-Type, Accept, Authorization,
// X-Api-Key, X-Request-Id and those CSRF accepts, and a max age of 10
// minutes; X-Request-Id and Retry-After are exposed to scripts. Any other
// origin gets no CORS header, and its preflight is answered 204 without
// them, so the browser refuses. Preflights stop here: they carry no
// credentials and must not reach authentication or rate limits.
//
// An empty list (after dropping blank entries) returns middleware that adds
// nothing: same-origin only, and OPTIONS goes on to the next handler.
func CORS(origins []string) (func(http.Handler) http.Handler, error) {
	var allowed []string
	var errs []error
	for _, o := range origins {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if err := checkOrigin(o); err != nil {
			errs = append(errs, fmt.Errorf("MKGRAPH_CORS_ORIGINS: %q: %w", o, err))
			continue
		}
		allowed = append(allowed, o)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(allowed) == 0 {
		// rs/cors reads an empty list as "every origin": never hand it one.
		return func(next http.Handler) http.Handler { return next }, nil
	}
	c := cors.New(cors.Options{
		AllowedOrigins:   allowed,
		AllowCredentials: true,
		AllowedMethods:   []string{http.MethodGet, http.MethodPost, http.MethodOptions},
		AllowedHeaders: []string{
			"Content-Type", "Accept", "Authorization", "X-Api-Key", "X-Request-Id",
			"Apollo-Require-Preflight", "X-Apollo-Operation-Name", "X-Requested-With",
		},
		ExposedHeaders: []string{"X-Request-Id", "Retry-After"},
		MaxAge:         corsMaxAge,
	})
	return c.Handler, nil
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
