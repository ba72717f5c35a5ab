package edge

import (
	"net/http"
	"regexp"

	"github.com/rs/xid"
	"github.com/rs/zerolog"
)

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// RequestID honours a well-formed incoming X-Request-Id, or makes one, and
// returns it in the response and in every log line of the request. A
// malformed one is replaced, not echoed: it could forge log lines.
func RequestID(next http.Handler) http.Handler {
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
