package router

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"sync"
	"time"
)

// headerRequestID is the canonical form of X-Request-Id.
const headerRequestID = "X-Request-Id"

// newRoute builds the serving form of in (validated, hosts normalized):
// one ReverseProxy per backend, so the proxy's Rewrite and ErrorHandler
// know the backend, app and release without any per-request context value.
// Each release keeps the counters it had in prev, the app's route until now
// (nil if none).
func (r *Router) newRoute(in Route, hosts []string, prev *route) *route {
	hsts := HSTSValue(in.HSTSMaxAge)
	rt := &route{
		app:        in.App,
		hstsMaxAge: in.HSTSMaxAge,
		hsts:       hsts,
		hosts:      hosts,
		page503:    []byte("503 service unavailable: app " + in.App + " has no running release; deploy it with git push\n"),
		replaced:   make(chan struct{}),
		appStats:   new(releaseStats),
	}
	if prev != nil {
		rt.appStats = prev.appStats
	}
	keepBodies := len(in.Backends) > 1 // a retry needs the body
	if in.Canary != nil {
		keepBodies = keepBodies || len(in.Canary.Backends) > 1
	}
	newGroup := func(release string, backends []*Backend) *group {
		g := &group{release: release, backends: slices.Clone(backends), stats: prev.statsOf(release),
			appStats: rt.appStats, app: in.App, logReqs: in.LogRequests}
		g.proxies = make([]*httputil.ReverseProxy, len(backends))
		for i, b := range g.backends {
			g.proxies[i] = r.newProxy(in.App, &backendTransport{r: r, b: b, release: release, keepBodies: keepBodies}, g)
			if hsts != "" {
				g.proxies[i].ModifyResponse = addHSTS(hsts)
			}
		}
		return g
	}
	rt.stable = newGroup(in.Release, in.Backends)
	rt.backends = rt.stable.backends
	if c := in.Canary; c != nil {
		rt.canary = newGroup(c.Release, c.Backends)
		rt.weight = c.Weight
		rt.backends = slices.Concat(rt.stable.backends, rt.canary.backends)
	}
	rt.asleep = in.Asleep && len(rt.backends) == 0
	rt.hold = in.Hold && len(rt.backends) == 0
	rt.holdTimeout = in.HoldTimeout
	if rt.holdTimeout <= 0 {
		rt.holdTimeout = DefaultHoldTimeout
	}
	return rt
}

// HSTSValue is the Strict-Transport-Security header value for maxAge, ""
// for maxAge <= 0.
func HSTSValue(maxAge time.Duration) string {
	if maxAge <= 0 {
		return ""
	}
	return "max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)
}

// addHSTS returns a ReverseProxy.ModifyResponse that adds value as
// Strict-Transport-Security to responses over HTTPS for hosts with a
// public certificate, unless the app set the header itself.
func addHSTS(value string) func(*http.Response) error {
	return func(resp *http.Response) error {
		req := resp.Request // the outgoing request: a copy of the client's, TLS included
		if req == nil || req.TLS == nil || IsLocalName(req.Host) {
			return nil
		}
		if _, ok := resp.Header["Strict-Transport-Security"]; !ok {
			resp.Header["Strict-Transport-Security"] = []string{value}
		}
		return nil
	}
}

