//go:build soak || load

package main

import (
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
