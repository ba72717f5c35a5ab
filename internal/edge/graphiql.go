package edge

import "net/http"

// GraphiQLCSP is the Content-Security-Policy of the GraphiQL page that
// gqlgen v0.17.98 serves with playground.Handler(title, "/graphql") and no
// options (any title: it is not part of the script). The page loads React,
// ReactDOM and GraphiQL 4.1.2 from cdn.jsdelivr.net with SRI, and starts
// them with one inline script.
//
//   - script-src: the three files by full URL rather than the host.
//     jsDelivr serves every npm package, so allowing the host would let an
//     injected <script> load any code from it (including libraries known to
//     bypass CSP); the SRI hashes pin the content too. The inline script is
//     static for this endpoint, so it is allowed by its SHA-256 hash, not
//     'unsafe-inline': an injected inline script stays blocked. No
//     'unsafe-eval': GraphiQL's one known need for it (codemirror-graphql
//     calling setTimeout with undefined) was fixed in 2019.
//   - style-src: GraphiQL's stylesheet by URL, Google Fonts' CSS (recent
//     GraphiQL stylesheets @import Roboto and Fira Code from it; without it
//     the page still works, in fallback fonts) and 'unsafe-inline':
//     besides the page's own <style>, GraphiQL's dialogs (Radix UI, through
//     react-style-singleton) insert <style> elements at run time with no
//     nonce we could give them, and a hash cannot name those. Inline CSS
//     cannot run script, and the url() exfiltration it could attempt is
//     closed by img-src, font-src and connect-src.
//   - font-src: Google Fonts' files, and data: for GraphiQL builds that
//     inline their fonts.
//   - img-src 'self' data: for the favicon and CSS-embedded icons.
//   - connect-src 'self': the page only talks to /graphql on this origin.
//   - frame-ancestors 'none', base-uri 'none', form-action 'none', and
//     default-src 'none' for everything else (objects, frames, workers).
//
// Upgrading gqlgen can change the URLs or the inline script; a test renders
// the real page and fails, naming the new hash, when they no longer match.
const GraphiQLCSP = "default-src 'none'; " +
	"script-src 'sha256-DHzfuU9fchlTtO0gbWOCG0nLw4ht9V/6/fd9CZTwztA=' " +
	"https://cdn.jsdelivr.net/npm/react@18.2.0/umd/react.production.min.js " +
	"https://cdn.jsdelivr.net/npm/react-dom@18.2.0/umd/react-dom.production.min.js " +
	"https://cdn.jsdelivr.net/npm/graphiql@4.1.2/graphiql.min.js; " +
	"style-src 'unsafe-inline' https://cdn.jsdelivr.net/npm/graphiql@4.1.2/graphiql.min.css https://fonts.googleapis.com/css2; " +
	"font-src https://fonts.gstatic.com data:; " +
	"img-src 'self' data:; " +
	"connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// GraphiQL serves page (gqlgen's playground.Handler("…", "/graphql")) with
// GraphiQLCSP in place of the APICSP that SecurityHeaders sets, and keeps it
// out of caches so a gqlgen upgrade and its new policy arrive together.
func GraphiQL(page http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", GraphiQLCSP)
		w.Header().Set("Cache-Control", "no-store")
		page.ServeHTTP(w, r)
	})
}
