package limits

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	"github.com/99designs/gqlgen/graphql"

	"github.com/mkgraph/mkgraph/internal/ctxkey"
)

// A POST body is decoded once, by DecodeBody, for both the limits and the
// POST transport (graph/transport.go): the query the limits check is the
// very query gqlgen runs, whatever the body holds (repeated or escaped
// keys, keys in capitals, a BOM, data after the object), since there is
// no second reading of it that could differ.

// Body is a POST body decoded as the POST transport decodes it.
type Body struct {
	// Params is what decoded: all of the request when Err is nil; when Err
	// is a *json.UnmarshalTypeError (a member of the wrong type), the
	// members that did decode. Its ReadTime is set by the reader of the
	// body (Middleware, or the transport).
	Params graphql.RawParams
	Err    error // the decoder's: the body is not a request, and is refused as such
}

// DecodeBody decodes the first JSON value of body into a graphql.RawParams,
// numbers kept as json.Number, as gqlgen's POST transport does; what
// follows that value is not read.
func DecodeBody(body []byte) Body {
	var b Body
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	b.Err = dec.Decode(&b.Params)
	return b
}

// request is what Middleware knows of a request it let through: the body
// it gave next, and whether Body is that body's decoding (not for a GET,
// nor a batch, which the POST transport decodes itself).
type request struct {
	body    bodyReader
	decoded bool
	Body
}

// bodyReader is a body Middleware read, given back to next.
type bodyReader struct{ bytes.Reader }

func (*bodyReader) Close() error { return nil }

var requestKey = ctxkey.New[*request]("limits.request")

// checkedOnly marks a request Middleware let through without a body to
// give back (GET, or a POST without a body).
var checkedOnly = &request{}

// Checked reports whether ctx is a request's that Middleware let through:
// its operation was checked already. (A WebSocket upgrade's context is
// never enough for its messages: each carries its own operation.)
func Checked(ctx context.Context) bool { return requestKey.From(ctx) != nil }

// DecodedBody returns r's body as Middleware decoded it and checked it, if
// it did: the POST transport takes it instead of reading and decoding the
// body again. ok is false when Middleware did not decode this body: r did
// not cross it, or its body is a batch, or r.Body is no longer the body
// Middleware gave next (something in between replaced it, or r is another
// request under the same context).
func DecodedBody(r *http.Request) (b Body, ok bool) {
	q := requestKey.From(r.Context())
	if q == nil || !q.decoded || r.Body != &q.body {
		return Body{}, false
	}
	return q.Body, true
}
