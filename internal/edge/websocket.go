package edge

import (
	"net/http"
	"strings"
)

// IsWebSocketUpgrade reports whether r is a WebSocket opening handshake: a
// GET whose Connection header lists "upgrade" and whose Upgrade header
// lists "websocket" (any case, any of several values or comma-separated
// parts). It is the one test of the server's: CSRF lets such a request
// through, the server routes it past the HTTP-only middleware (auth comes
// in connection_init), and graph's WebSocket transport serves it.
func IsWebSocketUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && headerHasToken(r.Header, "Connection", "upgrade") &&
		headerHasToken(r.Header, "Upgrade", "websocket")
}

// headerHasToken reports whether a value of h's header name, or a
// comma-separated part of one, is token, case-insensitively.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}
