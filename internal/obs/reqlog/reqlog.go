// Package reqlog collects what one HTTP request did — its GraphQL operation,
// the error codes it answered and the upstream calls it made — for the access
// log line. It holds no identity data.
package reqlog

import (
	"context"
	"net/http"
	"slices"
	"sync"

	"github.com/mkgraph/mkgraph/internal/ctxkey"
)

// maxCodes bounds the distinct error codes kept for one request.
const maxCodes = 16

// maxOperationLen bounds the logged operation name: clients choose it.
const maxOperationLen = 64

var recordKey = ctxkey.New[*Record]("reqlog.Record")

// Record is the per-request summary. Its methods are safe for concurrent use
// and do nothing on a nil Record, so code can call them without checking
// whether a record was attached.
type Record struct {
	mu            sync.Mutex
	operation     string
	codes         []string
	upstreamCalls int
}

// NewContext returns ctx carrying a new Record.
func NewContext(ctx context.Context) (context.Context, *Record) {
	r := &Record{}
	return recordKey.With(ctx, r), r
}

// Middleware attaches a new Record to every request.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, _ := NewContext(r.Context())
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// From returns the Record of ctx, or nil.
func From(ctx context.Context) *Record { return recordKey.From(ctx) }

// SetOperation records the GraphQL operation name (sanitized and truncated).
func (r *Record) SetOperation(name string) {
	if r == nil {
		return
	}
	name = sanitize(name)
	r.mu.Lock()
	r.operation = name
	r.mu.Unlock()
}

// AddCode records an error code answered to the client, once.
func (r *Record) AddCode(code string) {
	if r == nil || code == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.codes) < maxCodes && !slices.Contains(r.codes, code) {
		r.codes = append(r.codes, code)
	}
}

// AddUpstreamCall counts one HTTP exchange with the upstream.
func (r *Record) AddUpstreamCall() {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.upstreamCalls++
	r.mu.Unlock()
}

// Summary is a copy of a Record's contents.
type Summary struct {
	Operation     string
	Codes         []string
	UpstreamCalls int
}

// Summary returns a copy of what was recorded so far.
func (r *Record) Summary() Summary {
	if r == nil {
		return Summary{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return Summary{Operation: r.operation, Codes: slices.Clone(r.codes), UpstreamCalls: r.upstreamCalls}
}

// sanitize keeps names printable and short: a GraphQL name is
// [_A-Za-z][_0-9A-Za-z]*, anything else is replaced.
func sanitize(s string) string {
	if len(s) > maxOperationLen {
		s = s[:maxOperationLen]
	}
	b := []byte(s)
	for i, c := range b {
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			b[i] = '?'
		}
	}
	return string(b)
}
