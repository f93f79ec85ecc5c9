package router

import (
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

var frontEnds = []frontEnd{{"net/http", serveNetHTTP}}

// serveNetHTTP serves rt the way the daemon serves its router listener:
// internal/httpx.NewServer with the daemon's limits.
func serveNetHTTP(t *testing.T, rt *Router) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpx.NewServer(rt, httpx.Limits{
		ReadHeaderTimeout: daemonReadHeaderTimeout,
		IdleTimeout:       daemonIdleTimeout,
		MaxHeaderBytes:    daemonMaxHeaderBytes,
	}, log.New(io.Discard, "", 0))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
		rt.CloseIdleConnections()
	})
	return ln.Addr().String()
}
