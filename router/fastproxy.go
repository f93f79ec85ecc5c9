package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// proxy sends the request in fc.out to b (of g in rt, counted in flight
// by the pick), retrying on other backends of the release when that is
// safe, and copies the response to the client. It reports whether the
// client connection may serve another request.
func (fc *fastConn) proxy(rt *route, g *group, b *Backend, rec *recorder, setCookies []string) bool {
	r := fc.fl.r
	tried := [1 + MaxRetries]*Backend{b}
	current := b
	defer func() { current.release() }()
	for k := 1; ; k++ {
		bc, err := fc.exchange(current)
		if err == nil {
			return fc.respond(rt, bc, rec, setCookies)
		}
		f := classifyFailure(err, fc.replayable())
		if f == failedAfterResponse || errors.Is(err, errClientGone) {
			return fc.proxyError(rt, g, current, rec, err)
		}
		current.markDown(DownPeriod)
		if f != failedSafe || k > MaxRetries {
			return fc.proxyError(rt, g, current, rec, err)
		}
		nrt, ng, i := r.pick(hostKey(fc.h.host), selector{retry: true, release: g.release}, tried[:k])
		if i < 0 {
			return fc.proxyError(rt, g, current, rec, err)
		}
		next := ng.backends[i]
		r.logger.Warn("router: backend failed before answering; retrying on another",
			"app", nrt.app, "backend", current.addr, "retry_backend", next.addr,
			"method", string(fc.h.method), "host", string(fc.h.host), "path", pathOf(fc.h.target), "error", err)
		current.release()
		current = next
		tried[k] = next
	}
}

// replayable reports whether the request may be sent again after a
// failure that may have reached the app: idempotent and without a body,
// as on the net/http path.
func (fc *fastConn) replayable() bool {
	return fc.h.bodyLen == 0 && idempotent(bytesAsString(fc.h.method))
}

// exchange writes the request to a connection to b and reads the response
// head into fc.bbuf/fc.resp.
func (fc *fastConn) exchange(b *Backend) (*backendConn, error) {
	t := fc.fl.t
	for {
		bc, reused := t.take(b.addr)
		if bc == nil {
			var err error
			if bc, err = t.dialConn(context.Background(), b.addr); err != nil { // the dialer has the dial timeout
				return nil, err
			}
		}
		err := fc.roundTrip(t, bc)
		if err == nil {
			return bc, nil
		}
		_ = bc.conn.Close()
		// A pooled connection the app closed meanwhile: send again on a
		// new one if that is safe (net/http.Transport does the same).
		if reused && errors.Is(err, errNothingRead) && fc.replayable() {
			continue
		}
		return nil, err
	}
}

// errNothingRead wraps a failure that came before any response byte.
var errNothingRead = errors.New("no response")

func (fc *fastConn) roundTrip(t *transport, bc *backendConn) error {
	if _, err := bc.conn.Write(fc.out); err != nil {
		return fmt.Errorf("%w: %w", errNothingRead, err)
	}
	w := fc.startWatch(bc.conn)
	err := fc.readResponseHead(t, bc)
	if w.stop() {
		return errClientGone
	}
	return err
}

// readResponseHead reads the final response head (1xx ones are skipped,
// as on the net/http path) into fc.bbuf[:fc.resp.size], with the body
// bytes read so far after it; fc.bn is how many bytes bbuf holds.
func (fc *fastConn) readResponseHead(t *transport, bc *backendConn) error {
	if t.respTimeout > 0 {
		_ = bc.conn.SetReadDeadline(time.Now().Add(t.respTimeout))
		defer bc.conn.SetReadDeadline(time.Time{})
	}
	n := 0
	for informational := 0; ; {
		if n > 0 {
			err := parseResponseHead(fc.bbuf[:n], &fc.resp)
			switch {
			case err == nil && fc.resp.status >= 200:
				fc.bn = n
				return nil
			case err == nil && fc.resp.status == http.StatusSwitchingProtocols:
				return fmt.Errorf("backend %s: unexpected 101 Switching Protocols", bc.addr)
			case err == nil:
				if informational++; informational > maxInformational {
					return fmt.Errorf("backend %s: too many 1xx responses", bc.addr)
				}
				n = copy(fc.bbuf, fc.bbuf[fc.resp.size:n])
				continue
			case err != errNeedMore:
				return fmt.Errorf("backend %s: %w", bc.addr, err)
			}
			if n == len(fc.bbuf) {
				if int64(n) >= t.maxHeader {
					return fmt.Errorf("%w: backend %s sent more than %d bytes", ErrResponseHeaderTooLarge, bc.addr, t.maxHeader)
				}
				fc.bbuf = slices.Grow(fc.bbuf[:n], min(n, int(t.maxHeader)))[:min(2*n, int(t.maxHeader)+4)]
			}
		}
		m, err := bc.conn.Read(fc.bbuf[n:])
		n += m
		if err != nil {
			if n == 0 {
				return fmt.Errorf("%w: %w", errNothingRead, err)
			}
			return err
		}
	}
}

