package router

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plat-paas/plat/internal/httpx"
)

// The fast front end. net/http's server costs the router about as much CPU
// per request as the app behind it: a background read and a goroutine
// hand-off per request, a Request, a Header map and a ResponseWriter.
// FastListener serves the common request (HTTP/1.1, no body or a small one
// that came with its head, for a routed host with a running release)
// itself: it parses the head in place, writes it to a pooled backend
// connection, and copies the response back from one goroutine per client
// connection. Anything else (HTTP/2, larger or chunked bodies, upgrades,
// Expect, odd or malformed heads, hosts the router does not serve, sleeping
// or held apps, shadowed apps) is handed over whole, with the bytes already
// read, to the net/http server that serves the listener: its Accept returns
// such connections (FastOptions.Server takes them once the listener is
// closed), and net/http serves them to their end.

// Defaults of FastOptions.
const (
	DefaultFastReadHeaderTimeout = 10 * time.Second
	DefaultFastIdleTimeout       = 2 * time.Minute
	// fastReadBuffer is a connection's request buffer: a head that does
	// not fit goes to net/http (which allows up to its MaxHeaderBytes).
	fastReadBuffer = 4 << 10
	// fastBackendBuffer is where a response head is read; it grows up to
	// the router's MaxResponseHeaderBytes for a larger head.
	fastBackendBuffer = 16 << 10
	// fastOutBuffer collects the response head and body for one write.
	fastOutBuffer = 32 << 10
	// fastWatchDelay is how long a request waits for its backend before
	// the connection is watched for the client going away.
	fastWatchDelay = 500 * time.Millisecond
)

// FastOptions configure a FastListener.
type FastOptions struct {
	// ExceptHosts are normalized host names the fast path leaves to
	// net/http even when routed (the daemon's API host).
	ExceptHosts       []string
	ReadHeaderTimeout time.Duration // 0 → DefaultFastReadHeaderTimeout
	IdleTimeout       time.Duration // 0 → DefaultFastIdleTimeout
	// Requests, if set, counts the fast path's requests in flight, so a
	// shutdown can wait for them.
	Requests *sync.WaitGroup
	// Server is the http.Server that serves the listener. Set, it also
	// gets the connections handed over after the listener was closed (a
	// shutdown or an upgrade began), which Accept no longer can: a client
	// that connected just before still gets its answer.
	Server *http.Server
}

// FastListener is a net.Listener for the router's http.Server that serves
// what it can itself (see the top of this file). Serve the http.Server on
// it, and call Shutdown beside the server's.
type FastListener struct {
	ln   net.Listener
	r    *Router
	t    *transport // nil: the router has a custom transport; every connection goes to net/http
	opts FastOptions

	startOnce sync.Once
	handed    chan net.Conn
	closed    chan struct{} // closed when the accept loop ended
	acceptErr error         // why; set before closed is closed

	mu         sync.Mutex
	conns      map[*fastConn]struct{}
	keepAlives atomic.Bool
	unread     atomic.Int64
	served     atomic.Uint64 // requests the fast path answered
	handedOver atomic.Uint64 // connections given to net/http
	wg         sync.WaitGroup
}

// FastListener returns a FastListener over ln for r.
func (r *Router) FastListener(ln net.Listener, opts FastOptions) *FastListener {
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = DefaultFastReadHeaderTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultFastIdleTimeout
	}
	fl := &FastListener{ln: ln, r: r, opts: opts, handed: make(chan net.Conn), closed: make(chan struct{}),
		conns: map[*fastConn]struct{}{}}
	fl.t, _ = r.transport.(*transport)
	fl.keepAlives.Store(true)
	return fl
}

// Accept returns the next connection for net/http: one the fast path
// handed over.
func (fl *FastListener) Accept() (net.Conn, error) {
	fl.startOnce.Do(func() { go fl.acceptLoop() })
	select {
	case c := <-fl.handed:
		return c, nil
	case <-fl.closed:
		return nil, fl.acceptErr
	}
}

// Close closes the listener: no new connection is accepted.
func (fl *FastListener) Close() error { return fl.ln.Close() }

// Addr returns the listener's address.
func (fl *FastListener) Addr() net.Addr { return fl.ln.Addr() }

// FastStats count what a FastListener did.
type FastStats struct {
	Served     uint64 // requests the fast path answered itself
	HandedOver uint64 // connections it gave to net/http
}

// Stats returns the listener's counters.
func (fl *FastListener) Stats() FastStats {
	return FastStats{Served: fl.served.Load(), HandedOver: fl.handedOver.Load()}
}

// Unread returns how many accepted connections have not sent a complete
// request head yet (like http.StateNew).
func (fl *FastListener) Unread() int64 { return fl.unread.Load() }

// SetKeepAlivesEnabled(false) closes the idle connections and makes every
// response from now on close its connection, as http.Server's does.
func (fl *FastListener) SetKeepAlivesEnabled(v bool) {
	fl.keepAlives.Store(v)
	if !v {
		fl.closeIdle()
	}
}