// newProxy returns the proxy to bt's backend; g's counters count the
// requests the router answers itself because the backend did not.
func (r *Router) newProxy(app string, bt *backendTransport, g *group) *httputil.ReverseProxy {
	addr := bt.b.addr
	page502, pageHeaderTooLarge, page504 := page502(app), pageHeaderTooLarge(app), page504(app)
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = addr
			pr.Out.Host = pr.In.Host // the app sees the host the client asked for
			pr.SetXForwarded()
			if len(pr.Out.Header[headerRequestID]) == 0 {
				pr.Out.Header[headerRequestID] = []string{newRequestID()}
			}
		},
		Transport: bt,
		// FlushInterval 0: ReverseProxy itself flushes after every write for
		// the responses that stream (text/event-stream, or no Content-Length:
		// chunked, long polling). A negative value would also do it for every
		// fixed-length response, at the cost of a timer, a goroutine and an
		// extra write syscall for the headers on each request.
		FlushInterval: 0,
		BufferPool:    r.bufferPool,
		ErrorLog:      r.errorLog,
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			// A body that failed to arrive is the client's fault, whatever
			// the transport made of it (and over HTTP/1 a read timeout also
			// cancels the request's context).
			if cb, ok := req.Context().Value(clientBodyKey{}).(*clientBody); ok {
				if bodyErr := cb.readErr(); bodyErr != nil {
					r.clientFailed(w, req, app, addr, classifyBodyError(bodyErr), bodyErr)
					return
				}
			}
			if errors.Is(err, context.Canceled) || req.Context().Err() != nil {
				// The client went away: not the app's fault, nobody to answer.
				r.logger.Debug("router: client closed request",
					"app", app, "backend", addr, "status", StatusClientClosedRequest)
				return
			}
			if errors.Is(err, ErrResponseHeaderTooLarge) {
				r.logger.Error("router: app sent response headers over the limit; answered 502",
					"app", app, "backend", addr, "status", http.StatusBadGateway,
					"method", req.Method, "host", req.Host, "path", req.URL.Path, "error", err)
				g.stats.proxyErrors.Add(1)
				g.appStats.proxyErrors.Add(1)
				writePage(w, http.StatusBadGateway, pageHeaderTooLarge)
				return
			}
			status, page := http.StatusBadGateway, page502
			var ne net.Error
			if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
				status, page = http.StatusGatewayTimeout, page504
			}
			r.logger.Error("router: backend did not answer",
				"app", app, "backend", addr, "status", status,
				"method", req.Method, "host", req.Host, "path", req.URL.Path, "error", err)
			g.stats.proxyErrors.Add(1)
			g.appStats.proxyErrors.Add(1)
			writePage(w, status, page)
		},
	}
}

// The pages the router answers for an app whose backend did not.
func page502(app string) []byte {
	return []byte("502 bad gateway: app " + app + " did not answer; see what it says with: plat logs " + app + "\n")
}

func pageHeaderTooLarge(app string) []byte {
	return []byte("502 bad gateway: app " + app + " sent response headers that are too large; see what it says with: plat logs " + app + "\n")
}

func page504(app string) []byte {
	return []byte("504 gateway timeout: app " + app + " did not answer in time; see what it says with: plat logs " + app + "\n")
}

// clientFailed answers a request whose client failed to send it whole.
// It is logged below ERROR: the app did nothing wrong.
func (r *Router) clientFailed(w http.ResponseWriter, req *http.Request, app, addr string, f clientFault, err error) {
	level := slog.LevelInfo
	if f.gone {
		level = slog.LevelDebug
	}
	r.logger.Log(req.Context(), level, "router: client error: "+f.reason,
		"app", app, "backend", addr, "status", f.status,
		"method", req.Method, "host", req.Host, "path", req.URL.Path, "error", err)
	w.Header()["Connection"] = []string{"close"} // the rest of the body is not worth reading
	writePage(w, f.status, []byte(strconv.Itoa(f.status)+" "+http.StatusText(f.status)+": "+f.reason+"\n"))
}

// newRequestID returns 16 random hex characters. math/rand/v2's global
// source is per-thread ChaCha8: fast, lock-free and unpredictable enough for
// a correlation id.
func newRequestID() string {
	var buf [16]byte
	return string(appendRequestID(buf[:0]))
}

// appendRequestID appends a new request id to b.
func appendRequestID(b []byte) []byte {
	const hex = "0123456789abcdef"
	v := rand.Uint64()
	for range 16 {
		b = append(b, hex[v&0xf])
		v >>= 4
	}
	return b
}

// bufferSize is the copy buffer ReverseProxy would otherwise allocate for
// every response.
const bufferSize = 32 * 1024

// bufferPool recycles response copy buffers. It pools array pointers, so
// Get and Put do not allocate.
type bufferPool struct{ p sync.Pool }

func (bp *bufferPool) Get() []byte {
	if v, ok := bp.p.Get().(*[bufferSize]byte); ok {
		return v[:]
	}
	return new([bufferSize]byte)[:]
}

func (bp *bufferPool) Put(b []byte) {
	if len(b) == bufferSize {
		bp.p.Put((*[bufferSize]byte)(b))
	}
}
