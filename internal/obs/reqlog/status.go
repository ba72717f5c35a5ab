package reqlog

import (
	"bufio"
	"net"
	"net/http"
)

// StatusRecorder remembers the status code of a response, for the metrics
// and the server span. It passes Flush and Hijack through (streams and
// WebSocket upgrades), and Unwrap lets http.ResponseController reach the
// rest. Status is 0 until the final status is written.
type StatusRecorder struct {
	http.ResponseWriter
	Status int
}

func (w *StatusRecorder) WriteHeader(code int) {
	// 1xx other than 101 are informational: the final status comes later.
	if w.Status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *StatusRecorder) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *StatusRecorder) Flush() {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *StatusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.Status == 0 {
		w.Status = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}

func (w *StatusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// StatusOr returns the recorded status, or def when none was written.
func (w *StatusRecorder) StatusOr(def int) int {
	if w.Status == 0 {
		return def
	}
	return w.Status
}
