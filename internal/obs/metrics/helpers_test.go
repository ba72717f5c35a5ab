package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mkgraph/mkgraph/internal/obs/reqlog"
)

// withRecord attaches a reqlog record, as server.go's chain does outside the
// metrics middleware.
func withRecord(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, _ := reqlog.NewContext(r.Context())
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// fakeGraphQL answers like the GraphQL handler would as far as metrics can
// tell: it records the operation name and codes given in the query string
// and answers the given status.
func fakeGraphQL(t *testing.T, m *Metrics) http.Handler {
	t.Helper()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := reqlog.From(r.Context())
		q := r.URL.Query()
		rec.SetOperation(q.Get("op"))
		for _, c := range q["code"] {
			rec.AddCode(c)
		}
		if got := testutil.ToFloat64(m.inFlight); got < 1 {
			t.Errorf("in flight during a request = %v, want >= 1", got)
		}
		if s := q.Get("status"); s != "" {
			var code int
			fmt.Sscan(s, &code)
			w.WriteHeader(code)
		}
		io.WriteString(w, "{}")
	})
}

// newServer serves fakeGraphQL on every path behind the metrics middleware.
func newServer(t *testing.T, m *Metrics) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(withRecord(m.Middleware(fakeGraphQL(t, m))))
	t.Cleanup(srv.Close)
	return srv
}

func mustGet(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
