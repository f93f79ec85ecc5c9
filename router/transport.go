package router

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
)

// transport carries requests to backends. Plain GET and HEAD requests
// without a body (nearly all traffic) take a lean HTTP/1.1 path: the
// handler's goroutine writes the request on a pooled keep-alive connection
// and reads the response itself. net/http.Transport instead hands each
// request to two goroutines per connection (writeLoop, readLoop) and reads
// ahead after every response; on a loaded 2-core machine those hand-offs and
// syscalls are a large part of the proxy's cost. Everything else (request
// bodies, upgrades such as websockets, other methods) goes to the standard
// transport, which handles them fully (100-continue, early responses).
type transport struct {
	std         *http.Transport
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle     int           // idle connections kept per backend address
	idleTimeout time.Duration // an idle connection older than this is closed
	respTimeout time.Duration // 0: wait for response headers as long as the client does
	maxHeader   int64         // bytes a response head may take

	mu    sync.Mutex
	idle  map[string][]*backendConn // addr → idle connections, most recent last
	sweep *time.Timer               // pending sweep of expired idle connections, or nil
}

// backendConn is one keep-alive connection to a backend.
type backendConn struct {
	addr   string
	conn   net.Conn
	lr     limitedReader // between conn and br: bounds response heads
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
	peeker *idlePeeker // nil where sockets cannot be peeked at
}

const (
	// ioBufferSize is the size of each connection's read and write buffers.
	ioBufferSize = 4 << 10
	// maxInformational is how many 1xx responses may precede the final one.
	maxInformational = 5
)

func newTransport(opts Options) *transport {
	dialTimeout := opts.DialTimeout
	if dialTimeout <= 0 {
		dialTimeout = DefaultDialTimeout
	}
	maxIdle := opts.MaxIdleConnsPerHost
	if maxIdle <= 0 {
		maxIdle = DefaultMaxIdleConnsPerHost
	}
	idleTimeout := opts.IdleConnTimeout
	if idleTimeout <= 0 {
		idleTimeout = DefaultIdleConnTimeout
	}
	respTimeout := opts.ResponseHeaderTimeout
	if respTimeout <= 0 {
		respTimeout = DefaultResponseHeaderTimeout
	}
	maxHeader := opts.MaxResponseHeaderBytes
	if maxHeader <= 0 {
		maxHeader = DefaultMaxResponseHeaderBytes
	}
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: DefaultTCPKeepAlive}
	return &transport{
		std: &http.Transport{
			Proxy:                  nil, // never honour HTTP_PROXY for local containers
			DialContext:            dialer.DialContext,
			MaxIdleConns:           0, // no global cap; the per-host cap applies
			MaxIdleConnsPerHost:    maxIdle,
			IdleConnTimeout:        idleTimeout,
			ResponseHeaderTimeout:  respTimeout,
			MaxResponseHeaderBytes: maxHeader,
			ExpectContinueTimeout:  DefaultExpectContinueTimeout,
			DisableCompression:     true, // pass encodings through untouched
			ForceAttemptHTTP2:      false,
		},
		dial:        dialer.DialContext,
		maxIdle:     maxIdle,
		idleTimeout: idleTimeout,
		respTimeout: respTimeout,
		maxHeader:   maxHeader,
		idle:        map[string][]*backendConn{},
	}
}

// lean reports whether req can take the lean path.
func lean(req *http.Request) bool {
	return (req.Method == http.MethodGet || req.Method == http.MethodHead) &&
		(req.Body == nil || req.Body == http.NoBody) && req.ContentLength == 0 &&
		len(req.Header["Upgrade"]) == 0 && len(req.TransferEncoding) == 0 &&
		req.URL.Scheme == "http"
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !lean(req) {
		resp, err := t.std.RoundTrip(req)
		if err != nil && strings.Contains(err.Error(), stdHeaderLimitError) {
			// net/http has no sentinel for this; give callers ours.
			err = fmt.Errorf("%w: backend %s sent more than %d bytes: %w", ErrResponseHeaderTooLarge, req.URL.Host, t.maxHeader, err)
		}
		if err == nil && resp.StatusCode < 100 {
			// net/http.ReadResponse accepts "000"; writing it would panic.
			resp.Body.Close()
			return nil, fmt.Errorf("backend %s: %w %03d", req.URL.Host, errInvalidStatus, resp.StatusCode)
		}
		return resp, err
	}
	ctx := req.Context()
	addr := req.URL.Host
	for {
		bc, reused := t.take(addr)
		if bc == nil {
			var err error
			if bc, err = t.dialConn(ctx, addr); err != nil {
				return nil, err
			}
		}
		resp, err := t.roundTrip(ctx, bc, req)
		if err == nil {
			return resp, nil
		}
		// A pooled connection the backend closed while it was idle fails
		// before any response byte: GET and HEAD are safe to send again on a
		// fresh connection, as net/http.Transport does.
		if reused && ctx.Err() == nil && staleConnError(err) {
			continue
		}
		return nil, err
	}
}

