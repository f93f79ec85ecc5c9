package daemon

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/store"
)

// Version is plat's version; cmd/plat sets it from the CLI's.
var Version = "dev"

func version() string {
	if Version == "dev" {
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
	}
	return Version
}

const (
	// DefaultUpgradeTimeout bounds how long the old worker lets running
	// pushes and deploys finish during an upgrade before cancelling them.
	DefaultUpgradeTimeout = time.Minute
	// drainPoll is how often the hand-over checks for running deploys.
	drainPoll = 20 * time.Millisecond
	// upgradeStoreSlack is added to the old worker's bounds for the new
	// worker's wait for the store.
	upgradeStoreSlack = 30 * time.Second
)

func (c Config) upgradeTimeout() time.Duration {
	if c.UpgradeTimeout <= 0 {
		return DefaultUpgradeTimeout
	}
	return c.UpgradeTimeout
}

// workerSetup is what a worker got from its supervisor. A nil one (a
// daemon run without a supervisor, as in Run) opens its own listeners.
type workerSetup struct {
	listeners map[string]net.Listener
	conn      net.Conn
	upgrade   bool // take the store from the worker being replaced
	mu        sync.Mutex
	drain     chan struct{} // closed when the supervisor says "drain"
	gone      chan struct{} // closed when the supervisor's end closes
}

// workerMain runs a worker: the daemon on the supervisor's sockets.
func workerMain(cfg Config, spec string, log *slog.Logger) int {
	signal.Ignore(syscall.SIGHUP) // the supervisor's business; a terminal hangup must not kill the worker
	os.Unsetenv(envWorker)
	ws, err := parseWorkerSetup(spec)
	if err != nil {
		log.Error("plat daemon worker", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		select {
		case <-ws.gone: // the supervisor died: nobody holds the sockets for a successor
			log.Warn("the supervisor is gone; stopping")
			stop()
		case <-ctx.Done():
		}
	}()
	if err := run(ctx, cfg, log, ws); err != nil {
		log.Error("plat daemon stopped", "err", err)
		return 1
	}
	return 0
}

func parseWorkerSetup(spec string) (*workerSetup, error) {
	ws := &workerSetup{listeners: map[string]net.Listener{}, drain: make(chan struct{}), gone: make(chan struct{})}
	for _, kv := range strings.Split(spec, ",") {
		if kv == "upgrade=1" {
			ws.upgrade = true
			continue
		}
		role, fd, err := parseFD(kv)
		if err != nil {
			return nil, err
		}
		f := os.NewFile(uintptr(fd), "plat-"+role)
		if role == roleCtl {
			ws.conn, err = net.FileConn(f)
		} else {
			ws.listeners[role], err = net.FileListener(f)
		}
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("inherited %s socket: %w", role, err)
		}
	}
	if ws.conn == nil {
		return nil, fmt.Errorf("no control socket in %s=%q", envWorker, spec)
	}
	go func() {
		sc := bufio.NewScanner(ws.conn)
		var once sync.Once
		for sc.Scan() {
			if sc.Text() == msgDrain {
				once.Do(func() { close(ws.drain) })
			}
		}
		close(ws.gone)
	}()
	return ws, nil
}

// listener returns the inherited listener for role; nil without one.
func (ws *workerSetup) listener(role string) (net.Listener, error) {
	if ws == nil {
		return nil, nil
	}
	if ln, ok := ws.listeners[role]; ok {
		return ln, nil
	}
	return nil, fmt.Errorf("the supervisor passed no %s socket", role)
}

