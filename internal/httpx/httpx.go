// Package httpx holds the HTTP server limits every plat listener shares:
// how long a client may take to send its headers, to go on sending its
// request body, and to keep an idle connection open.
package httpx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Defaults for plat's HTTP listeners (the router's and the API's).
const (
	// DefaultReadHeaderTimeout bounds how long a client may take to send a
	// request's line and headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultBodyIdleTimeout bounds how long a request body may stall: each
	// read of the body must bring bytes within it. It is not a total: a
	// large git push or upload may take as long as it keeps moving.
	DefaultBodyIdleTimeout = 30 * time.Second
	// DefaultIdleTimeout closes keep-alive connections that stay silent.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultMaxHeaderBytes bounds a request's line and headers.
	DefaultMaxHeaderBytes = 64 << 10
)

// Limits are the limits of one listener; zero fields take the defaults.
type Limits struct {
	ReadHeaderTimeout time.Duration // 0 → DefaultReadHeaderTimeout
	BodyIdleTimeout   time.Duration // 0 → DefaultBodyIdleTimeout
	IdleTimeout       time.Duration // 0 → DefaultIdleTimeout
	MaxHeaderBytes    int           // 0 → DefaultMaxHeaderBytes
	// OwnBodyTimeout, if set, picks the requests whose handlers bound
	// their body reads themselves (git pushes, with their own idle
	// timeout): BodyIdleTimeout leaves them alone.
	OwnBodyTimeout func(*http.Request) bool
}

// NewServer returns a server for h with the limits applied: header and
// keep-alive timeouts, a header size bound and BodyIdleTimeout, wired to
// the connection (ConnContext) so that a stalled read of a body also ends
// when it outlives the handler.
func NewServer(h http.Handler, l Limits, errorLog *log.Logger) *http.Server {
	handler := BodyIdleTimeout(h, orDefault(l.BodyIdleTimeout, DefaultBodyIdleTimeout))
	if own := l.OwnBodyTimeout; own != nil {
		idle := handler
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if own(r) {
				h.ServeHTTP(w, r)
				return
			}
			idle.ServeHTTP(w, r)
		})
	}
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: orDefault(l.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		IdleTimeout:       orDefault(l.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    orDefault(l.MaxHeaderBytes, DefaultMaxHeaderBytes),
		ConnContext:       ConnContext,
		ErrorLog:          errorLog,
	}
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// connKey is the context key of a request's connection.
type connKey struct{}

// ConnContext is an http.Server.ConnContext that gives BodyIdleTimeout the
// connection of HTTP/1 requests.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// ConnFrom returns the connection a request of a server with ConnContext
// came on, or nil.
func ConnFrom(ctx context.Context) net.Conn {
	c, _ := ctx.Value(connKey{}).(net.Conn)
	return c
}

// ErrBodyIdleTimeout is the error (wrapped, with the connection's own
// timeout error) of a request body read that brought nothing for the idle
// timeout.
var ErrBodyIdleTimeout = errors.New("request body stalled")

// BodyIdleTimeout returns a handler that gives the request body of every
// request to h an idle timeout of d: a read of the body that brings no byte
// for d fails with an error wrapping ErrBodyIdleTimeout and the
// connection's timeout error (so errors.Is(err, os.ErrDeadlineExceeded)
// holds), and every later read fails too. Over HTTP/1 the connection is
// then closed after h returns.
//
// Only a stall ends the body: the deadline is touched only when a read has
// been waiting for d, so handlers may set their own deadlines, and time
// spent between reads (a slow backend, a wake) does not count. Requests
// without a body pass through untouched. d <= 0 returns h.
//
// When h returns before the body ended, net/http's HTTP/1 server reads
// what is left (up to 256 KiB, to keep the connection) before it writes the
// answer, and a reverse proxy's transport may still be reading it too. On
// a server with ConnContext (NewServer) those reads get d in total through
// the connection's deadline; without it a stalled client can still hold
// such a request.
func BodyIdleTimeout(h http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		b := &idleBody{body: r.Body, rc: http.NewResponseController(w), d: d}
		if r.ProtoMajor == 1 {
			// HTTP/2 streams end their body reads when the handler returns.
			b.conn, _ = r.Context().Value(connKey{}).(net.Conn)
		}
		// A copy: the server inspects its own request's Body after h returns.
		r = r.WithContext(r.Context())
		r.Body = b
		defer b.handlerDone()
		h.ServeHTTP(w, r)
	})
}

// idleBody is a request body whose reads time out when they stall.
type idleBody struct {
	body io.ReadCloser
	rc   *http.ResponseController
	conn net.Conn // HTTP/1 only, if the server has ConnContext; else nil
	d    time.Duration

	mu      sync.Mutex
	timer   *time.Timer // fires stall while a read waits; nil until the first read
	stalled bool        // a read waited d: the body is over
	eof     bool        // the body was read to its end
	done    bool        // the handler returned: rc may no longer be used
}

func (b *idleBody) Read(p []byte) (int, error) {
	if err := b.arm(); err != nil {
		return 0, err
	}
	n, err := b.body.Read(p)
	stalled, done := b.disarm(err == io.EOF)
	if err != nil && err != io.EOF && (stalled || done && errors.Is(err, os.ErrDeadlineExceeded)) {
		err = fmt.Errorf("%w: no byte for %s: %w", ErrBodyIdleTimeout, b.d, err)
	}
	return n, err
}

func (b *idleBody) Close() error { return b.body.Close() }

// arm starts the stall timer for one read, or says the body is over.
func (b *idleBody) arm() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stalled {
		return fmt.Errorf("%w: no byte for %s", ErrBodyIdleTimeout, b.d)
	}
	if b.timer == nil {
		b.timer = time.AfterFunc(b.d, b.stall)
	} else {
		b.timer.Reset(b.d)
	}
	return nil
}

// disarm stops the timer after a read and reports whether it fired and
// whether the handler had returned.
func (b *idleBody) disarm(eof bool) (stalled, done bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.timer.Stop()
	b.eof = b.eof || eof
	return b.stalled, b.done
}

// stall runs when a read waited d: a deadline in the past ends the read
// that waits on the connection (HTTP/1) or the stream (HTTP/2).
func (b *idleBody) stall() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return // handlerDone bounded what is left
	}
	b.stalled = true
	_ = b.rc.SetReadDeadline(time.Now())
}

func (b *idleBody) handlerDone() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = true
	if b.timer != nil {
		b.timer.Stop()
	}
	if b.conn != nil && !b.eof && !b.stalled {
		// Reads of the rest of the body after the handler (the server's
		// discard, a proxy transport's) get d in total. The server sets
		// the connection's deadline again for the next request.
		_ = b.conn.SetReadDeadline(time.Now().Add(b.d))
	}
}