// roundTrip sends req on bc and reads the response head. On success the
// response body owns bc; on error bc is closed.
func (t *transport) roundTrip(ctx context.Context, bc *backendConn, req *http.Request) (*http.Response, error) {
	// A client that goes away must not leave us blocked on the backend:
	// cancel unblocks any read or write on the connection.
	stop := context.AfterFunc(ctx, func() { _ = bc.conn.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, error) {
		stop()
		_ = bc.conn.Close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("backend %s: %w", bc.addr, ctxErr)
		}
		return nil, err
	}
	if err := req.Write(bc.bw); err != nil {
		return fail(err)
	}
	if err := bc.bw.Flush(); err != nil {
		return fail(err)
	}
	if t.respTimeout > 0 {
		_ = bc.conn.SetReadDeadline(time.Now().Add(t.respTimeout))
	}
	var resp *http.Response
	for informational := 0; ; informational++ {
		// Each response head, 1xx ones included, gets the full budget, as
		// in net/http.Transport.
		bc.lr.n = t.maxHeader
		var err error
		resp, err = http.ReadResponse(bc.br, req)
		if err != nil {
			if bc.lr.n <= 0 {
				err = fmt.Errorf("%w: backend %s sent more than %d bytes", ErrResponseHeaderTooLarge, bc.addr, t.maxHeader)
			}
			return fail(err)
		}
		// Skip informational responses (103 Early Hints), a few at most;
		// a 101 to a request that asked for no upgrade is a protocol error.
		if resp.StatusCode >= 200 {
			break
		}
		if resp.StatusCode < 100 {
			return fail(fmt.Errorf("backend %s: %w %03d", bc.addr, errInvalidStatus, resp.StatusCode))
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return fail(fmt.Errorf("backend %s: unexpected 101 Switching Protocols", bc.addr))
		}
		if informational == maxInformational {
			return fail(fmt.Errorf("backend %s: too many 1xx responses", bc.addr))
		}
	}
	bc.lr.n = unlimited
	if t.respTimeout > 0 {
		_ = bc.conn.SetReadDeadline(time.Time{})
		// Clearing the deadline may have undone a cancellation that fired
		// just before; ctx.Err is set before AfterFunc's function runs.
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
	}
	resp.Body = &leanBody{body: resp.Body, bc: bc, t: t, stop: stop, keep: !resp.Close}
	return resp, nil
}

