package limits

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/bufpool"
	"github.com/mkgraph/mkgraph/internal/edge/httperr"
)

// maxPrealloc bounds the buffer sized from a request's Content-Length.
const maxPrealloc = 8 << 20

// Middleware applies Check to every GraphQL request before gqlgen sees it,
// and answers a refusal with HTTP 400 and the limit's code
// (facade.batching_disabled for a batch it does not take).
//
// It reads the query and operationName of GET requests from the URL as the
// GET transport does (url.ParseQuery, Values.Get), and of POST requests
// from the body, decoded once by DecodeBody for itself and for the POST
// transport (DecodedBody), or from each request of a JSON array body (a
// batch) when MaxBatch allows one. It reads every POST body, whatever its
// Content-Type says: a transport added later must not open a way around
// the limits. The body must already be buffered and capped by the server.
// next gets it back byte for byte, in a buffer that is reused once next
// returns: like the request, it must not be kept past then.
//
// Some requests pass unchecked, because gqlgen does the checking or the
// refusing for them: a request without a query (an automatic persisted
// query sent by hash was checked when it was registered), and a body or
// query string the transports cannot decode (graph answers it with
// facade.bad_request and 400), though what of it did decode (a query
// beside variables of the wrong type) is checked.
//
// A query text (with its operation name) that passed is remembered, and
// passes again without being checked (see passed.go).
//
// The request's context is marked (Checked), so that the GraphQL handler's
// own check (Guard.Check, for transports this middleware cannot see into,
// such as WebSocket messages) does not check it again.
func (c Config) Middleware(next http.Handler) http.Handler { return c.Guard().Middleware(next) }

// Middleware is Config.Middleware, remembering passed texts in g.
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := g.g
		q := checkedOnly
		var e *apierr.Error
		switch r.Method {
		case http.MethodGet:
			e = g.checkQueryString(r.URL.RawQuery)
		case http.MethodPost:
			if r.Body == nil || r.Body == http.NoBody {
				break
			}
			start := graphql.Now()
			buf := buffers.Get()
			defer buffers.Put(buf) // next is done with the body when it returns
			if err := readBody(buf, r); err != nil {
				httperr.Write(w, r, http.StatusBadRequest, &apierr.Error{Code: apierr.CodeBadRequest, Message: "The request body could not be read."})
				return
			}
			q = &request{}
			defer q.body.Reset(nil) // nothing reads the pooled buffer through q once it is back
			q.body.Reset(buf.Bytes())
			e = g.checkBody(q, buf.Bytes(), start)
		}
		if e != nil {
			httperr.Write(w, r, http.StatusBadRequest, e)
			return
		}
		// The body and its decoding go to next together, in one request:
		// DecodedBody gives the decoding only with this very body.
		r = r.WithContext(requestKey.With(r.Context(), q))
		if q != checkedOnly {
			r.Body = &q.body
		}
		next.ServeHTTP(w, r)
	})
}

// Request bodies are read into pooled buffers: allocating (and zeroing, and
// collecting) a fresh megabyte for each large body costs more than the
// checks.
var buffers = bufpool.New(4 << 20)

// readBody reads all of r.Body into buf, grown first to Content-Length when
// the request gives it.
func readBody(buf *bytes.Buffer, r *http.Request) error {
	if n := r.ContentLength; n > 0 && n <= maxPrealloc {
		buf.Grow(int(n) + bytes.MinRead) // ReadFrom grows a full buffer before it sees EOF
	}
	_, err := io.Copy(buf, r.Body)
	return err
}

// guard is the Config of a Middleware, with the texts that passed it.
type guard struct {
	Config
	passed *passed
	checks atomic.Int64 // texts looked at: remembered or checked
}

// check is c.Check, remembering the texts that pass.
func check(c *guard, query, operationName string) *apierr.Error {
	c.checks.Add(1)
	if over(len(query), c.MaxQueryBytes) {
		return tooLarge(c.MaxQueryBytes) // before hashing it: it may be megabytes
	}
	k := passKeyOf(query, operationName)
	if c.passed.has(k) {
		return nil
	}
	e := c.Check(query, operationName)
	if e == nil {
		c.passed.add(k)
	}
	return e
}

// checkQueryString checks the query and operationName of a GET request's
// query string, found as the GET transport finds them. One that does not
// parse is refused by the transport; what did parse is checked anyway.
func (c *guard) checkQueryString(raw string) *apierr.Error {
	v, _ := url.ParseQuery(raw)
	query := v.Get("query")
	if query == "" {
		return nil
	}
	return check(c, query, v.Get("operationName"))
}

// checkBody checks a POST body, read at start: a request, or a batch of
// them. It keeps a request's decoding in q for the POST transport.
func (c *guard) checkBody(q *request, b []byte, start time.Time) *apierr.Error {
	if t := bytes.TrimLeft(b, jsonSpace); len(t) > 0 && t[0] == '[' {
		return c.checkBatch(t)
	}
	q.Body, q.decoded = DecodeBody(b), true
	q.Params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	return c.checkParams(&q.Params)
}

// jsonSpace is the white space of JSON, which a decoder skips before a value.
const jsonSpace = " \t\r\n"

// checkParams checks a decoded request: its query, if it has one.
func (c *guard) checkParams(p *graphql.RawParams) *apierr.Error {
	if p.Query == "" {
		return nil
	}
	return check(c, p.Query, p.OperationName)
}

// checkBatch checks a JSON array of requests, decoded as DecodeBody decodes
// each: its length first, without decoding past MaxBatch elements, then
// each request. (The POST transport refuses any batch it is given.)
func (c *guard) checkBatch(b []byte) *apierr.Error {
	if c.MaxBatch <= 0 {
		return &apierr.Error{Code: apierr.CodeBatchingDisabled,
			Message: "Batched requests are not accepted: send one operation per request."}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // the '['
		return nil
	}
	var ops []graphql.RawParams
	for dec.More() {
		if len(ops) == c.MaxBatch {
			return batchTooLarge(c.MaxBatch)
		}
		var p graphql.RawParams
		if err := dec.Decode(&p); err != nil {
			if _, ok := err.(*json.UnmarshalTypeError); !ok {
				return nil // malformed: nothing runs
			}
		}
		ops = append(ops, p)
	}
	for i := range ops {
		if e := c.checkParams(&ops[i]); e != nil {
			return e
		}
	}
	return nil
}

func batchTooLarge(limit int) *apierr.Error {
	return &apierr.Error{Code: apierr.CodeBatchingDisabled,
		Message: fmt.Sprintf("A batched request may hold at most %d operations.", limit)}
}
