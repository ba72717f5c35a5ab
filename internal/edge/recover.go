package edge

import (
	"net/http"

	"github.com/rs/zerolog/hlog"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/edge/httperr"
	"github.com/mkgraph/mkgraph/internal/obs/reqlog"
)

// Recover turns a panic outside gqlgen's own recovery into a fixed 500
// facade.internal: the panic value never reaches the client.
func Recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			reqlog.LogPanic(hlog.FromRequest(r), p, "panic in handler")
			httperr.Write(w, r, http.StatusInternalServerError, apierr.New(apierr.CodeInternal, 0, nil))
		}()
		next.ServeHTTP(w, r)
	})
}
