package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Incremental delivery (@defer), in the format of the 2022-08-24 draft that
// Apollo Client (Defer20220824Handler) and urql speak: an initial payload
// {"data":…,"hasNext":true}, then subsequent payloads
// {"incremental":[{"data":…,"path":[…],"label":…,"errors":[…]}],"hasNext":…}.
//
// How the payloads travel depends on the request's Accept header:
//   - multipart/mixed (deferSpec=20220824, or no deferSpec): one part each,
//     boundary "-";
//   - text/event-stream (GraphQL over SSE, distinct connections mode): one
//     "next" event each, then "complete";
//   - anything else: the payloads are merged into one ordinary JSON answer
//     (data at their paths, errors appended, no hasNext), identical to what
//     the same operation without @defer answers.
//
// gqlgen runs each deferred fragment on a goroutine of its own, which hands
// its payload over when the transport asks for the next one; a payload that
// finds its context ended is dropped, and the transport, already waiting for
// it, would wait forever. So the operation runs under a context detached from
// the request's cancellation, cancelled only once the last payload has been
// read; the resolvers that load or wait (requestScoped) bind themselves to
// the request's deadline and cancellation again. Delivery returns only once
// every payload has been read, so the request's middleware (loaders,
// deadline, served-stale records) outlives the last one.

// delivery is how an operation's payloads are written.
type delivery int

const (
	deliverJSON      delivery = iota // one JSON answer, deferred payloads merged in
	deliverMultipart                 // multipart/mixed, one part per payload
	deliverSSE                       // text/event-stream, one event per payload
)

const (
	contentTypeMultipart   = `multipart/mixed; boundary="-"; deferSpec=20220824`
	contentTypeEventStream = "text/event-stream"
	// partHeader opens a part: the CRLF before the first delimiter is
	// optional in RFC 2046 and expected by Apollo Client's reader.
	partHeader = "\r\n---\r\nContent-Type: application/json; charset=utf-8\r\n\r\n"
	closeParts = "\r\n-----\r\n"
)

// deliveryFor reads the Accept header: the acceptable type of highest
// quality (the first one on a tie) among multipart/mixed, text/event-stream
// and the JSON types. A multipart/mixed with a deferSpec other than
// 20220824 is a format this server does not speak.
func deliveryFor(r *http.Request) delivery {
	accept := r.Header.Get("Accept")
	if !strings.Contains(accept, "multipart/mixed") && !strings.Contains(accept, contentTypeEventStream) {
		return deliverJSON // the common case, without parsing
	}
	best, bestQ := deliverJSON, -1.0
	for part := range strings.SplitSeq(accept, ",") {
		mediaType, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(s, 64); err != nil {
				continue
			}
		}
		if q <= 0 {
			continue
		}
		var d delivery
		switch mediaType {
		case "multipart/mixed":
			if spec, ok := params["deferspec"]; ok && spec != "20220824" {
				continue
			}
			d = deliverMultipart
		case contentTypeEventStream:
			d = deliverSSE
		case contentTypeJSON, contentTypeGraphQLResponse, "application/*", "*/*":
			d = deliverJSON
		default:
			continue
		}
		if q > bestQ {
			best, bestQ = d, q
		}
	}
	return best
}

// deliver runs the operation rc and writes its answer to w, in the form
// deliveryFor chooses. An operation that cannot hold @defer asked for JSON
// takes the one-response path of the transport, unchanged.
func deliver(ctx context.Context, w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor, rc *graphql.OperationContext) {
	how := deliveryFor(r)
	if how == deliverJSON && !strings.Contains(rc.RawQuery, "defer") {
		responses, ctx := exec.DispatchOperation(ctx, rc)
		writeResponse(w, responses(ctx))
		return
	}
	ctx, cancel := detach(ctx)
	defer cancel()
	responses, ctx := exec.DispatchOperation(ctx, rc)
	s := &payloads{ctx: ctx, next: responses}
	defer s.drain()
	switch how {
	case deliverMultipart:
		s.writeStream(w, contentTypeMultipart, partHeader, "", closeParts)
	case deliverSSE:
		s.writeStream(w, contentTypeEventStream, "event: next\ndata: ", "\n\n", "event: complete\ndata:\n\n")
	default:
		writeResponse(w, s.merged(rc))
	}
}

// scopeKey holds, in a detached operation's context, the request's context.
type scopeKey struct{}

// detach returns a context with ctx's values but not its cancellation or
// deadline, cancelled by the returned function.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	d, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return context.WithValue(d, scopeKey{}, ctx), cancel
}

