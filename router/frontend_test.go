package router

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/plat-paas/plat/internal/httpx"
)

// The daemon's listener limits (daemon/daemon.go; not exported there).
const (
	daemonReadHeaderTimeout = 10 * time.Second
	daemonIdleTimeout       = 2 * time.Minute
	daemonMaxHeaderBytes    = 64 << 10
)

// frontEnd is one HTTP/1.1 server that can put a Router on a socket. The
// smuggling and malformed-input suite (smuggle_test.go) runs against each,
// over raw TCP, so every front end is held to the same outcomes.
type frontEnd struct {
	name string
	// serve serves rt on a loopback listener until the test ends and
	// returns its address.
	serve func(t *testing.T, rt *Router) (addr string)
}

var frontEnds = []frontEnd{{"net/http", serveNetHTTP}, {"fast", serveFast}}

// serveFast serves rt the way the daemon serves its app listener: the
// fast front end, with serveNetHTTP's server behind it.
func serveFast(t *testing.T, rt *Router) string { return serveDaemonLike(t, rt, true) }

// serveNetHTTP serves rt the way the daemon serves its router listener
// with --fast-router=false: internal/httpx.NewServer with the daemon's
// limits.
func serveNetHTTP(t *testing.T, rt *Router) string { return serveDaemonLike(t, rt, false) }

func serveDaemonLike(t *testing.T, rt *Router, fast bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var served net.Listener = ln
	var fl *FastListener
	if fast {
		fl = rt.FastListener(ln, FastOptions{ReadHeaderTimeout: daemonReadHeaderTimeout, IdleTimeout: daemonIdleTimeout})
		served = fl
	}
	srv := httpx.NewServer(rt, httpx.Limits{
		ReadHeaderTimeout: daemonReadHeaderTimeout,
		IdleTimeout:       daemonIdleTimeout,
		MaxHeaderBytes:    daemonMaxHeaderBytes,
	}, log.New(io.Discard, "", 0))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(served) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if fl != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = fl.Shutdown(ctx)
			cancel()
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
		rt.CloseIdleConnections()
	})
	return ln.Addr().String()
}
