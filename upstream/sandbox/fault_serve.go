package sandbox

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// dripChunk is the size of the chunks Fault.Drip writes.
const dripChunk = 16

// paddingField is the unknown field Fault.Oversize adds.
const paddingField = "sandbox_padding"

// serveFault answers an identity call as f; real is the call's answer
// without a fault.
func serveFault(w http.ResponseWriter, r *http.Request, f Fault, real func() reply) {
	ctx := r.Context()
	if !sleep(ctx, f.Latency) {
		return // the client has gone
	}
	switch {
	case f.Reset:
		resetConnection(w)
		return
	case f.Hang:
		<-ctx.Done()
		return
	}
	rp := f.reply(real)
	if f.Drip > 0 {
		drip(ctx, w, rp, f.Drip)
		return
	}
	rp.write(w)
}

// reply is the answer f gives in place of a call's real answer; Latency,
// Reset, Hang and Drip aside.
func (f Fault) reply(real func() reply) reply {
	switch f.Status {
	case 0:
	case http.StatusTooManyRequests:
		return rateLimited(cmp.Or(f.RetryAfter, DefaultRetryAfter))
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return gatewayPage(f.Status)
	default:
		return errInternal.reply(f.Status)
	}
	if f.HTML {
		return portalPage
	}
	rp := real()
	if f.Oversize > 0 {
		rp.body = padded(rp.body, f.Oversize)
	}
	if f.Truncate {
		rp.body = rp.body[:len(rp.body)/2]
	}
	return rp
}

// status is the HTTP status f answers with on a link whose real answer is a
// 200, or 0 when it gives no answer.
func (f Fault) status() int {
	switch {
	case f.Reset || f.Hang:
		return 0
	case f.Status != 0:
		return f.Status
	}
	return http.StatusOK
}

// gatewayPage is the HTML answer of a gateway in front of the API.
func gatewayPage(status int) reply {
	text := http.StatusText(status)
	return reply{
		status: status,
		header: http.Header{"Content-Type": {"text/html"}},
		body:   fmt.Appendf(nil, "<html><head><title>%d %s</title></head><body><h1>%s</h1></body></html>\n", status, text, text),
	}
}

// portalPage is what a captive portal answers in place of any request.
var portalPage = reply{
	status: http.StatusOK,
	header: http.Header{"Content-Type": {"text/html"}},
	body: []byte("<!DOCTYPE html>\n<html><head><title>Sign in to Wi-Fi</title></head>" +
		"<body><h1>Welcome!</h1><p>Please accept the terms of use to connect to the Internet.</p>" +
		"<form method=\"post\" action=\"/portal/accept\"><button>Accept and connect</button></form></body></html>\n"),
}

// padded returns body, with a "sandbox_padding" field holding a long string
// added to its link object (or to body itself when it has none), at least
// size bytes long. A body that is not a JSON object gets trailing whitespace.
func padded(body []byte, size int) []byte {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
		if len(body) >= size {
			return body
		}
		return append(slices.Clip(body), bytes.Repeat([]byte{' '}, size-len(body))...)
	}
	// The padding string needs no escaping, so the size is exact.
	build := func(n int) []byte {
		value := make([]byte, 0, n+2)
		value = append(value, '"')
		value = append(value, bytes.Repeat([]byte{'x'}, n)...)
		value = append(value, '"')
		d := maps.Clone(doc)
		if l, ok := withField(d["link"], paddingField, value); ok {
			d["link"] = l
			return marshalObject(d)
		}
		d[paddingField] = value
		return marshalObject(d)
	}
	short := build(0)
	if len(short) >= size {
		return short
	}
	return build(size - len(short))
}

// withField returns obj, a JSON object, with key: value added first.
func withField(obj json.RawMessage, key string, value []byte) (json.RawMessage, bool) {
	obj = bytes.TrimSpace(obj)
	if len(obj) < 2 || obj[0] != '{' {
		return nil, false
	}
	var b bytes.Buffer
	b.Grow(len(obj) + len(key) + len(value) + 4)
	b.WriteByte('{')
	b.Write(mustJSON(key))
	b.WriteByte(':')
	b.Write(value)
	if rest := bytes.TrimSpace(obj[1:]); rest[0] != '}' {
		b.WriteByte(',')
	}
	b.Write(obj[1:])
	return b.Bytes(), true
}

// marshalObject writes the members of d in key order; unlike json.Marshal it
// does not re-check and compact values, which may be many megabytes long.
func marshalObject(d map[string]json.RawMessage) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(d)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(mustJSON(k))
		b.WriteByte(':')
		b.Write(d[k])
	}
	b.WriteByte('}')
	return b.Bytes()
}

// drip writes rp in chunks of dripChunk bytes with pause between them, until
// done or ctx is done.
func drip(ctx context.Context, w http.ResponseWriter, rp reply, pause time.Duration) {
	rp.writeHeader(w)
	w.Header().Set("Content-Length", strconv.Itoa(len(rp.body)))
	w.WriteHeader(rp.status)
	rc := http.NewResponseController(w)
	for body := rp.body; len(body) > 0; {
		n := min(dripChunk, len(body))
		if _, err := w.Write(body[:n]); err != nil {
			return
		}
		rc.Flush() // fails only where flushing is not supported: the chunks then go out together
		if body = body[n:]; len(body) > 0 && !sleep(ctx, pause) {
			return
		}
	}
}

// resetConnection closes the connection under w so that the client sees a
// reset rather than an answer.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	// Under TLS, reset the TCP connection itself: no close_notify.
	if tc, ok := conn.(interface{ NetConn() net.Conn }); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		tcp.SetLinger(0) // close with RST rather than FIN
	}
	raw.Close()
}

// sleep waits for d and reports whether ctx outlived it.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