// respond copies the response whose head is in fc.resp to the client and
// returns bc to the pool if the response ended cleanly. The end of the
// response stays in fc.out: the caller writes it once the request is
// counted done, so that a client that got its answer never sees it in
// flight.
func (fc *fastConn) respond(rt *route, bc *backendConn, rec *recorder, setCookies []string) (keep bool) {
	resp, h := &fc.resp, &fc.h
	head := bytesAsString(h.method) == http.MethodHead
	noBody := head || resp.status == http.StatusNoContent || resp.status == http.StatusNotModified
	// A body that ends when the backend closes goes to the client
	// chunked, so the client's connection lives on.
	closeDelimited := !noBody && !resp.chunked && resp.contentLength < 0
	keepClient := !h.close && fc.fl.keepAlives.Load()

	out := fc.out[:0]
	out = appendStatus(out, resp.status)
	out = append(out, ' ')
	if resp.statusEnd > 13 {
		out = append(out, fc.bbuf[13:resp.statusEnd]...) // the reason phrase
	}
	out = append(out, "\r\n"...)
	for _, f := range resp.fields {
		switch f.kind {
		case fieldConnection, fieldTransferEncoding, fieldContentLength, fieldHopByHop:
			continue
		case fieldTrailer:
			if !resp.chunked {
				continue
			}
		}
		if len(resp.connOpts) > 0 && slices.ContainsFunc(resp.connOpts, func(o []byte) bool { return asciiEqualFold(f.name, lowerASCII(o)) }) {
			continue
		}
		out = append(out, f.line...)
	}
	switch {
	case (resp.chunked || closeDelimited) && !noBody:
		out = append(out, "Transfer-Encoding: chunked\r\n"...)
	case resp.contentLength >= 0:
		out = append(out, "Content-Length: "...)
		out = appendInt(out, resp.contentLength)
		out = append(out, "\r\n"...)
	}
	if !resp.hasDate {
		out = appendDate(out)
	}
	for _, c := range setCookies {
		out = append(out, "Set-Cookie: "...)
		out = append(out, c...)
		out = append(out, "\r\n"...)
	}
	if rt.hsts != "" && fc.tls && !resp.hasSTS && !IsLocalName(bytesAsString(h.host)) {
		out = append(out, "Strict-Transport-Security: "...)
		out = append(out, rt.hsts...)
		out = append(out, "\r\n"...)
	}
	if !keepClient {
		out = append(out, "Connection: close\r\n"...)
	}
	out = append(out, "\r\n"...)
	fc.out = out
	rec.status = resp.status

	body := fc.bbuf[resp.size:fc.bn]
	var clean bool
	var err error
	switch {
	case noBody:
		clean = len(body) == 0
	case resp.chunked:
		clean, err = fc.copyChunked(bc, body, rec)
	case closeDelimited:
		err = fc.copyUntilClose(bc, body, rec)
	default:
		clean, err = fc.copyBody(bc, body, resp.contentLength, rec)
	}
	if err == nil && clean && !resp.close {
		fc.fl.t.put(bc)
	} else {
		_ = bc.conn.Close()
	}
	if err != nil {
		r := fc.fl.r
		if errors.Is(err, errClientWrite) || errors.Is(err, errClientGone) {
			r.logger.Debug("router: client went away during the response", "app", rt.app, "backend", bc.addr, "error", err)
		} else {
			r.logger.Error("router: app's response ended early", "app", rt.app, "backend", bc.addr,
				"method", string(h.method), "host", string(h.host), "path", pathOf(h.target), "error", err)
		}
		return false
	}
	return keepClient
}

// errClientWrite wraps a failed write to the client.
var errClientWrite = errors.New("write to client")

// emit appends p to the output, writing it to the client whenever the
// buffer fills.
func (fc *fastConn) emit(p []byte) error {
	for len(p) > 0 {
		if len(fc.out) == cap(fc.out) {
			if err := fc.flush(); err != nil {
				return err
			}
		}
		n := min(len(p), cap(fc.out)-len(fc.out))
		fc.out = append(fc.out, p[:n]...)
		p = p[n:]
	}
	return nil
}

// flush writes the output to the client.
func (fc *fastConn) flush() error {
	if len(fc.out) == 0 {
		return nil
	}
	_, err := fc.c.Write(fc.out)
	fc.out = fc.out[:0]
	if err != nil {
		return fmt.Errorf("%w: %w", errClientWrite, err)
	}
	return nil
}