// send tells the supervisor msg.
func (ws *workerSetup) send(msg string) {
	if ws == nil {
		return
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	_ = ws.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = fmt.Fprintln(ws.conn, msg)
}

// drained is closed when the supervisor asks for a hand-over; nil (never)
// without a supervisor.
func (ws *workerSetup) drained() <-chan struct{} {
	if ws == nil {
		return nil
	}
	return ws.drain
}

// openStore opens the store. An upgrade's new worker first tells the
// supervisor it is prepared, then waits for the old worker to close it.
func (ws *workerSetup) openStore(path string, cfg Config) (*store.Store, error) {
	if ws == nil || !ws.upgrade {
		return store.Open(path)
	}
	ws.send(msgPrepared)
	began := time.Now()
	st, err := store.OpenWait(path, cfg.upgradeTimeout()+4*shutdownTimeout+upgradeStoreSlack)
	if err == nil {
		slog.Default().Debug("store taken over", "waited", time.Since(began))
	}
	return st, err
}

// handOver is the old worker's part of an upgrade, in this order:
//  1. new pushes are refused with a message to push again; running pushes
//     and deploys get the upgrade timeout to finish, then are cancelled
//     (their releases fail; the previous ones keep serving);
//  2. every listener stops accepting: new connections wait in the kernel's
//     backlog for the new worker; idle keep-alive connections are closed,
//     busy ones get `Connection: close` (HTTP/2: GOAWAY); log streams end
//     (clients reconnect and resume from their last line);
//  3. requests that use the store finish, the background loops stop, the
//     store closes: the new worker, waiting for it, opens it, adopts the
//     apps and starts accepting;
//  4. proxied requests and upgraded (websocket) connections get
//     shutdownTimeout to finish on this worker, which then exits.
func (d *daemon) handOver(stopLoops context.CancelFunc) {
	began := time.Now()
	d.log.Info("upgrade: handing over to the new worker")
	d.srv.upgrading.Store(true)
	if !d.waitDeploys(d.cfg.upgradeTimeout()) {
		d.log.Warn("upgrade: deploys still running after the upgrade timeout; cancelling them", "timeout", d.cfg.upgradeTimeout())
		d.dep.CancelAll(deploy.ErrUpgrade)
		d.waitDeploys(shutdownTimeout)
	}
	d.hub.Close()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// No request starts here from now on, then the store's users finish.
	d.stopAccepting()
	var servers sync.WaitGroup
	servers.Go(func() { d.shutdownServers(sctx) })
	if !d.gate.closeAndWait(shutdownTimeout) {
		d.log.Warn("upgrade: API requests still running after the shutdown timeout; closing the store anyway")
	}
	stopLoops()
	d.dep.CancelAll(deploy.ErrUpgrade)
	d.loops.Wait()
	d.closeStore()
	d.ws.send(msgReleased)
	d.log.Info("upgrade: store released to the new worker", "took", time.Since(began).Round(time.Millisecond))
	servers.Wait()
	d.waitHandlers(shutdownTimeout)
	d.log.Info("upgrade: the old worker drained", "took", time.Since(began).Round(time.Millisecond))
}

// waitDeploys waits up to limit for running pushes and deploys to end.
func (d *daemon) waitDeploys(limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for d.srv.pushes.Load() > 0 || d.dep.Deploys() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(drainPoll)
	}
	return true
}

// waitHandlers waits up to limit for every request being served.
func (d *daemon) waitHandlers(limit time.Duration) {
	done := make(chan struct{})
	go func() { d.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		d.log.Warn("requests still running after the shutdown timeout; stopping anyway", "timeout", limit)
	}
}

func (d *daemon) closeStore() {
	if d.store != nil {
		d.store.Close()
		d.store = nil
	}
}

// gate admits requests until it is closed; closeAndWait then waits for
// those admitted.
type gate struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// errRestarting answers a request that reached the old worker of an
// upgrade after its store closed (it came on a connection accepted
// before): the client retries and reaches the new worker.
const errRestarting = "plat is restarting for an upgrade; retry in a second"

func (g *gate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			// A request that slipped in on a kept-alive connection as it
			// was closing: closed unanswered, a client retries a request
			// that is safe to repeat on a new connection (the new worker).
			if replayable(r) {
				if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
					c.Close()
					return
				}
			}
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Connection", "close")
			http.Error(w, errRestarting, http.StatusServiceUnavailable)
			return
		}
		g.wg.Add(1)
		g.mu.Unlock()
		defer g.wg.Done()
		h.ServeHTTP(w, r)
	})
}

// replayable: what HTTP clients resend on their own after a connection
// closed without an answer.
func replayable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return r.ContentLength == 0 && r.Header.Get("Upgrade") == ""
	}
	return false
}

func (g *gate) closeAndWait(limit time.Duration) bool {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(limit):
		return false
	}
}
