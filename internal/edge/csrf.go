package edge

import (
	"net/http"
	"slices"
	"strings"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/edge/httperr"
)

// preflightHeaders are the headers that let a request through CSRF; see
// CSRF's documentation.
var preflightHeaders = []string{"X-Apollo-Operation-Name", "Apollo-Require-Preflight", "X-Requested-With"}

// simpleContentTypes are the Content-Types a browser sends cross-site
// without a preflight (the CORS-safelisted ones: an HTML form can send each).
var simpleContentTypes = []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}

// csrfMessage tells a legitimate client how to get through.
const csrfMessage = "This request has been blocked as a possible cross-site request forgery (CSRF). " +
	"Send it with Content-Type: application/json, or with a non-empty Apollo-Require-Preflight, " +
	"X-Apollo-Operation-Name or X-Requested-With header."

// CSRF refuses the requests a browser could send cross-site without a CORS
// preflight, as Apollo Server's CSRF prevention does. Such a request still
// executes (CORS only hides the answer), so a query sent from a hostile page
// with the user's cookies, or a GET that an <img> tag triggers, must not
// reach the executor at all.
//
// A GET, HEAD or POST is refused with HTTP 400 and facade.csrf_refused unless
// it carries, with a non-empty value, one of these headers (a browser sends
// none of them cross-site without a preflight, which CORS refuses to origins
// not on the allowlist):
//   - X-Apollo-Operation-Name: sent by Apollo Client (web, iOS, Kotlin) with
//     the operation's name;
//   - Apollo-Require-Preflight: any value; what Apollo Server documents for
//     clients with no operation name to send (curl, file uploads);
//   - X-Requested-With: the de facto marker of script-made requests
//     (jQuery, many mobile HTTP stacks);
//
// or a Content-Type other than text/plain, application/x-www-form-urlencoded
// and multipart/form-data (the types an HTML form can send). A missing or
// empty Content-Type is refused. So POST application/json passes, and a GET
// passes with one of the headers, or, as with Apollo Server, with
// Content-Type: application/json (Apollo Client sends it on GETs too; a
// browser cannot attach it cross-site without a preflight). Every other
// method, OPTIONS included, passes: a browser preflights it, and CORS
// decides.
//
// Mutations over GET are not this middleware's business: graph's GET
// transport refuses them (HTTP 405, facade.bad_request), whatever the
// headers.
//
// A WebSocket upgrade (GET with Upgrade: websocket) passes: a browser cannot
// add any header to one, and it sends it cross-site without a preflight, so
// the header rule cannot apply. Its Origin is checked instead, against the
// CORS allowlist (CORSPolicy.AllowsOrigin), by graph's WebSocket transport,
// which serves only subscriptions over it.
func CSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !IsWebSocketUpgrade(r) && sendableCrossSite(r) {
			httperr.Write(w, r, http.StatusBadRequest, &apierr.Error{Code: apierr.CodeCSRFRefused, Message: csrfMessage})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sendableCrossSite reports whether a browser could have sent r from any
// page without asking the server first (a CORS "simple request").
func sendableCrossSite(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		return false
	}
	for _, h := range preflightHeaders {
		if strings.TrimSpace(r.Header.Get(h)) != "" {
			return false
		}
	}
	// Every value and every comma-separated part of one is checked: a
	// browser folds repeated headers into "a, b", and parsers disagree on
	// which part counts. Any simple-looking part makes the request refusable.
	typed := false
	for _, v := range r.Header.Values("Content-Type") {
		for part := range strings.SplitSeq(v, ",") {
			essence := mediaTypeEssence(part)
			if essence == "" {
				continue
			}
			if slices.Contains(simpleContentTypes, essence) {
				return true
			}
			typed = true
		}
	}
	return !typed
}

// mediaTypeEssence returns "type/subtype" of a Content-Type, lowercased,
// cut at the first parameter or blank. It does not use mime.ParseMediaType
// on purpose: that refuses values a browser still reads as text/plain
// ("text/plain; x"), and an error there must never turn a simple request
// into an allowed one. Reading too much as simple only costs a client that
// sends a malformed Content-Type a clear 400.
func mediaTypeEssence(ct string) string {
	ct = strings.TrimSpace(ct)
	if i := strings.IndexAny(ct, "; \t"); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(ct)
}
