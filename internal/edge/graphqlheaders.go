package edge

import "net/http"

// GraphQLHeaders keeps identity answers out of browser and proxy caches and
// labels every answer JSON unless the handler set a Content-Type of its own
// (gqlgen's Options transport, a HEAD, writes none). A header set before next
// runs would not do: gqlgen's GET transport adds its Content-Type, and the
// answer would carry two.
func GraphQLHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Cache-Control"] = noStore
		next.ServeHTTP(&jsonDefault{ResponseWriter: w}, r)
	})
}

// Shared header values (see one).
var noStore, jsonType = one("no-store"), one("application/json")

// jsonDefault sets Content-Type: application/json when the handler has not
// set one by the time it writes the header.
type jsonDefault struct {
	http.ResponseWriter
	wrote bool
}

func (w *jsonDefault) WriteHeader(status int) {
	if !w.wrote {
		w.wrote = true
		if w.Header().Get("Content-Type") == "" {
			w.Header()["Content-Type"] = jsonType
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *jsonDefault) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *jsonDefault) Unwrap() http.ResponseWriter { return w.ResponseWriter }
