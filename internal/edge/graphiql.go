package edge

import "net/http"

// GraphiQLCSP is the Content-Security-Policy of the GraphiQL page and its
// assets (internal/graphiql), all served from this origin: it names no
// other host.
//
//   - script-src 'self': the bundle's one script; the page has no inline
//     script (its configuration is JSON in a data attribute), so neither
//     'unsafe-inline' nor a hash. No 'unsafe-eval'.
//   - worker-src 'self': Monaco's editor, JSON and GraphQL workers, files of
//     the bundle.
//   - style-src 'self' 'unsafe-inline': the bundle's stylesheet, and the
//     <style> elements that Monaco and GraphiQL's dialogs (Radix UI, through
//     react-style-singleton) insert at run time with no nonce we could give
//     them; a hash cannot name those. Inline CSS cannot run script, and the
//     url() exfiltration it could attempt is closed by img-src, font-src and
//     connect-src.
//   - font-src 'self' data:: the fonts are data: URLs in the stylesheet
//     (Roboto, Fira Code, Monaco's codicons) or files of the bundle.
//   - img-src 'self' data:: the favicon (data:) and CSS-embedded icons.
//   - connect-src 'self': the page only talks to /graphql on this origin
//     (no subscriptions).
//   - frame-ancestors 'none', base-uri 'none', form-action 'none', and
//     default-src 'none' for everything else (objects, frames, manifests).
//
// The browser test (graphiql_browser_test.go) runs GraphiQL under this
// policy and fails on any violation it reports.
const GraphiQLCSP = "default-src 'none'; " +
	"script-src 'self'; " +
	"worker-src 'self'; " +
	"style-src 'self' 'unsafe-inline'; " +
	"font-src 'self' data:; " +
	"img-src 'self' data:; " +
	"connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// GraphiQL serves h (the GraphiQL page or its assets) with GraphiQLCSP in
// place of the APICSP that SecurityHeaders sets. Caching is h's business:
// the page is not cached, the content-hashed assets are, for a year.
func GraphiQL(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", GraphiQLCSP)
		h.ServeHTTP(w, r)
	})
}
