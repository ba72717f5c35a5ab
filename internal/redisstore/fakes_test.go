package redisstore

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// deadTimeout is the Config.Timeout of the Clients of a dead Redis: short,
// since each failure before the breaker opens costs about that much.
const deadTimeout = 100 * time.Millisecond

// dead is a Client of a Redis that refuses connections.
type dead struct {
	c    *Client
	errs *recorder
	log  *logBuffer
	addr string
}

func openDead(t testing.TB, password string) *dead {
	t.Helper()
	d := &dead{errs: &recorder{}, log: &logBuffer{}, addr: deadAddr(t)}
	userinfo := ""
	if password != "" {
		userinfo = ":" + password + "@"
	}
	d.c = mustOpen(t, Config{
		URL:     "redis://" + userinfo + d.addr + "/0",
		Prefix:  "mkgraph-test-dead:",
		Timeout: deadTimeout,
		Log:     zerolog.New(d.log),
		OnError: d.errs.onError,
	})
	return d
}

// openAt opens a Client of the Redis at addr with the given timeout, and
// returns it with the recorder of its reports.
func openAt(t testing.TB, addr string, timeout time.Duration) (*Client, *recorder) {
	t.Helper()
	errs := &recorder{}
	return mustOpen(t, Config{URL: "redis://" + addr + "/0", Timeout: timeout, OnError: errs.onError}), errs
}

// hangingRedis accepts connections and never answers, as a Redis stuck on
// a slow command or a black-holed network would. It stops when the test
// ends.
func hangingRedis(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// lossyProxy forwards connections to a Redis, except that the reply to the
// first command matching trigger is dropped with the connection, after
// Redis has run the command: a reply lost on the network.
type lossyProxy struct {
	addr    string
	fired   atomic.Bool
	trigger func(cmd []byte) bool
}

func newLossyProxy(t testing.TB, redisAddr string, trigger func(cmd []byte) bool) *lossyProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyProxy{addr: ln.Addr().String(), trigger: trigger}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		conns = append(conns, c)
	}
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", redisAddr)
			if err != nil {
				client.Close()
				continue
			}
			track(client)
			track(server)
			var drop atomic.Bool
			wg.Go(func() { // client -> Redis
				buf := make([]byte, 64<<10)
				for {
					n, err := client.Read(buf)
					if n > 0 {
						if p.trigger(buf[:n]) && p.fired.CompareAndSwap(false, true) {
							drop.Store(true)
						}
						if _, err := server.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						server.Close()
						return
					}
				}
			})
			wg.Go(func() { // Redis -> client
				buf := make([]byte, 64<<10)
				for {
					n, err := server.Read(buf)
					if drop.Load() {
						client.Close()
						server.Close()
						return
					}
					if n > 0 {
						if _, err := client.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						client.Close()
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}