// requestScoped binds a resolver's context to the request's deadline and
// cancellation when the operation runs detached (see detach); otherwise it
// returns ctx. done must be called when the resolver returns.
func requestScoped(ctx context.Context) (_ context.Context, done func()) {
	req, ok := ctx.Value(scopeKey{}).(context.Context)
	if !ok {
		return ctx, func() {}
	}
	cancelDeadline := context.CancelFunc(func() {})
	if d, ok := req.Deadline(); ok {
		ctx, cancelDeadline = context.WithDeadline(ctx, d)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(req, func() { cancel(context.Cause(req)) })
	return ctx, func() {
		stop()
		cancel(nil)
		cancelDeadline()
	}
}

// payloads reads an operation's responses: the initial one, then one per
// deferred fragment until one says hasNext false.
type payloads struct {
	ctx  context.Context
	next graphql.ResponseHandler
	done bool
}

// read returns the next response, or nil after the last.
func (s *payloads) read() *graphql.Response {
	if s.done {
		return nil
	}
	resp := s.next(s.ctx)
	if resp == nil || resp.HasNext == nil || !*resp.HasNext {
		s.done = true
	}
	return resp
}

// drain reads what a failed write left unread, so that no deferred fragment
// outlives the request (its resolvers end with the request's context).
func (s *payloads) drain() {
	for s.read() != nil {
	}
}

// merged reads every response and merges them into one.
func (s *payloads) merged(rc *graphql.OperationContext) *graphql.Response {
	first := s.read()
	if first == nil {
		return &graphql.Response{Errors: gqlerror.List{{Message: "The operation gave no answer.", Extensions: map[string]any{"code": "facade.internal"}}}}
	}
	if s.done {
		first.HasNext = nil
		return first
	}
	m := newMerger(rc, first.Data)
	out := &graphql.Response{Errors: first.Errors, Extensions: first.Extensions}
	for resp := s.read(); resp != nil; resp = s.read() {
		m.add(resp)
		out.Errors = append(out.Errors, resp.Errors...)
		out.Extensions = mergeExtensions(out.Extensions, resp.Extensions)
	}
	out.Data = m.bytes()
	return out
}

// incrementalItem is one deferred fragment's payload in a subsequent
// payload.
type incrementalItem struct {
	Data   json.RawMessage `json:"data"`
	Path   []any           `json:"path"`
	Label  string          `json:"label,omitempty"`
	Errors gqlerror.List   `json:"errors,omitempty"`
}

// subsequent is a payload after the initial one.
type subsequent struct {
	Incremental []incrementalItem `json:"incremental,omitempty"`
	HasNext     bool              `json:"hasNext"`
	Extensions  map[string]any    `json:"extensions,omitempty"`
}

// writeStream writes each payload between before and after, flushed, and
// end after the last. A fragment whose parent object has not been sent yet
// (a fragment deferred inside another may finish first) waits for it; one
// whose parent is null is sent, at the end, with null data and its errors.
func (s *payloads) writeStream(w http.ResponseWriter, contentType, before, after, end string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Del("Content-Length")
	h.Set("X-Accel-Buffering", "no") // proxies must not hold parts back
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	var buf bytes.Buffer
	write := func(payload []byte) bool {
		buf.Reset()
		buf.WriteString(before)
		buf.Write(payload) // json.Marshal's: HTML characters escaped, as writeResponse does
		buf.WriteString(after)
		if _, err := w.Write(buf.Bytes()); err != nil {
			return false
		}
		_ = rc.Flush() // a writer that cannot flush gets everything at the end
		return true
	}

	first := s.read()
	if first == nil {
		first = &graphql.Response{}
	}
	var m *merger
	if !s.done {
		m = newMerger(nil, first.Data)
	}
	if !write(mustMarshal(first)) {
		return
	}
	var held []*graphql.Response
	for !s.done {
		resp := s.read()
		if resp == nil {
			break
		}
		var p subsequent
		p.HasNext = !s.done
		add := func(r *graphql.Response) {
			p.Incremental = append(p.Incremental, incrementalItem{Data: dataOrNull(r.Data), Path: pathOf(r), Label: r.Label, Errors: r.Errors})
			p.Extensions = mergeExtensions(p.Extensions, r.Extensions)
		}
		if m.add(resp) {
			add(resp)
			// What was held for this one's data can follow it now.
			for progress := true; progress; {
				progress = false
				for i, h := range held {
					if h != nil && m.add(h) {
						add(h)
						held[i], progress = nil, true
					}
				}
			}
		} else {
			held = append(held, resp)
		}
		if s.done {
			for _, h := range held {
				if h != nil && len(h.Errors) > 0 {
					h.Data = nil
					add(h)
				}
			}
		}
		if len(p.Incremental) == 0 && p.HasNext {
			continue
		}
		if !write(mustMarshal(p)) {
			return
		}
	}
	w.Write([]byte(end))
	_ = rc.Flush()
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func dataOrNull(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}

// pathOf returns a payload's path as JSON array elements.
func pathOf(r *graphql.Response) []any {
	out := make([]any, len(r.Path))
	for i, el := range r.Path {
		out[i] = el
	}
	return out
}

// mergeExtensions adds b's entries to a (later parts say more: the
// served-stale record grows as fragments load).
func mergeExtensions(a, b map[string]any) map[string]any {
	if len(b) == 0 {
		return a
	}
	if a == nil {
		a = make(map[string]any, len(b))
	}
	for k, v := range b {
		a[k] = v
	}
	return a
}
