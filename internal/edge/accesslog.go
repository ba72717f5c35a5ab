package edge

import (
	"net/http"
	"time"

	"github.com/rs/zerolog/hlog"

	"github.com/mkgraph/mkgraph/internal/obs/label"
	"github.com/mkgraph/mkgraph/internal/obs/reqlog"
)

// AccessLog writes one line per request, for hlog.AccessHandler. It never
// logs the query string, headers or body: they can hold credentials and
// identity data. The path and operation name are the client's choice, so
// they are logged as the metrics label them (label.Route,
// label.OperationName): the route, or "other" for a path that is none of
// the facade's (it could hold a link id, or be kilobytes long), and the
// operation name, or "other" when it is not a GraphQL name, is over 64
// bytes or looks like an identifier.
func AccessLog(r *http.Request, status, size int, d time.Duration) {
	s := reqlog.From(r.Context()).Summary()
	ev := hlog.FromRequest(r).Info()
	if status >= 500 {
		ev = hlog.FromRequest(r).Warn()
	}
	ev.Str("method", r.Method).Str("path", label.Route(r.URL.Path)).Int("status", status).Int("size", size).
		Dur("duration", d).Str("operation", label.OperationName(s.Operation)).Int("upstream_calls", s.UpstreamCalls).
		Strs("error_codes", s.Codes).Msg("request")
}
