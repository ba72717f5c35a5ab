package edge

import (
	"net/http"
	"time"

	"github.com/rs/zerolog/hlog"

	"github.com/mkgraph/mkgraph/internal/obs/reqlog"
)

// AccessLog writes one line per request, for hlog.AccessHandler. It logs the
// path but never the query string, headers or body: they can hold
// credentials and identity data.
func AccessLog(r *http.Request, status, size int, d time.Duration) {
	s := reqlog.From(r.Context()).Summary()
	ev := hlog.FromRequest(r).Info()
	if status >= 500 {
		ev = hlog.FromRequest(r).Warn()
	}
	ev.Str("method", r.Method).Str("path", r.URL.Path).Int("status", status).Int("size", size).
		Dur("duration", d).Str("operation", s.Operation).Int("upstream_calls", s.UpstreamCalls).
		Strs("error_codes", s.Codes).Msg("request")
}
