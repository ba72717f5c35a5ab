//go:build load

package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tailcallInstallTimeout bounds start.sh's npm ci and its glibc copy.
const tailcallInstallTimeout = 5 * time.Minute

// tailcallPeer is Tailcall as ../shared/bench/tailcall has it, copied into a
// temporary folder (the original is read-only, and none of it belongs in
// this repository) and installed there.
type tailcallPeer struct {
	dir     string // the copy, with its node_modules
	version string // start.sh --version's line
	dedupe  string // TAILCALL_DEDUPE: "0" (Tailcall's default) unless LOAD_TAILCALL_DEDUPE=1
}

// prepareTailcall copies src and installs Tailcall from its lockfile (npm
// ci, through start.sh --version), failing the test when it cannot.
func prepareTailcall(t *testing.T, src string) *tailcallPeer {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tailcall")
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatalf("LOAD_TAILCALL=1: copy %s: %v", src, err)
	}
	os.RemoveAll(filepath.Join(dir, "node_modules")) // never another install's
	ctx, cancel := context.WithTimeout(t.Context(), tailcallInstallTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "start.sh"), "--version")
	cmd.Env = append(os.Environ(), "TAILCALL_INSTALL=auto")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("LOAD_TAILCALL=1: %s --version: %v\n%s", filepath.Join(dir, "start.sh"), err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n") // npm ci's summary first
	tc := &tailcallPeer{dir: dir, version: lines[len(lines)-1], dedupe: "0"}
	if os.Getenv("LOAD_TAILCALL_DEDUPE") == "1" {
		tc.dedupe = "1"
	}
	t.Logf("Tailcall: %s, dedupe %s", tc.version, tc.dedupe)
	return tc
}

// start serves Tailcall over upstreamURL on a free loopback port and waits
// until it answers GraphQL. start.sh execs Tailcall, so the process's PID
// (its CPU and RSS) is Tailcall's own.
func (tc *tailcallPeer) start(t *testing.T, logDir, upstreamURL string, latency time.Duration) (*process, string) {
	t.Helper()
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	p := startProcess(t, logDir, "tailcall-"+latency.String(), filepath.Join(tc.dir, "start.sh"), nil, []string{
		"UPSTREAM_URL=" + upstreamURL, "TAILCALL_PORT=" + port, "TAILCALL_DEDUPE=" + tc.dedupe, "TAILCALL_INSTALL=never",
	})
	url := "http://" + addr + "/graphql"
	waitForGraphQL(t, p, url)
	return p, url
}

// waitForGraphQL polls url with { __typename } until it answers 200, for at
// most 30 s, failing early if p exits.
func waitForGraphQL(t *testing.T, p *process, url string) {
	t.Helper()
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := c.Post(url, "application/json", strings.NewReader(`{"query":"{ __typename }"}`))
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before %s answered: %v\n%s", p.name, url, p.err, tail(p.logPath, 20))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within 30s\n%s", url, tail(p.logPath, 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
