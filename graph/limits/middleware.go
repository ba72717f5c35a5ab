package limits

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/edge/httperr"
)

// maxPrealloc bounds the buffer sized from a request's Content-Length.
const maxPrealloc = 8 << 20

// Middleware applies Check to every GraphQL request before gqlgen sees it,
// and answers a refusal with HTTP 400 and the limit's code
// (facade.batching_disabled for a batch it does not take).
//
// It reads the query and operationName of GET requests from the URL, and
// of POST requests from a JSON object body, or from each object of a JSON
// array body (a batch) when MaxBatch allows one. It reads every POST body,
// whatever its Content-Type says: a transport added later must not open a
// way around the limits. The body must already be buffered and capped by
// the server. next gets it back byte for byte, in a buffer that is reused
// once next returns: like the request, it must not be kept past then.
//
// Some requests pass unchecked, because gqlgen does the checking or the
// refusing for them: a request without a query (an automatic persisted
// query sent by hash was checked when it was registered), and a body or
// query string the transports cannot decode (graph answers it with
// facade.bad_request and 400).
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
		var e *apierr.Error
		switch r.Method {
		case http.MethodGet:
			e = g.checkQueryString(r.URL.RawQuery)
		case http.MethodPost:
			if r.Body == nil || r.Body == http.NoBody {
				break
			}
			buf := buffers.Get().(*bytes.Buffer)
			defer putBuffer(buf) // next is done with the body when it returns
			if err := readBody(buf, r); err != nil {
				httperr.Write(w, r, http.StatusBadRequest, &apierr.Error{Code: apierr.CodeBadRequest, Message: "The request body could not be read."})
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(buf.Bytes()))
			e = g.checkBody(buf.Bytes())
		}
		if e != nil {
			httperr.Write(w, r, http.StatusBadRequest, e)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), checkedKey{}, true)))
	})
}

// Request bodies are read into pooled buffers: allocating (and zeroing, and
// collecting) a fresh megabyte for each large body costs more than the
// checks.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooled bounds the buffers kept for reuse.
const maxPooled = 4 << 20

func putBuffer(b *bytes.Buffer) {
	if b.Cap() <= maxPooled {
		b.Reset()
		buffers.Put(b)
	}
}

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

// check is c.Check, remembering the texts that pass. (A function, since
// methods take no type parameters.)
func check[T string | []byte](c *guard, query T, operationName string) *apierr.Error {
	c.checks.Add(1)
	k := passKeyOf(query, operationName)
	if c.passed.has(k) {
		return nil
	}
	e := c.Check(string(query), operationName)
	if e == nil {
		c.passed.add(k)
	}
	return e
}

func (c *guard) checkQueryString(raw string) *apierr.Error {
	q, op, ok := readQueryString(raw)
	if !ok {
		return nil
	}
	if over(minUnescapedLen(q), c.MaxQueryBytes) {
		return tooLarge(c.MaxQueryBytes)
	}
	query, err := url.QueryUnescape(q)
	if err != nil {
		return nil
	}
	operationName, err := url.QueryUnescape(op)
	if err != nil {
		return nil
	}
	return check(c, query, operationName)
}

// checkBody checks a POST body: a request object, or a batch of them.
func (c *guard) checkBody(b []byte) *apierr.Error {
	i := skipSpace(b, 0)
	if i == len(b) {
		return nil
	}
	switch b[i] {
	case '{':
		return c.checkObject(b[i:])
	case '[':
		return c.checkBatch(b[i:])
	}
	return nil
}

// checkObject checks the request object at the start of b.
func (c *guard) checkObject(b []byte) *apierr.Error {
	p, _, large, ok := readObject(b, 0, c.MaxQueryBytes)
	switch {
	case large:
		return tooLarge(c.MaxQueryBytes)
	case !ok:
		return c.checkDecoded(b)
	case p.query == nil:
		return nil
	}
	var operationName string
	if p.operationName != nil {
		if operationName, ok = unquote(p.operationName); !ok {
			return c.checkDecoded(b)
		}
	}
	if raw := p.query[1 : len(p.query)-1]; plain(raw) {
		// The query is the JSON string as it is: no need to copy it.
		if len(raw) == 0 {
			return nil
		}
		return check(c, raw, operationName)
	}
	query, ok := unquote(p.query)
	if !ok {
		return c.checkDecoded(b)
	}
	if query == "" {
		return nil
	}
	return check(c, query, operationName)
}

// checkDecoded decodes the request object at the start of b exactly as
// gqlgen's POST transport does, and checks it. A body it cannot decode is
// gqlgen's to refuse.
func (c *guard) checkDecoded(b []byte) *apierr.Error {
	var p struct {
		Query         string `json:"query"`
		OperationName string `json:"operationName"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil || p.Query == "" {
		return nil
	}
	return check(c, p.Query, p.OperationName)
}

// checkBatch checks a JSON array of request objects: its length first,
// without reading past MaxBatch+1 elements, then each object.
func (c *guard) checkBatch(b []byte) *apierr.Error {
	if c.MaxBatch <= 0 {
		return &apierr.Error{Code: apierr.CodeBatchingDisabled,
			Message: "Batched requests are not accepted: send one operation per request."}
	}
	var starts []int
	i := skipSpace(b, 1)
	if i < len(b) && b[i] != ']' {
		for {
			if len(starts) == c.MaxBatch {
				return batchTooLarge(c.MaxBatch)
			}
			starts = append(starts, i)
			end, ok := skipValue(b, i)
			if !ok {
				return c.checkBatchDecoded(b)
			}
			if i = skipSpace(b, end); i >= len(b) {
				return c.checkBatchDecoded(b)
			}
			if b[i] == ']' {
				break
			}
			if b[i] != ',' {
				return c.checkBatchDecoded(b)
			}
			i = skipSpace(b, i+1)
		}
	}
	for _, s := range starts {
		if b[s] != '{' {
			continue // not a request: whatever runs the batch refuses it
		}
		if e := c.checkObject(b[s:]); e != nil {
			return e
		}
	}
	return nil
}

// checkBatchDecoded checks a batch the fast reader was unsure of, decoded
// with encoding/json.
func (c *guard) checkBatchDecoded(b []byte) *apierr.Error {
	var elems []json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&elems); err != nil {
		return nil
	}
	if len(elems) > c.MaxBatch {
		return batchTooLarge(c.MaxBatch)
	}
	for _, el := range elems {
		if i := skipSpace(el, 0); i < len(el) && el[i] == '{' {
			if e := c.checkDecoded(el[i:]); e != nil {
				return e
			}
		}
	}
	return nil
}

func batchTooLarge(limit int) *apierr.Error {
	return &apierr.Error{Code: apierr.CodeBatchingDisabled,
		Message: fmt.Sprintf("A batched request may hold at most %d operations.", limit)}
}