// Shutdown closes the listener and the idle connections, and waits until
// the requests in flight are answered or ctx ends; then it closes every
// connection left.
func (fl *FastListener) Shutdown(ctx context.Context) error {
	fl.ln.Close()
	fl.SetKeepAlivesEnabled(false)
	done := make(chan struct{})
	go func() { fl.wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			fl.mu.Lock()
			for fc := range fl.conns {
				fc.c.Close()
			}
			fl.mu.Unlock()
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
			fl.closeIdle() // connections that turned idle meanwhile
		}
	}
}

func (fl *FastListener) closeIdle() {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for fc := range fl.conns {
		if fc.state.CompareAndSwap(connIdle, connClosing) {
			fc.c.Close()
		}
	}
}

func (fl *FastListener) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := fl.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || !errors.Is(err, net.ErrClosed) && isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				fl.r.logger.Warn("router: accept failed; retrying", "error", err, "delay", backoff)
				time.Sleep(backoff)
				continue
			}
			fl.acceptErr = err
			close(fl.closed)
			return
		}
		backoff = 0
		if fl.t == nil {
			fl.handOver(c)
			continue
		}
		fc := &fastConn{fl: fl, c: c}
		fc.state.Store(connNew)
		fl.unread.Add(1)
		fl.mu.Lock()
		fl.conns[fc] = struct{}{}
		fl.mu.Unlock()
		fl.wg.Add(1)
		go fc.serve()
	}
}

// isTemporary reports whether an accept error is worth retrying (too many
// open files and the like), as net/http's Serve does.
func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// handOver gives c to net/http, or closes it if no server takes it.
func (fl *FastListener) handOver(c net.Conn) {
	if !fl.give(c) {
		c.Close()
	}
}

// give hands c to net/http: through Accept while the accept loop runs;
// after it ended, to Options.Server directly. It reports false if no
// server took c.
func (fl *FastListener) give(c net.Conn) bool {
	fl.handedOver.Add(1)
	select {
	case fl.handed <- c:
		return true
	case <-fl.closed:
	}
	srv := fl.opts.Server
	if srv == nil {
		return false
	}
	// Serve tracks the listener: Shutdown closes it and waits for c's
	// requests; a server already shut down closes it (and c) at once.
	go func() { _ = srv.Serve(newOneConnListener(c)) }()
	return true
}

// oneConnListener accepts one connection, then blocks until closed.
type oneConnListener struct {
	mu     sync.Mutex
	c      net.Conn // nil once accepted
	addr   net.Addr
	closed chan struct{}
	once   sync.Once
}

func newOneConnListener(c net.Conn) *oneConnListener {
	return &oneConnListener{c: c, addr: c.LocalAddr(), closed: make(chan struct{})}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	c := l.c
	l.c = nil
	l.mu.Unlock()
	if c != nil {
		return c, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.c != nil { // never served
		l.c.Close()
		l.c = nil
	}
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.addr }

// prefixConn is a connection handed over after the fast path read from it:
// its reads return those bytes first.
type prefixConn struct {
	net.Conn
	buf []byte
	// tlsState is the finished handshake's state when Conn is a *tls.Conn
	// (taken once at the hand-over: it cannot change after).
	tlsState *tls.ConnectionState
}

// newPrefixConn returns c with buf to be read first.
func newPrefixConn(c net.Conn, buf []byte) *prefixConn {
	p := &prefixConn{Conn: c, buf: buf}
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		p.tlsState = &st
	}
	return p
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.buf) > 0 {
		n := copy(b, p.buf)
		p.buf = p.buf[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// CloseWrite half-closes the connection when it can (TCP, TLS): net/http
// does before closing after an error answer, so the client reads the
// answer instead of a reset.
func (p *prefixConn) CloseWrite() error {
	if cw, ok := p.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// WithHandedOverTLS fills Request.TLS for requests on connections the
// fast front end handed to net/http after reading from a TLS connection
// (see HandedOverTLS), so h tells them from plain HTTP (HSTS, Secure
// cookies, X-Forwarded-Proto). The server must set ConnContext to
// httpx.ConnContext.
func WithHandedOverTLS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			r.TLS = HandedOverTLS(httpx.ConnFrom(r.Context()))
		}
		h.ServeHTTP(w, r)
	})
}

// HandedOverTLS returns the TLS state of a connection the fast front end
// handed to net/http after reading from it (net/http sees only a
// net.Conn then, and leaves Request.TLS nil), or nil for any other
// connection.
func HandedOverTLS(c net.Conn) *tls.ConnectionState {
	if p, ok := c.(*prefixConn); ok {
		return p.tlsState
	}
	return nil
}

// Connection states.
const (
	connNew     int32 = iota // accepted, no complete request yet
	connActive               // reading or serving a request
	connIdle                 // waiting for the next request
	connClosing              // closed by SetKeepAlivesEnabled(false) or Shutdown
)

// bytesAsString returns b as a string without copying, for a map lookup
// or a comparison that ends before b changes.
func bytesAsString(b []byte) string {
	return unsafeString(b)
}

// hostKey returns the routing table key of a Host value (port and trailing
// dot dropped, lower case), without allocating for a lower-case name.
func hostKey(h []byte) string {
	if i := bytes.IndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	h = bytes.TrimSuffix(h, []byte("."))
	for _, c := range h {
		if 'A' <= c && c <= 'Z' {
			return string(bytes.ToLower(h))
		}
	}
	return bytesAsString(h)
}
