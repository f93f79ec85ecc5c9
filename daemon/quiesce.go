package daemon

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// newConnWait bounds how long quiesce waits for accepted connections to
// send their first request: a client slower than that (a slowloris) is
// cut off by the shutdown.
const newConnWait = 2 * time.Second

// unread tracks the connections accepted whose first request has not been
// read yet. http.Server.Shutdown would close such a connection without an
// answer once its request arrives (the client sees EOF on a connection it
// just opened, which it cannot safely retry), so quiesce waits for them.
type unread struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	n     atomic.Int64
}

// hook is an http.Server ConnState hook.
func (u *unread) hook(c net.Conn, s http.ConnState) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.conns == nil {
		u.conns = map[net.Conn]struct{}{}
	}
	if s == http.StateNew {
		u.conns[c] = struct{}{}
	} else {
		delete(u.conns, c)
	}
	u.n.Store(int64(len(u.conns)))
}

// quiesce stops the servers gracefully: stopAccepting, then Shutdown
// (HTTP/2 GOAWAY) waits for the requests in flight until ctx ends, after
// which the connections are closed.
func (d *daemon) quiesce(ctx context.Context) {
	d.stopAccepting()
	d.shutdownServers(ctx)
}

// stopAccepting stops taking new connections (they wait in the backlog
// for the next worker, or are refused when the supervisor stops), closes
// idle keep-alive connections, makes every response from now on say
// Connection: close, and waits until the connections accepted just before
// have sent their request: after it, no new request starts on this worker.
func (d *daemon) stopAccepting() {
	d.quiescing.Store(true)
	for _, ln := range d.listeners {
		ln.Close()
	}
	// Sweep idle connections until none is left unread: a connection that
	// turned idle just after a sweep is caught by the next one.
	for i, deadline := 0, time.Now().Add(newConnWait); time.Now().Before(deadline); i++ {
		for _, s := range d.servers {
			s.SetKeepAlivesEnabled(false)
		}
		unread := d.unread.n.Load()
		for _, fl := range d.fast {
			fl.SetKeepAlivesEnabled(false)
			unread += fl.Unread()
		}
		if i >= minSweeps && unread == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// minSweeps is how many idle sweeps stopAccepting makes at least.
const minSweeps = 3

// shutdownServers shuts the servers down until ctx ends, then closes them.
func (d *daemon) shutdownServers(ctx context.Context) {
	var wg sync.WaitGroup
	if d.ssh != nil {
		wg.Go(func() { d.ssh.Shutdown(ctx) })
	}
	for _, s := range d.servers {
		wg.Go(func() {
			if err := s.Shutdown(ctx); err != nil {
				s.Close()
			}
		})
	}
	for _, fl := range d.fast {
		wg.Go(func() { _ = fl.Shutdown(ctx) }) // closes what is left when ctx ends
	}
	wg.Wait()
}
