//go:build soak || load

package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Helpers shared by the soak (soak_test.go) and load (load_test.go) runs,
// which build only with their tags.

// The credentials the sandbox subcommand accepts by default.
const (
	sandboxClientID     = "mkgraph_sandbox_client"
	sandboxClientSecret = "mkgraph_sandbox_secret"
)

// buildBinary builds the facade's binary into dir with $GO (default go),
// and returns its path.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "mkgraph")
	build := exec.Command(cmp.Or(os.Getenv("GO"), "go"), "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// loopbackClient is the load generator's one client: no proxy, no
// compression, up to maxIdle keep-alive connections per host; its idle
// connections are closed at cleanup.
func loopbackClient(t *testing.T, timeout time.Duration, maxIdle int) *http.Client {
	t.Helper()
	client := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        maxIdle,
			MaxIdleConnsPerHost: maxIdle,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
	t.Cleanup(client.CloseIdleConnections)
	return client
}

// writeMarked replaces what stands between the begin and end markers of the
// file at path with table, appending the markers when they are missing.
func writeMarked(path, beginMark, endMark, table string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := string(old)
	begin := strings.Index(doc, beginMark)
	end := strings.Index(doc, endMark)
	if begin < 0 || end < begin {
		doc = strings.TrimRight(doc, "\n") + "\n\n" + beginMark + "\n" + endMark + "\n"
		begin, end = strings.Index(doc, beginMark), strings.Index(doc, endMark)
	}
	doc = doc[:begin+len(beginMark)] + "\n" + table + doc[end:]
	return os.WriteFile(path, []byte(doc), 0o644)
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// envInt reads a positive integer knob, or def when unset.
func envInt(t *testing.T, key string, def int) int {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", key, v)
	}
	return n
}

// envDuration reads a positive duration knob, or def when unset.
func envDuration(t *testing.T, key string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration", key, v)
	}
	return d
}

// process is a child process of the run; its output goes to a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	err     error // cmd.Wait's, once exited is closed
	once    sync.Once
}

// startProcess runs bin with args in an environment cleared of MKGRAPH_
// and MONEYKIT_ settings plus env; stop (also from t.Cleanup) ends it.
func startProcess(t *testing.T, dir, name, bin string, args, env []string) *process {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MKGRAPH_") && !strings.HasPrefix(kv, "MONEYKIT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("last lines of the %s log:\n%s", name, tail(logPath, 20))
		}
	})
	return p
}

// stop ends the process: SIGTERM, then SIGKILL after 10 s.
func (p *process) stop() {
	p.once.Do(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitFor polls url until it answers 200, for at most 30 s, failing
// early if p exits.
func waitFor(t *testing.T, p *process, url string) {
	t.Helper()
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if getStatus(c, url) == http.StatusOK {
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before %s answered: %v\n%s", p.name, url, p.err, tail(p.logPath, 20))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within 30s\n%s", url, tail(p.logPath, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// getStatus GETs url and returns the status, or 0 when there is no answer.
func getStatus(c *http.Client, url string) int {
	res, err := c.Get(url)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// getBody GETs url and returns its body, failing the test unless 200.
func getBody(t *testing.T, url string) []byte {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, res.StatusCode, err)
	}
	return body
}

// sandboxCounters are the sandbox's /_sandbox/stats.
type sandboxCounters struct {
	IdentityCalls int `json:"identity_calls"`
	TokenCalls    int `json:"token_calls"`
	FaultsServed  int `json:"faults_served"`
}

func sandboxStats(t *testing.T, sandboxURL string) sandboxCounters {
	t.Helper()
	var s sandboxCounters
	if err := json.Unmarshal(getBody(t, sandboxURL+"/_sandbox/stats"), &s); err != nil {
		t.Fatalf("sandbox stats: %v", err)
	}
	return s
}

// loadAverage is the machine's 1, 5 and 15 minute load averages: the load
// generator, the facade and the sandbox share the CPUs with anything else
// running, and a busy machine shows in the figures.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if err != nil || len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}

// procStatusKiB is a "kB" field of /proc/<pid>/status ("VmRSS:",
// "VmHWM:"), in KiB (0 if unknown).
func procStatusKiB(pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, field); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// transportKind names a transport error without its addresses.
func transportKind(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	case errors.Is(err, syscall.EMFILE):
		return "too many open files"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no free local port"
	}
	return "other"
}

// percentile is the nearest-rank p-th percentile of sorted ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	k := int(float64(len(ds))*p/100+0.999999) - 1
	return ds[min(max(k, 0), len(ds)-1)]
}

// verdict says whether a target was met.
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}
