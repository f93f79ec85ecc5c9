package router

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// bytesOf returns the bytes of *a, an array of bytes.
func bytesOf[A any](a *A) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(a)), unsafe.Sizeof(*a))
}

// arrayOf returns the array b (of the array's length) is the bytes of.
func arrayOf[A any](b []byte) *A { return (*A)(unsafe.Pointer(unsafe.SliceData(b))) }

// fastConn is one client connection on the fast path.
type fastConn struct {
	fl    *FastListener
	c     net.Conn
	state atomic.Int32
	tls   bool
	ip    []byte // the client's IP, for X-Forwarded-For
	addr  string // the client's "ip:port"

	buf  []byte // request bytes read: buf[:n]
	n    int
	h    requestHead
	resp responseHead
	out  []byte // a head being built, and response bytes to write
	bbuf []byte // bytes read from the backend: bbuf[:bn]
	bn   int

	watch    *clientWatch
	deadline time.Time // the read deadline set on c; zero: unknown
}

// serve reads and answers requests until the client closes, the
// connection must close, or a request goes to net/http.
func (fc *fastConn) serve() {
	fl := fc.fl
	defer fl.wg.Done()
	handed := false
	defer func() {
		fl.mu.Lock()
		delete(fl.conns, fc)
		fl.mu.Unlock()
		if fc.state.Load() == connNew {
			fl.unread.Add(-1)
		}
		if !handed {
			fc.c.Close()
		}
		fc.release()
	}()
	if tc, ok := fc.c.(*tls.Conn); ok {
		ctx, cancel := context.WithTimeout(context.Background(), fl.opts.ReadHeaderTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			return
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "" && p != "http/1.1" {
			handed = fc.handOver() // h2 (and ACME's tls-alpn) are net/http's
			return
		}
		fc.tls = true
	}
	fc.addr = fc.c.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(fc.addr); err == nil {
		fc.ip = []byte(host)
	}
	fc.buf = make([]byte, fastReadBuffer)
	for {
		err := fc.readHead()
		if errors.Is(err, errHandOver) {
			handed = fc.handOver()
			return
		}
		if err != nil {
			return
		}
		if fc.state.CompareAndSwap(connNew, connActive) {
			fl.unread.Add(-1)
		}
		keep, handOver := fc.serveRequest()
		if handOver {
			handed = fc.handOver()
			return
		}
		if !keep || !fl.keepAlives.Load() {
			return
		}
		// Keep any pipelined bytes for the next request.
		used := fc.h.size + fc.h.bodyLen
		copy(fc.buf, fc.buf[used:fc.n])
		fc.n -= used
		if fc.n == 0 && !fc.state.CompareAndSwap(connActive, connIdle) {
			return
		}
	}
}

// handOver passes the connection with the bytes read so far to net/http.
// It reports false if no server takes it any more (the caller closes it).
func (fc *fastConn) handOver() bool {
	fl := fc.fl
	var c net.Conn = fc.c
	if fc.n > 0 {
		c = newPrefixConn(fc.c, fc.buf[:fc.n])
		fc.buf = nil // now c's
	}
	fl.mu.Lock()
	delete(fl.conns, fc)
	fl.mu.Unlock()
	if fc.state.Swap(connActive) == connNew {
		fl.unread.Add(-1) // net/http counts it (StateNew) from here on
	}
	return fl.give(c)
}

// readHead reads until buf holds a complete request that the fast path
// takes (nil: its head and its small body, if any), one it does not
// (errHandOver), or the connection ends.
func (fc *fastConn) readHead() error {
	fl := fc.fl
	fc.h.size, fc.h.bodyLen = 0, 0 // no head yet
	for {
		if fc.n > 0 {
			err := parseRequestHead(fc.buf[:fc.n], &fc.h)
			if err == nil && fc.n < fc.h.size+fc.h.bodyLen {
				if fc.h.size+fc.h.bodyLen > len(fc.buf) {
					return errHandOver
				}
				err = errNeedMore // the rest of a small body is on its way
			}
			if err != errNeedMore {
				return err
			}
			if fc.n == len(fc.buf) {
				return errHandOver // a head this large is net/http's
			}
		}
		// Waiting for a new request: the idle timeout (a new connection
		// gets the header timeout); once it started: the header timeout.
		wait := fl.opts.ReadHeaderTimeout
		if fc.n == 0 && fc.state.Load() == connIdle {
			wait = fl.opts.IdleTimeout
		}
		fc.setReadDeadline(time.Now(), wait)
		m, err := fc.c.Read(fc.buf[fc.n:])
		if m == 0 && isTimeout(err) && fc.h.size > 0 && fc.n >= fc.h.size {
			// A body that stalls after its head: net/http's body timeouts
			// and answers (408) apply to it.
			return errHandOver
		}
		if m > 0 {
			if fc.n == 0 && fc.state.Load() == connIdle && !fc.state.CompareAndSwap(connIdle, connActive) {
				return net.ErrClosed // closed for a shutdown as the request came
			}
			fc.n += m
			continue
		}
		if err != nil {
			return err
		}
	}
}

// maxDeadlineSlack bounds how much later than asked a connection's read
// deadline may be (an eighth of the timeout at most): a keep-alive
// connection that gets a request every few microseconds moves its deadline
// about once per slack instead of once per request (each move is a timer
// update in the runtime).
const maxDeadlineSlack = time.Second

// setReadDeadline makes the client connection's read deadline now+wait,
// or a little later: it keeps the current one if that is within the slack.
func (fc *fastConn) setReadDeadline(now time.Time, wait time.Duration) {
	d := now.Add(wait)
	slack := min(maxDeadlineSlack, wait/8)
	if cur := fc.deadline; !cur.IsZero() && !cur.Before(d) && cur.Sub(d) <= slack {
		return
	}
	d = d.Add(slack) // late by the slack, so the next requests can keep it
	_ = fc.c.SetReadDeadline(d)
	fc.deadline = d
}

// serveRequest answers the parsed request h. keep reports whether the
// connection may serve another; handOver that net/http must take it
// (nothing was sent then).
func (fc *fastConn) serveRequest() (keep, handOver bool) {
	r, fl, h := fc.fl.r, fc.fl, &fc.h
	host := hostKey(h.host)
	for _, ex := range fl.opts.ExceptHosts {
		if host == ex {
			return false, true
		}
	}
	t := r.table.Load()
	rt := t.hosts[host]
	if rt == nil || len(rt.backends) == 0 || r.shadowOf(rt) != nil {
		return false, true // 404, 503, asleep, held, shadowed: net/http's
	}
	// The router's cookies: taken from the request, never shown to the app.
	bucket, uid := -1, ""
	if h.hasCookie {
		bucket, uid = takeRouterCookies(h.fields)
	}
	var setCookies [2]string
	nCookies := 0
	if rt.canary != nil && bucket < 0 {
		bucket = randomBucket()
		setCookies[nCookies] = bucketCookie(bucket, fc.tls)
		nCookies++
	}
	var flags string
	if rt.flags != nil {
		if uid == "" {
			uid = newRequestID() + newRequestID()
			setCookies[nCookies] = uidCookie(uid, fc.tls)
			nCookies++
		}
		flags = rt.flags.header(uid)
	}
	rt, g, i := r.pickIn(t, host, selector{bucket: bucket}, nil)
	if rt == nil || i < 0 {
		return false, true
	}
	if fl.opts.Requests != nil {
		fl.opts.Requests.Add(1)
		defer fl.opts.Requests.Done()
	}
	b := g.backends[i]
	rec := r.startRecording(nil, g, "")
	logged := g.logReqs && r.reqLogOn.Load()
	if logged {
		rec.method, rec.client, rec.backend = methodString(h.method), fc.addr, b.addr
		rec.path = requestPath(h.target)
	}
	fc.out, fc.bbuf = outBuffers.get(), backendBuffers.get()
	defer func() {
		outBuffers.put(fc.out)
		backendBuffers.put(fc.bbuf)
		fc.out, fc.bbuf = nil, nil
	}()
	fl.served.Add(1)
	fc.buildRequest(flags)
	keep = fc.proxy(rt, g, b, rec, setCookies[:nCookies]) && !h.close
	r.endRecording(rec)
	if err := fc.flush(); err != nil {
		return false, false
	}
	return keep, false
}

// bytePool recycles buffers of one size (a pointer to an array, so Get and
// Put do not allocate). Buffers are taken per request, so idle keep-alive
// connections hold none.
type bytePool[A any] struct{ p sync.Pool }

func (bp *bytePool[A]) get() []byte {
	a, ok := bp.p.Get().(*A)
	if !ok {
		a = new(A)
	}
	return bytesOf(a)
}

func (bp *bytePool[A]) put(b []byte) {
	// Sizeof does not evaluate its operand: no array is made (and zeroed).
	if cap(b) == int(unsafe.Sizeof(*(*A)(nil))) {
		bp.p.Put(arrayOf[A](b))
	}
}

var (
	outBuffers     bytePool[[fastOutBuffer]byte]
	backendBuffers bytePool[[fastBackendBuffer]byte]
)

// methodString returns m as a string, without allocating for the
// common methods.
func methodString(m []byte) string {
	switch string(m) {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodHead:
		return http.MethodHead
	case http.MethodPost:
		return http.MethodPost
	case http.MethodPut:
		return http.MethodPut
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodPatch:
		return http.MethodPatch
	case http.MethodOptions:
		return http.MethodOptions
	}
	return string(m)
}

// requestPath returns the decoded path of an origin-form target, as
// net/http's Request.URL.Path has it (the query left out).
func requestPath(target []byte) string {
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	path := string(target)
	if p, err := url.PathUnescape(path); err == nil {
		return p
	}
	return path
}

// takeRouterCookies takes the router's cookies out of the request's Cookie
// fields (marking those fields rewritten or dropped) and returns the
// client's canary bucket (-1 if none) and flags id ("" if none). Fields
// without them are left as they are, to be copied without allocating.
func takeRouterCookies(fields []headerField) (bucket int, uid string) {
	bucket = -1
	for i := range fields {
		f := &fields[i]
		if f.kind != fieldCookie || !bytes.Contains(f.value, []byte("plat_")) {
			continue
		}
		l := string(f.value)
		if strings.Contains(l, BucketCookie) {
			l = stripBucket(l, &bucket)
		}
		if strings.Contains(l, UIDCookie) {
			l = stripUID(l, &uid)
		}
		if l == "" {
			f.kind = fieldDropped
		} else {
			f.kind, f.value = fieldCookieRewritten, []byte(l)
		}
	}
	return bucket, uid
}

// buildRequest writes the request head for the backend into fc.out: the
// client's head without hop-by-hop fields and the ones the router owns,
// with X-Forwarded-*, X-Request-Id, Plat-Flags and the cookies left.
func (fc *fastConn) buildRequest(flags string) {
	h := &fc.h
	out := fc.out[:0]
	out = append(out, h.method...)
	out = append(out, ' ')
	out = append(out, h.target...)
	out = append(out, " HTTP/1.1\r\nHost: "...)
	out = append(out, h.host...)
	out = append(out, "\r\n"...)
	for _, f := range h.fields {
		switch f.kind {
		case fieldOther, fieldRequestID, fieldCookie:
			out = append(out, f.line...)
		case fieldCookieRewritten:
			out = append(out, "Cookie: "...)
			out = append(out, f.value...)
			out = append(out, "\r\n"...)
		case fieldContentLength:
			out = append(out, f.line...)
		}
	}
	out = append(out, "X-Forwarded-For: "...)
	out = append(out, fc.ip...)
	out = append(out, "\r\nX-Forwarded-Host: "...)
	out = append(out, h.host...)
	if fc.tls {
		out = append(out, "\r\nX-Forwarded-Proto: https\r\n"...)
	} else {
		out = append(out, "\r\nX-Forwarded-Proto: http\r\n"...)
	}
	if !h.hasRequestID {
		out = append(out, "X-Request-Id: "...)
		out = appendRequestID(out)
		out = append(out, "\r\n"...)
	}
	if flags != "" {
		out = append(out, FlagsHeader+": "...)
		out = append(out, flags...)
		out = append(out, "\r\n"...)
	}
	out = append(out, "\r\n"...)
	fc.out = append(out, fc.buf[h.size:h.size+h.bodyLen]...) // the whole body is here (readHead)
}

// release returns the connection's buffers.
func (fc *fastConn) release() {
	fc.out, fc.bbuf, fc.buf = nil, nil, nil
}

// date caches the Date field for the current second.
var date atomic.Pointer[dateField]

type dateField struct {
	sec  int64
	line []byte
}

// appendDate appends "Date: …\r\n" for now, which net/http's server adds
// to responses that lack one.
func appendDate(b []byte) []byte {
	now := time.Now()
	d := date.Load()
	if d == nil || d.sec != now.Unix() {
		d = &dateField{sec: now.Unix(), line: []byte("Date: " + now.UTC().Format(http.TimeFormat) + "\r\n")}
		date.Store(d)
	}
	return append(b, d.line...)
}

// errClientGone: the client closed its connection while the backend was
// working on its request.
var errClientGone = errors.New("client went away")

// clientWatch reads from a client connection while its request waits for
// a slow backend, to notice the client leaving (as net/http's background
// read does) and cancel the backend exchange.
type clientWatch struct {
	fc      *fastConn
	bc      net.Conn
	timer   *time.Timer
	mu      sync.Mutex
	running bool
	done    chan struct{}
	gone    atomic.Bool
	b       [1]byte
	got     bool // read a byte (pipelined): append it to buf
}

// startWatch arms a watch of the client for the backend exchange on bc.
func (fc *fastConn) startWatch(bc net.Conn) *clientWatch {
	w := fc.watch
	if w == nil {
		w = &clientWatch{fc: fc}
		w.timer = time.AfterFunc(time.Hour, w.run)
		w.timer.Stop()
		fc.watch = w
	}
	w.bc, w.got = bc, false
	w.gone.Store(false)
	w.timer.Reset(fastWatchDelay)
	return w
}

func (w *clientWatch) run() {
	w.mu.Lock()
	if w.bc == nil {
		w.mu.Unlock()
		return
	}
	w.running = true
	w.done = make(chan struct{})
	bc, c := w.bc, w.fc.c
	w.mu.Unlock()
	defer close(w.done)
	_ = c.SetReadDeadline(time.Time{})
	n, err := c.Read(w.b[:])
	if n > 0 {
		w.got = true
		return
	}
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		w.gone.Store(true)
		_ = bc.SetDeadline(time.Unix(1, 0)) // unblock the exchange
	}
}

// stop ends the watch; it reports whether the client went away.
func (w *clientWatch) stop() bool {
	w.timer.Stop()
	w.mu.Lock()
	w.bc = nil
	running := w.running
	w.running = false
	done := w.done
	w.mu.Unlock()
	if running {
		_ = w.fc.c.SetReadDeadline(time.Unix(1, 0)) // unblock the watcher's read
		w.fc.deadline = time.Time{}
		<-done
		if w.got && len(w.fc.buf) > w.fc.n {
			w.fc.buf[w.fc.n] = w.b[0]
			w.fc.n++
		}
	}
	return w.gone.Load()
}

// isTimeout reports whether err is a deadline or timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// statusLine is "HTTP/1.1 " and the status code; the backend's reason
// phrase follows.
func appendStatus(b []byte, status int) []byte {
	b = append(b, "HTTP/1.1 "...)
	return strconv.AppendInt(b, int64(status), 10)
}
