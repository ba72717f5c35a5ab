package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/mkgraph/mkgraph/internal/edge/auth"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// startSandbox serves the embedded sandbox on a loopback port, so the client
// talks to it over real HTTP exactly as to MoneyKit. stop ends its pending
// refreshes and webhook deliveries, then its listener.
func startSandbox(opts sandbox.Options) (baseURL string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("start sandbox: %w", err)
	}
	sbx := sandbox.New(opts)
	srv := &http.Server{Handler: sbx, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { sbx.Close(); srv.Close() }, nil
}

// runSandbox serves only the sandbox, for other tools and load tests. It
// reads the MKGRAPH_LOG_* and MKGRAPH_SANDBOX_LATENCY settings and nothing
// else: the MoneyKit settings are the facade's, not the sandbox's.
func runSandbox(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	c, err := parseConfig("mkgraph sandbox", nil, func(k string) string {
		if strings.HasPrefix(k, "MKGRAPH_LOG_") || k == "MKGRAPH_SANDBOX_LATENCY" {
			return getenv(k)
		}
		return ""
	}, stdout)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("mkgraph sandbox", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:8081", "listen address")
	latency := fs.Duration("latency", c.SandboxLatency, "latency added to each identity call (env MKGRAPH_SANDBOX_LATENCY)")
	faults := fs.String("faults", "", `misbehave on a share of identity calls, e.g. "503=0.2,hang=0.05" (kinds: 429 500 502 503 504 hang reset html truncate oversize drip slow)`)
	seed := fs.Uint64("seed", 1, "seed of the fault draws, for reproducible runs")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &configError{err}
	}
	rules, err := sandbox.ParseRandomFaults(*faults)
	if err != nil {
		return &configError{fmt.Errorf("sandbox -faults: %w", err)}
	}
	log := newLogger(c, stdout)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return &configError{fmt.Errorf("sandbox -addr: %w", err)}
	}
	sbx := sandbox.New(sandbox.Options{Latency: *latency})
	sbx.SetRandomFaults(*seed, rules)
	srv := &http.Server{Handler: sbx, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info().Str("addr", ln.Addr().String()).Str("client_id", sandbox.DefaultClientID).Dur("latency", *latency).Str("faults", *faults).
		Msg("sandbox listening; its client secret is in the README")
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// runHashKey prints the MKGRAPH_API_KEYS_FILE line of a backend's key: the
// file stores only hashes.
func runHashKey(args []string, stdout io.Writer) error {
	if len(args) != 2 {
		return &configError{errors.New("usage: mkgraph hash-key NAME KEY")}
	}
	fmt.Fprintf(stdout, "%s %s\n", args[0], auth.HashAPIKey(args[1]))
	return nil
}
