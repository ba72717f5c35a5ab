package edge

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/bufpool"
	"github.com/mkgraph/mkgraph/internal/edge/httperr"
)

// DefaultMaxBodyBytes is the largest GraphQL request body by default.
const DefaultMaxBodyBytes = 1 << 20

// BodyLimit reads at most maxBytes of a request body and refuses a larger
// one with 413 and facade.query_too_large before any parsing.
func BodyLimit(maxBytes int64) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > maxBytes {
				writeTooLarge(w, r, maxBytes)
				return
			}
			if r.Body != nil && r.Body != http.NoBody {
				// Size the buffer from Content-Length when given: growing
				// it by doubling costs several copies of a large body. The
				// buffer is reused once next returns: like the request, the
				// body must not be kept past then.
				buf := bodyBuffers.Get()
				defer bodyBuffers.Put(buf)
				buf.Grow(int(min(max(r.ContentLength, 0), maxBytes+1)) + bytes.MinRead)
				_, err := buf.ReadFrom(io.LimitReader(r.Body, maxBytes+1))
				body := buf.Bytes()
				if err != nil {
					httperr.Write(w, r, http.StatusBadRequest, &apierr.Error{Code: apierr.CodeBadRequest, Message: "The request body could not be read."})
					return
				}
				if int64(len(body)) > maxBytes {
					writeTooLarge(w, r, maxBytes)
					return
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// bodyBuffers are request bodies' buffers, reused.
var bodyBuffers = bufpool.New(64 << 10)

func writeTooLarge(w http.ResponseWriter, r *http.Request, max int64) {
	httperr.Write(w, r, http.StatusRequestEntityTooLarge, &apierr.Error{Code: apierr.CodeQueryTooLarge,
		Message: fmt.Sprintf("The request body is larger than %d bytes.", max)})
}
