package graph

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/mkgraph/mkgraph/graph/limits"
	"github.com/mkgraph/mkgraph/internal/bufpool"
	"github.com/mkgraph/mkgraph/internal/edge/httperr"
)

// postTransport is gqlgen's transport.POST (same requests, same content
// negotiation), writing the response itself, and answering what it cannot
// run with the facade's codes and the statuses of GraphQL over HTTP (see
// writeRequestErrors). gqlgen's writes json.Marshal the response, which
// validates and copies the data gqlgen has just encoded (json.RawMessage is
// compacted): a large share of the CPU of a cached request. Here the data is
// copied once, with json.HTMLEscape doing the only change Marshal would make
// to it (<, >, &, U+2028, U+2029 escaped), so the bytes on the wire are the
// same (TestWriteResponseMatchesMarshal).
type postTransport struct {
	transport.POST
	subs *Subscriptions // subscriptions over SSE
}

var _ graphql.Transport = postTransport{}

const (
	contentTypeJSON            = httperr.ContentTypeJSON
	contentTypeGraphQLResponse = httperr.ContentTypeGraphQLResponse
)

// Do is transport.POST.Do with writeResponse.
func (t postTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	contentType := responseContentType(r)
	w.Header().Set("Content-Type", contentType)

	// The limits middleware decoded the body already, once for both, when
	// r crossed it; otherwise it is read and decoded the same way here.
	body, ok := limits.DecodedBody(r)
	if !ok {
		start := graphql.Now()
		b, err := io.ReadAll(r.Body)
		if err != nil {
			writeBadRequest(ctx, w, exec, contentType, msgUnreadableBody)
			return
		}
		body = limits.DecodeBody(b)
		body.Params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	}
	if body.Err != nil {
		// Neither the decoder's error (Go type names) nor the body (any
		// size, anything) is shown.
		writeBadRequest(ctx, w, exec, contentType, msgNotARequest)
		return
	}
	params := body.Params
	params.Headers = r.Header
	if params.Query == "" && params.Extensions["persistedQuery"] == nil {
		writeBadRequest(ctx, w, exec, contentType, msgNoQuery)
		return
	}

	rc, opErr := exec.CreateOperationContext(ctx, &params)
	if opErr != nil {
		writeRequestErrors(ctx, w, exec, contentType, rc, opErr)
		return
	}
	if rc.Operation != nil && rc.Operation.Operation == ast.Subscription && t.subs != nil {
		t.subs.deliverSubscription(ctx, w, r, exec, rc) // transport_sse.go
		return
	}
	deliver(ctx, w, r, exec, rc) // incremental.go: one answer, or @defer's parts
}

// contentTypes are the two answers' Content-Type values, shared by every
// response (length and capacity 1: a later Set replaces, an Add copies).
var contentTypes = map[string][]string{
	contentTypeJSON:            []string{contentTypeJSON}[:1:1],
	contentTypeGraphQLResponse: []string{contentTypeGraphQLResponse}[:1:1],
}

func setContentType(h http.Header, v string) {
	if shared, ok := contentTypes[v]; ok {
		h["Content-Type"] = shared
		return
	}
	h.Set("Content-Type", v)
}

// responseContentType is the facade's negotiation (httperr.ResponseType):
// application/graphql-response+json when Accept accepts it,
// application/json otherwise.
func responseContentType(r *http.Request) string { return httperr.ResponseType(r) }

// responseBuffers are the answers' buffers, reused; a 500-account answer
// should not pin a megabyte per pooled buffer.
var responseBuffers = bufpool.New(64 << 10)

// writeResponse writes resp as json.Marshal would, without re-encoding its
// data.
func writeResponse(w io.Writer, resp *graphql.Response) {
	if resp.Label != "" || len(resp.Path) > 0 || resp.HasNext != nil {
		// Incremental delivery (@defer) is not used by this schema; should it
		// ever be, Marshal knows how.
		b, err := json.Marshal(resp)
		if err != nil {
			panic(err)
		}
		w.Write(b)
		return
	}
	buf := responseBuffers.Get()
	defer responseBuffers.Put(buf)
	buf.WriteByte('{')
	if len(resp.Errors) > 0 {
		b, err := json.Marshal(resp.Errors)
		if err != nil {
			panic(err)
		}
		buf.WriteString(`"errors":`)
		buf.Write(b)
		buf.WriteByte(',')
	}
	buf.WriteString(`"data":`)
	switch {
	case len(resp.Data) == 0:
		buf.WriteString("null")
	case htmlSafe(resp.Data):
		buf.Write(resp.Data)
	default:
		json.HTMLEscape(buf, resp.Data)
	}
	if len(resp.Extensions) > 0 {
		b, err := json.Marshal(resp.Extensions)
		if err != nil {
			panic(err)
		}
		buf.WriteString(`,"extensions":`)
		buf.Write(b)
	}
	buf.WriteByte('}')
	if rw, ok := w.(http.ResponseWriter); ok {
		// The whole answer is here: say its length (no chunked encoding,
		// one write), unless the header is already out (error paths).
		rw.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	}
	w.Write(buf.Bytes())
}
