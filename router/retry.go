package router

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

const (
	// DownPeriod is how long pick avoids a backend after a request to it
	// failed before any response came back.
	DownPeriod = 2 * time.Second
	// MaxRetries bounds how many other backends one request is retried on.
	MaxRetries = 2
)

// backendTransport is the RoundTripper of the proxy for one backend: it
// sends through the router's transport and, when the backend fails before
// answering, marks it down and retries on other backends when that is safe.
// The success path costs one extra call.
type backendTransport struct {
	r       *Router
	b       *Backend
	release string // of b's group: retries stay in it
	// keepBodies: wrap request bodies so a failed attempt does not close
	// them, which a retry needs. Only routes with several backends pay the
	// allocation.
	keepBodies bool
}

func (bt *backendTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if bt.keepBodies && req.Body != nil && req.Body != http.NoBody {
		// ReverseProxy closes the body it gave us when it is done.
		req.Body = keepOpenBody{req.Body}
	}
	resp, err := bt.r.transport.RoundTrip(req)
	if err == nil {
		return resp, nil
	}
	return bt.r.retry(req, bt.b, bt.release, err)
}

// keepOpenBody is a request body whose Close does nothing, so that a
// transport that fails to connect (and closes the body, as RoundTrip must)
// leaves it readable for the next backend.
type keepOpenBody struct{ io.ReadCloser }

func (keepOpenBody) Close() error { return nil }

// failure says what a transport error means for the backend and the request.
type failure int

const (
	failedAfterResponse failure = iota // or timed out, or the client left: leave it be
	failedUnsafe                       // nothing came back, but the backend may have acted on the request
	failedSafe                         // nothing came back and the request can be sent elsewhere
)

// classify sorts a transport error. Like nginx's proxy_next_upstream
// default, a connection that could not be made is always safe to retry
// (nothing was sent); a connection reset or closed before the response is
// safe only for an idempotent request without a body.
func classify(req *http.Request, err error) failure {
	if req.Context().Err() != nil {
		return failedAfterResponse
	}
	return classifyFailure(err, idempotent(req.Method) && (req.Body == nil || req.Body == http.NoBody) && len(req.Header["Upgrade"]) == 0)
}

// classifyFailure sorts a transport error of a request that may
// (replayable) or may not be sent twice; both front ends use it.
func classifyFailure(err error, replayable bool) failure {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return failedSafe
	}
	if !staleConnError(err) {
		return failedAfterResponse
	}
	if replayable {
		return failedSafe
	}
	return failedUnsafe
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// retry handles err, the failure of req on backend failed (of release): it
// marks the backend down if it did not answer, and sends req to up to
// MaxRetries other backends of the same release in the host's current route
// (of the stable group if that release left the route) while that is safe. The extra
// backends are counted in flight until the response body is closed; failed
// stays counted by ServeHTTP until the request ends.
func (r *Router) retry(req *http.Request, failed *Backend, release string, err error) (*http.Response, error) {
	tried := [1 + MaxRetries]*Backend{failed}
	host := normalizeHost(req.Host)
	for k := 1; ; k++ {
		f := classify(req, err)
		if f == failedAfterResponse {
			return nil, err
		}
		tried[k-1].markDown(DownPeriod)
		if f != failedSafe || k > MaxRetries {
			return nil, err
		}
		rt, g, i := r.pick(host, selector{retry: true, release: release}, tried[:k])
		if i < 0 {
			return nil, err
		}
		b := g.backends[i]
		r.logger.Warn("router: backend failed before answering; retrying on another",
			"app", rt.app, "backend", tried[k-1].addr, "retry_backend", b.addr,
			"method", req.Method, "host", req.Host, "path", req.URL.Path, "error", err)
		req.URL.Host = b.addr
		var resp *http.Response
		resp, err = r.transport.RoundTrip(req)
		if err == nil {
			if resp.StatusCode == http.StatusSwitchingProtocols &&
				!strings.EqualFold(resp.Header.Get("Upgrade"), req.Header.Get("Upgrade")) {
				// ReverseProxy rejects this without closing the body, which
				// would leave b counted in flight forever.
				resp.Body.Close()
				b.release()
				return nil, errors.New("backend " + b.addr + " switched to a protocol that was not asked for")
			}
			resp.Body = releaseOnClose(resp.Body, b)
			return resp, nil
		}
		b.release()
		tried[k] = b
	}
}

// releasingBody releases its backend's in-flight count when closed.
type releasingBody struct {
	io.ReadCloser
	b    *Backend
	once sync.Once
}

func (rb *releasingBody) Close() error {
	err := rb.ReadCloser.Close()
	rb.once.Do(rb.b.release)
	return err
}

// releasingConn is the body of an upgraded (101) response, which
// ReverseProxy writes to as well.
type releasingConn struct {
	*releasingBody
	w io.Writer
}

func (rc releasingConn) Write(p []byte) (int, error) { return rc.w.Write(p) }

func releaseOnClose(body io.ReadCloser, b *Backend) io.ReadCloser {
	rb := &releasingBody{ReadCloser: body, b: b}
	if w, ok := body.(io.ReadWriteCloser); ok {
		return releasingConn{rb, w}
	}
	return rb
}
