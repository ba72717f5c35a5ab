package edge

import (
	"context"
	"net/http"
	"time"
)

// Timeout bounds each request; the upstream calls it makes inherit the
// deadline and are cancelled when the client goes away.
func Timeout(d time.Duration) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}
