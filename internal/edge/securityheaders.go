package edge

import "net/http"

// APICSP is the Content-Security-Policy of every response but the GraphiQL
// page: the facade serves JSON and plain text, never a document that should
// load, run or frame anything, so a response a browser is tricked into
// rendering (an error echoing input, say) can do nothing.
const APICSP = "default-src 'none'; frame-ancestors 'none'"

// permissionsPolicy switches off the powerful features a page of this origin
// could ask for. Only features that browsers recognise are listed: an
// unknown one earns a console warning on every response.
const permissionsPolicy = "accelerometer=(), autoplay=(), camera=(), display-capture=(), encrypted-media=(), " +
	"fullscreen=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), midi=(), payment=(), " +
	"picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), usb=(), xr-spatial-tracking=()"

// hstsValue asks browsers to use HTTPS only for a year. It leaves out
// includeSubDomains and preload on purpose: those bind every other host of
// the domain, which is not this service's decision.
const hstsValue = "max-age=31536000"

// SecurityHeaders sets, on every response (404s, errors and refusals by
// later middleware included, because they are set before next runs):
//   - X-Content-Type-Options: nosniff, so JSON is never sniffed as HTML or
//     script;
//   - Referrer-Policy: no-referrer;
//   - X-Frame-Options: DENY and CSP frame-ancestors 'none', against
//     clickjacking (the first for browsers older than CSP 2);
//   - Cross-Origin-Opener-Policy: same-origin, so a page that opens ours gets
//     no window handle into it;
//   - Cross-Origin-Resource-Policy: same-origin, so another site cannot load
//     our answers through <script> or <img> (no-cors requests: Spectre-style
//     reads into its process). It does not affect CORS: the fetch standard
//     checks CORP only for no-cors requests, so allowlisted origins still
//     read answers with fetch(); GraphiQL's page loads its files from this
//     origin, which same-origin allows;
//   - Permissions-Policy denying cameras, microphones, geolocation, payment
//     and the like;
//   - Strict-Transport-Security, only when the request came over TLS to this
//     server (r.TLS != nil): HSTS sent over plain HTTP is ignored, and a TLS
//     terminating proxy in front must set it itself — trusting
//     X-Forwarded-Proto from anyone would let a client choose our headers;
//   - Content-Security-Policy: APICSP. A handler that serves a document sets
//     its own afterwards, as GraphiQL does (Header().Set replaces this one).
//
// The values are shared by every response (a Set per header allocated a
// slice each, on every request): each has length and capacity 1, so a later
// Set replaces it and an Add copies it, and nothing writes into it.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for _, kv := range securityHeaders {
			h[kv.key] = kv.value
		}
		if r.TLS != nil {
			h["Strict-Transport-Security"] = hsts
		}
		next.ServeHTTP(w, r)
	})
}

// securityHeaders are the headers SecurityHeaders sets, canonical keys.
var securityHeaders = []struct {
	key   string
	value []string
}{
	{"X-Content-Type-Options", one("nosniff")},
	{"Referrer-Policy", one("no-referrer")},
	{"X-Frame-Options", one("DENY")},
	{"Cross-Origin-Opener-Policy", one("same-origin")},
	{"Cross-Origin-Resource-Policy", one("same-origin")},
	{"Permissions-Policy", one(permissionsPolicy)},
	{"Content-Security-Policy", one(APICSP)},
}

var hsts = one(hstsValue)

// one is a header value of capacity 1, safe to share (see SecurityHeaders).
func one(v string) []string { return []string{v}[:1:1] }
