// Command mkgraph serves a GraphQL facade over MoneyKit's Get Identity
// endpoint. With no MONEYKIT_BASE_URL and no credentials it serves the
// embedded sandbox, so `go run .` works on a fresh machine.
//
//	mkgraph [flags]          serve GraphQL on MKGRAPH_ADDR (default :8080)
//	mkgraph sandbox [flags]  serve only the MoneyKit sandbox on its own port
//	mkgraph hash-key NAME KEY  print a line for MKGRAPH_API_KEYS_FILE
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/internal/gctune"
	"github.com/mkgraph/mkgraph/upstream/webhook"
)

// Garbage collector defaults, unless the standard GOGC or GOMEMLIMIT say
// otherwise. The facade's live heap is small (a few MB plus the identity
// cache) and it allocates fast, so Go's default of collecting whenever the
// heap doubles collects every few hundred requests and costs a large share
// of the CPU under load (docs/performance.md has the measurements). gctune
// keeps the heap goal at the live heap + gcHeadroom instead. The soft memory
// limit caps the whole: the working set (memoryBase) plus the identity
// cache's budget, with room for entries being larger decoded than the JSON
// size they are weighed by, so a full cache never makes the collector
// thrash under its own limit.
const (
	gcHeadroom = 16 << 20
	memoryBase = 64 << 20
)

// tuneGC applies the garbage collector defaults unless GOGC or GOMEMLIMIT are
// set, and returns what puts the process-wide settings back (tests run
// several servers in one process).
func tuneGC(ctx context.Context, c *config, getenv func(string) string) (restore func()) {
	var undo []func()
	if getenv("GOMEMLIMIT") == "" && c.CacheMaxBytes > 0 {
		prev := debug.SetMemoryLimit(memoryLimit(c))
		undo = append(undo, func() { debug.SetMemoryLimit(prev) })
	}
	if getenv("GOGC") == "" {
		gogc := debug.SetGCPercent(-1)
		debug.SetGCPercent(gogc)
		tctx, stopTuning := context.WithCancel(ctx)
		stopTuner := gctune.Start(tctx, gcHeadroom, 250*time.Millisecond)
		undo = append(undo, func() { debug.SetGCPercent(gogc) }, stopTuner, stopTuning)
	}
	return func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
}

// memoryLimit is the default soft memory limit for the configuration.
func memoryLimit(c *config) int64 {
	limit := int64(memoryBase)
	if c.CacheTTL > 0 {
		limit += c.CacheMaxBytes * 3 / 2
	}
	return limit
}

// Defaults of the settings that configure the listener and its requests.
const (
	defaultAddr            = ":8080"
	defaultRequestTimeout  = 15 * time.Second
	defaultShutdownTimeout = 10 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkgraph:", err)
		if errors.As(err, new(*configError)) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run is the whole program; main only exits with its result. It returns
// when ctx is done and the server has shut down.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "sandbox" {
		return runSandbox(ctx, args[1:], getenv, stdout)
	}
	if len(args) > 0 && args[0] == "hash-key" {
		return runHashKey(args[1:], stdout)
	}
	c, err := parseConfig("mkgraph", args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := newLogger(c, stdout)
	logConfig(log, c)
	defer tuneGC(ctx, c, getenv)()
	log.Info().Int64("GOMEMLIMIT", debug.SetMemoryLimit(-1)).Msg("garbage collector soft memory limit (bytes)")

	// Listen first, so that a bad address fails here, synchronously, ":0"
	// works in tests, and the embedded sandbox can be told where the
	// facade's webhook receiver is.
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return &configError{fmt.Errorf("MKGRAPH_ADDR: %w", err)}
	}
	defer ln.Close() // after Serve, a no-op
	svc, closeServices, err := wire(ctx, c, getenv, log, selfURL(ln.Addr())+webhook.Path)
	defer closeServices()
	if err != nil {
		return err
	}

	var serving atomic.Bool
	ready := func() error {
		if !serving.Load() {
			return errors.New("shutting down")
		}
		return svc.client.Ready()
	}
	handler, err := newHandler(c, log, svc.fetcher, ready, svc.authn, svc.metrics, svc.redis, svc.events)
	if err != nil {
		return &configError{err}
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      c.RequestTimeout + 5*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          stdLogger(log),
	}
	if h, ok := handler.(interface{ Shutdown() }); ok {
		srv.RegisterOnShutdown(h.Shutdown) // subscriptions: WebSockets closed with 1012, SSE streams ended
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	if c.AdminAddr != "" {
		aln, err := net.Listen("tcp", c.AdminAddr)
		if err != nil {
			srv.Close()
			return &configError{fmt.Errorf("MKGRAPH_ADMIN_ADDR: %w", err)}
		}
		admin := &http.Server{Handler: adminHandler(c, svc.metrics, ready), ReadHeaderTimeout: 10 * time.Second}
		defer admin.Close()
		go func() {
			if err := admin.Serve(aln); !errors.Is(err, http.ErrServerClosed) {
				serveErr <- err
			}
		}()
		log.Info().Str("addr", aln.Addr().String()).Bool("pprof", c.Pprof).Msg("admin listening")
	}
	serving.Store(true)
	log.Info().Str("addr", ln.Addr().String()).Msg("listening")

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	serving.Store(false)
	if c.DrainDelay > 0 {
		log.Info().Dur("drain_delay", c.DrainDelay).Msg("shutting down: /readyz answers 503 while load balancers notice")
		time.Sleep(c.DrainDelay)
	}
	log.Info().Dur("timeout", c.ShutdownTimeout).Msg("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn().Err(err).Msg("in-flight requests did not finish in time; closing")
		srv.Close()
	}
	log.Info().Msg("stopped")
	return nil
}

// selfURL is the base URL this process reaches its own listener at: the
// listener's address, with loopback for an unspecified host (":8080").
func selfURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// stdLogger adapts zerolog for http.Server's own errors (bad TLS, broken
// connections); zerolog.Logger is an io.Writer.
func stdLogger(log zerolog.Logger) *stdlog.Logger {
	return stdlog.New(log.With().Str("component", "http.Server").Logger(), "", 0)
}

func newLogger(c *config, out io.Writer) zerolog.Logger {
	if c.LogFormat == "console" {
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: time.RFC3339}
	}
	return zerolog.New(out).Level(c.LogLevel).With().Timestamp().Logger()
}
