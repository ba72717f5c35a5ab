package metrics

import (
	"bufio"
	"net"
	"net/http"
	"sync"
)

// capped bounds the distinct values of one label: values of the wrong shape,
// and new values once max are known, become Other. Every series lives as long
// as the process, so a client inventing a fresh operation name per request
// must not be able to grow the registry without bound.
type capped struct {
	max   int
	valid func(string) bool

	mu   sync.RWMutex
	seen map[string]struct{}
}

func newCapped(max int, valid func(string) bool) *capped {
	return &capped{max: max, valid: valid, seen: make(map[string]struct{}, max)}
}

// value returns v when it may be used as a label value, else Other.
func (c *capped) value(v string) string {
	if !c.valid(v) {
		return Other
	}
	c.mu.RLock()
	_, ok := c.seen[v]
	c.mu.RUnlock()
	if ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[v]; ok {
		return v
	}
	if len(c.seen) >= c.max {
		return Other
	}
	c.seen[v] = struct{}{}
	return v
}

// statusWriter remembers the status code of a response. It passes Flush and
// Hijack through, and Unwrap lets http.ResponseController reach the rest.
type statusWriter struct {
	http.ResponseWriter
	status int // 0 until the final status is written
}

func (w *statusWriter) WriteHeader(code int) {
	// 1xx other than 101 are informational: the final status comes later.
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusOr returns the recorded status, or def when none was written.
func (w *statusWriter) statusOr(def int) int {
	if w.status == 0 {
		return def
	}
	return w.status
}
