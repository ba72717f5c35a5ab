package metrics

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync"
)

// maxLabelLen bounds a client- or upstream-chosen label value; reqlog already
// cuts operation names to 64 bytes.
const maxLabelLen = 64

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

// isOperationName accepts a GraphQL name ([_A-Za-z][_0-9A-Za-z]*) that does
// not look like an identifier. reqlog replaced any other byte with '?', so a
// name with one was not a valid operation name to begin with.
func isOperationName(s string) bool {
	if s == "" || len(s) > maxLabelLen || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c == '_' || isDigit(c) || isLetter(c)) {
			return false
		}
	}
	return !looksLikeID(s)
}

// isCode accepts an error code in the dotted style of MoneyKit and the facade
// ("link_error.deleted", "facade.forbidden") that does not look like an
// identifier. Upstream codes are passed on verbatim, so the upstream's word
// is not trusted here either.
func isCode(s string) bool {
	if s == "" || len(s) > maxLabelLen || !isLetter(s[0]) || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' && s[i-1] == '.' {
			return false
		}
		if !(c == '_' || c == '.' || isDigit(c) || isLetter(c)) {
			return false
		}
	}
	return !looksLikeID(s)
}

// looksLikeID reports whether s seems to carry an identifier rather than a
// name a person chose: a MoneyKit id ("mk_…"), a run of six or more digits
// (account and phone numbers), or a long token mixing letters and digits (a
// random id such as "eqkWN34UEoa2NxyALG8pcV").
func looksLikeID(s string) bool {
	if strings.Contains(strings.ToLower(s), "mk_") {
		return true
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			if digits++; digits >= 6 {
				return true
			}
		} else {
			digits = 0
		}
	}
	for tok := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == '_' || r == '.' }) {
		if len(tok) >= 16 && strings.ContainsFunc(tok, func(r rune) bool { return r < 0x80 && isDigit(byte(r)) }) {
			return true
		}
	}
	return false
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

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
