package graph

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

// Subscriptions over GraphQL over SSE, distinct connections mode: a POST
// with Accept: text/event-stream is answered with one "next" event per
// event, then "complete" when the subscription ends (a refusal is one "next"
// with its errors, then "complete"); a comment line every KeepAlive keeps
// proxies from closing an idle stream. On shutdown the stream ends without
// "complete", which clients read as a lost connection and retry.

const msgSubscriptionOverHTTP = "Subscriptions are served over WebSocket (graphql-transport-ws) or with Accept: text/event-stream."

// streamParentKey holds the request's context before the request timeout.
type streamParentKey struct{}

// StreamContext remembers the request's context as it is when it runs, so
// that a subscription over SSE, which runs past the request timeout (a
// later middleware), can still end when the client goes away. Put it before
// the timeout middleware.
func StreamContext(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), streamParentKey{}, r.Context())))
	})
}

// streamScope returns ctx's values without its deadline, cancelled when the
// request's context before the timeout ends (the client left), or by cancel.
func streamScope(ctx context.Context) (context.Context, context.CancelFunc) {
	parent, _ := ctx.Value(streamParentKey{}).(context.Context)
	if parent == nil {
		return context.WithCancel(ctx)
	}
	out, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(parent, cancel)
	return out, func() { stop(); cancel() }
}

// errTokenExpired ends the streams of a caller whose token expired.
var errTokenExpired = &apierr.Error{Code: apierr.CodeUnauthenticated, Message: "Token expired."}

// streamExpiry ends an SSE subscription when its caller's credential
// expires (HandlerConfig.Expires): streamScope drops the request's
// deadline, so that a stream outlives the request timeout, not its token.
// The stream's last "next" says why (facade.unauthenticated), then
// "complete". A WebSocket ends as a whole then instead (transport_ws.go).
func streamExpiry(expires func(context.Context) time.Time) graphql.OperationMiddleware {
	return func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		oc := graphql.GetOperationContext(ctx)
		if oc.Operation == nil || oc.Operation.Operation != ast.Subscription {
			return next(ctx)
		}
		if c := streamConnFrom(ctx); c != nil && c.ws {
			return next(ctx)
		}
		exp := expires(ctx)
		switch {
		case exp.IsZero():
			return next(ctx)
		case !time.Now().Before(exp):
			return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{presentError(ctx, errTokenExpired)}})
		}
		ctx, cancel := context.WithDeadlineCause(ctx, exp, errTokenExpired)
		h := next(ctx)
		return func(rctx context.Context) *graphql.Response {
			resp := h(rctx)
			if resp == nil {
				// Said before the stream is told it ended, so that its
				// writer finds the error.
				if context.Cause(ctx) == errTokenExpired {
					streamError(ctx, presentError(ctx, errTokenExpired))
				}
				cancel()
			}
			return resp
		}
	}
}

// deliverSubscription runs a subscription and writes its events as SSE.
func (s *Subscriptions) deliverSubscription(ctx context.Context, w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor, rc *graphql.OperationContext) {
	contentType := responseContentType(r)
	if deliveryFor(r) != deliverSSE {
		writeRefusal(ctx, w, exec, contentType, http.StatusBadRequest, apierr.CodeBadRequest, msgSubscriptionOverHTTP)
		return
	}
	c := s.open(false, nil, r.RemoteAddr)
	if c == nil {
		w.Header().Set("Retry-After", strconv.Itoa(5))
		writeRefusal(ctx, w, exec, contentType, http.StatusServiceUnavailable, apierr.CodeSubscriptionsUnavailable, msgWSFull)
		return
	}
	defer c.close()
	ctx, cancel := streamScope(ctx)
	defer cancel()
	c.mu.Lock()
	c.cancel = cancel
	ended := c.ended
	c.mu.Unlock()
	if ended {
		return
	}
	st := &sseState{}
	ctx = context.WithValue(withStreamConn(ctx, c), sseStateKey{}, st)

	// opCtx is the operation's: it ends with the stream, or earlier when
	// the caller's token expires (streamExpiry), when the producer finds
	// the end of the events and the stream still completes.
	responses, opCtx := exec.DispatchOperation(ctx, rc)

	ctl := http.NewResponseController(w)
	_ = ctl.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	_ = ctl.SetReadDeadline(time.Time{})  // and its read timeout (which would end the request's context)
	h := w.Header()
	h.Set("Content-Type", contentTypeEventStream)
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = ctl.Flush()

	// The executor reuses its buffer for the next event's data: each event
	// is encoded before the next is asked for.
	next := make(chan []byte)
	go func() {
		defer close(next)
		for {
			resp := responses(opCtx)
			if resp == nil {
				return
			}
			select {
			case next <- sseEvent(resp):
			case <-ctx.Done():
				return
			}
		}
	}()
	write := func(b []byte) bool {
		if _, err := w.Write(b); err != nil {
			cancel()
			return false
		}
		_ = ctl.Flush()
		return true
	}
	tick := time.NewTicker(s.cfg.KeepAlive)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-next:
			if !ok {
				if c.wasEnded() {
					return // shutdown: no complete, the client reconnects
				}
				st.mu.Lock()
				errs := st.errs
				st.mu.Unlock()
				if len(errs) > 0 && !write(sseEvent(&graphql.Response{Errors: errs})) {
					return
				}
				write([]byte("event: complete\ndata:\n\n"))
				return
			}
			if !write(ev) {
				return
			}
		case <-tick.C:
			if !write([]byte(":\n\n")) {
				return
			}
		case <-ctx.Done():
			// Client gone or shutdown; drain the producer.
			for range next {
			}
			return
		}
	}
}

// sseEvent is resp as a "next" event.
func sseEvent(resp *graphql.Response) []byte {
	var buf bytes.Buffer
	buf.WriteString("event: next\ndata: ")
	buf.Write(mustMarshal(resp))
	buf.WriteString("\n\n")
	return buf.Bytes()
}
