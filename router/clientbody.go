package router

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
)

// clientBody is the body of a request being proxied. While it is still
// arriving, the request counts as receiving on its backend, not as load;
// and it remembers how reading it failed, so the proxy can tell a client's
// fault (stalled, malformed, gone) from the app's.
type clientBody struct {
	body      io.ReadCloser
	b         *Backend
	remaining int64 // bytes still announced by Content-Length; < 0: unknown (chunked)

	once sync.Once // received
	mu   sync.Mutex
	err  error // the first read error other than io.EOF
}

func newClientBody(body io.ReadCloser, b *Backend, contentLength int64) *clientBody {
	b.receiving.Add(1)
	return &clientBody{body: body, b: b, remaining: contentLength}
}

// Read is called by the transport, possibly on another goroutine than the
// handler's; one at a time.
func (cb *clientBody) Read(p []byte) (int, error) {
	n, err := cb.body.Read(p)
	if cb.remaining >= 0 {
		// The transport stops at Content-Length without reading the EOF.
		if cb.remaining -= int64(n); cb.remaining <= 0 {
			cb.received()
		}
	}
	switch {
	case err == io.EOF:
		cb.received()
	case err != nil:
		cb.mu.Lock()
		if cb.err == nil {
			cb.err = err
		}
		cb.mu.Unlock()
		cb.received()
	}
	return n, err
}

func (cb *clientBody) Close() error {
	cb.received()
	return cb.body.Close()
}

// received ends the receiving phase: the body arrived, failed or was given up.
func (cb *clientBody) received() {
	cb.once.Do(func() { cb.b.receiving.Add(-1) })
}

// readErr returns how reading the body failed, or nil.
func (cb *clientBody) readErr() error {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return cb.err
}

// clientBodyKey is the context key of a request's *clientBody.
type clientBodyKey struct{}

// clientFault is how a request failed because of its own client.
type clientFault struct {
	status int    // what the client gets
	reason string // for the page and the log
	gone   bool   // the client hung up: nobody reads the answer
}

// classifyBodyError says what a failed read of a request body means.
func classifyBodyError(err error) clientFault {
	var ne net.Error
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return clientFault{status: http.StatusRequestEntityTooLarge, reason: "request body too large"}
	case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return clientFault{status: http.StatusRequestTimeout, reason: "the client stopped sending the request body"}
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed):
		return clientFault{status: http.StatusBadRequest, reason: "the client closed the connection before the request body ended", gone: true}
	default:
		return clientFault{status: http.StatusBadRequest, reason: "malformed request body"}
	}
}