// staleConnError reports whether err is how a write to, or the first read
// from, a connection the peer already closed fails.
func staleConnError(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (t *transport) dialConn(ctx context.Context, addr string) (*backendConn, error) {
	conn, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	bc := &backendConn{
		addr:   addr,
		conn:   conn,
		lr:     limitedReader{r: conn, n: unlimited},
		bw:     bufio.NewWriterSize(conn, ioBufferSize),
		peeker: newIdlePeeker(conn),
	}
	bc.br = bufio.NewReaderSize(&bc.lr, ioBufferSize)
	return bc, nil
}

// errInvalidStatus: a backend answered with a status code below 100,
// which http.ReadResponse accepts and http.ResponseWriter refuses.
var errInvalidStatus = errors.New("invalid status code")

// stdHeaderLimitError is how net/http.Transport words a response head over
// MaxResponseHeaderBytes.
const stdHeaderLimitError = "server response headers exceeded"

// unlimited is a limitedReader budget that never runs out.
const unlimited = math.MaxInt64

// limitedReader fails reads once n bytes were read. The transport sets n
// to the header budget while it reads a response head, so a backend that
// sends an endless header costs at most that much memory, and to unlimited
// for bodies (copied through in fixed-size buffers).
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, ErrResponseHeaderTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// get takes the most recently used idle connection to addr, if any.
func (t *transport) get(addr string) (bc *backendConn, reused bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	conns := t.idle[addr]
	if len(conns) == 0 {
		return nil, false
	}
	for len(conns) > 0 {
		bc = conns[len(conns)-1]
		conns[len(conns)-1] = nil
		conns = conns[:len(conns)-1]
		if time.Since(bc.idleAt) < t.idleTimeout {
			break
		}
		_ = bc.conn.Close()
		bc = nil
	}
	if len(conns) == 0 {
		delete(t.idle, addr)
	} else {
		t.idle[addr] = conns
	}
	return bc, bc != nil
}

// take returns an idle connection to addr fit for a new request, if any.
// One the backend sent bytes on while it was idle is closed: they would be
// read as the answer to the next request (a body longer than its
// Content-Length, a body on a 204 or 304, an answer to nothing), and a
// client would get what the app meant for another. put only sees the bytes
// that came with the response; these came later. net/http.Transport
// watches idle connections with a read for the same reason.
func (t *transport) take(addr string) (bc *backendConn, reused bool) {
	for {
		if bc, reused = t.get(addr); bc == nil || !bc.peeker.idleReadable() {
			return bc, reused
		}
		_ = bc.conn.Close()
	}
}

// put returns a connection whose response was read completely to the pool.
func (t *transport) put(bc *backendConn) {
	if bc.br.Buffered() > 0 { // bytes after the response: not a clean connection
		_ = bc.conn.Close()
		return
	}
	bc.idleAt = time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	conns := t.idle[bc.addr]
	if len(conns) >= t.maxIdle {
		_ = bc.conn.Close()
		return
	}
	t.idle[bc.addr] = append(conns, bc)
	if t.sweep == nil {
		t.sweep = time.AfterFunc(t.idleTimeout, t.sweepIdle)
	}
}

// sweepIdle closes idle connections that expired, so connections to
// backends that are gone (old releases) do not stay open.
func (t *transport) sweepIdle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweep = nil
	for addr, conns := range t.idle {
		kept := conns[:0]
		for _, bc := range conns {
			if time.Since(bc.idleAt) < t.idleTimeout {
				kept = append(kept, bc)
			} else {
				_ = bc.conn.Close()
			}
		}
		clear(conns[len(kept):])
		if len(kept) == 0 {
			delete(t.idle, addr)
		} else {
			t.idle[addr] = kept
		}
	}
	if len(t.idle) > 0 {
		t.sweep = time.AfterFunc(t.idleTimeout, t.sweepIdle)
	}
}

// closeIdleTo closes the idle connections to one backend address. The
// net/http path cannot close one address's connections alone: its idle
// connections all go, and the next non-GET request to another backend
// dials anew (on loopback, tens of microseconds).
func (t *transport) closeIdleTo(addr string) {
	t.std.CloseIdleConnections()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, bc := range t.idle[addr] {
		_ = bc.conn.Close()
	}
	delete(t.idle, addr)
}

// CloseIdleConnections closes every idle connection to every backend.
func (t *transport) CloseIdleConnections() {
	t.std.CloseIdleConnections()
	t.mu.Lock()
	defer t.mu.Unlock()
	for addr, conns := range t.idle {
		for _, bc := range conns {
			_ = bc.conn.Close()
		}
		delete(t.idle, addr)
	}
}

// leanBody is a lean-path response body. Read to the end, it puts the
// connection back into the pool; closed early, it closes the connection
// (draining an unread body could take forever).
type leanBody struct {
	body io.ReadCloser
	bc   *backendConn
	t    *transport
	stop func() bool
	keep bool // the response allows reusing the connection
	done bool
}

func (b *leanBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.finish(true)
	}
	return n, err
}

func (b *leanBody) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

func (b *leanBody) finish(complete bool) {
	b.done = true
	// stop reports false when the client's context already fired and set a
	// deadline on the connection: it cannot be reused then.
	if b.stop() && complete && b.keep {
		b.t.put(b.bc)
		return
	}
	_ = b.bc.conn.Close()
}