// copyUntilClose copies a body that ends when the backend closes the
// connection (it starts with body, read already), as chunks.
func (fc *fastConn) copyUntilClose(bc *backendConn, body []byte, rec *recorder) error {
	for {
		if len(body) > 0 {
			fc.out = strconv.AppendInt(fc.out, int64(len(body)), 16)
			fc.out = append(fc.out, "\r\n"...)
			if err := fc.emit(body); err != nil {
				return err
			}
			fc.out = append(fc.out, "\r\n"...)
			rec.bytes += uint64(len(body))
		}
		if err := fc.flush(); err != nil {
			return err
		}
		m, err := fc.readBody(bc)
		body = fc.bbuf[:m]
		if err == io.EOF {
			if m > 0 {
				continue // the last bytes, then EOF again
			}
			fc.out = append(fc.out, "0\r\n\r\n"...)
			return nil
		}
		if err != nil && m == 0 {
			return fmt.Errorf("body from backend: %w", err)
		}
	}
}

// copyBody copies a body of n bytes that starts with body, read already. Whatever the response holds is
// written before the next read from the backend blocks, so streamed
// responses reach the client as they come. clean: the connection holds
// nothing after the body.
func (fc *fastConn) copyBody(bc *backendConn, body []byte, n int64, rec *recorder) (clean bool, err error) {
	remaining := n
	for {
		take := int(min(int64(len(body)), remaining))
		remaining -= int64(take)
		if err := fc.emit(body[:take]); err != nil {
			return false, err
		}
		rec.bytes += uint64(take)
		if remaining == 0 {
			return take == len(body), nil
		}
		if err := fc.flush(); err != nil {
			return false, err
		}
		m, err := fc.readBody(bc)
		body = fc.bbuf[:m]
		if err != nil && m == 0 {
			return false, fmt.Errorf("body from backend: %w", err)
		}
	}
}

// readBody reads more of a response body from bc into fc.bbuf, watching
// for the client to go away meanwhile (a stream may pause for long).
func (fc *fastConn) readBody(bc *backendConn) (int, error) {
	w := fc.startWatch(bc.conn)
	m, err := bc.conn.Read(fc.bbuf)
	if w.stop() {
		return m, errClientGone
	}
	return m, err
}

// copyChunked copies a chunked body (chunks and trailer section) that
// starts with body, checking its framing as it goes.
func (fc *fastConn) copyChunked(bc *backendConn, body []byte, rec *recorder) (clean bool, err error) {
	var cs chunkScanner
	for {
		n, done, serr := cs.scan(body)
		if err := fc.emit(body[:n]); err != nil {
			return false, err
		}
		rec.bytes += uint64(n)
		if serr != nil {
			return false, serr
		}
		if done {
			return n == len(body), nil
		}
		if err := fc.flush(); err != nil {
			return false, err
		}
		m, err := fc.readBody(bc)
		body = fc.bbuf[:m]
		if m == 0 && err != nil {
			return false, fmt.Errorf("chunked body from backend: %w", err)
		}
	}
}

// proxyError answers a request whose backend did not answer as the
// net/http path's ErrorHandler does; it reports whether the client's
// connection may go on.
func (fc *fastConn) proxyError(rt *route, g *group, b *Backend, rec *recorder, err error) bool {
	r, h := fc.fl.r, &fc.h
	if errors.Is(err, errClientGone) {
		r.logger.Debug("router: client closed request", "app", rt.app, "backend", b.addr, "status", StatusClientClosedRequest)
		return false
	}
	status, page := http.StatusBadGateway, page502(rt.app)
	msg := "router: backend did not answer"
	switch {
	case errors.Is(err, ErrResponseHeaderTooLarge):
		page, msg = pageHeaderTooLarge(rt.app), "router: app sent response headers over the limit; answered 502"
	case isTimeout(err):
		status, page = http.StatusGatewayTimeout, page504(rt.app)
	}
	r.logger.Error(msg, "app", rt.app, "backend", b.addr, "status", status,
		"method", string(h.method), "host", string(h.host), "path", pathOf(h.target), "error", err)
	g.stats.proxyErrors.Add(1)
	g.appStats.proxyErrors.Add(1)
	rec.status = status
	out := appendStatus(fc.out[:0], status)
	out = append(out, ' ')
	out = append(out, http.StatusText(status)...)
	out = append(out, "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nContent-Length: "...)
	out = appendInt(out, int64(len(page)))
	out = append(out, "\r\n"...)
	out = appendDate(out)
	// The request was read whole (a small body came with its head) and
	// the answer is complete: the client's connection can go on, as on
	// the net/http path.
	keep := !h.close && fc.fl.keepAlives.Load()
	if !keep {
		out = append(out, "Connection: close\r\n"...)
	}
	out = append(out, "\r\n"...)
	fc.out = append(out, page...) // written by the caller
	return keep
}

// pathOf returns a request target's path, for logs.
func pathOf(target []byte) string {
	for i, c := range target {
		if c == '?' {
			return string(target[:i])
		}
	}
	return string(target)
}

func appendInt(b []byte, n int64) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + n%10)
		if n /= 10; n == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// lowerASCII returns b in lower case as a string.
func lowerASCII(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return string(out)
}
