// Package edge is the facade's HTTP edge: the middleware every request
// passes before GraphQL sees it, a file per concern (request ids, the access
// log, panic recovery, security headers, CORS, CSRF, the body limit, the
// request deadline) and the GraphiQL policy. Chain composes them; the route
// table in package main lists them in order. Caller identity (auth) and
// per-caller limits (ratelimit) are subpackages; httperr is the one writer
// of pre-execution refusals.
package edge

import "net/http"

// Middleware wraps a handler.
type Middleware = func(http.Handler) http.Handler

// Chain wraps h in mw, the first outermost, so that a route table reads in
// the order a request passes.
func Chain(h http.Handler, mw ...Middleware) http.Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}
