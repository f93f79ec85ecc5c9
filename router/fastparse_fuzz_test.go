package router

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// Differential fuzzing of the fast front end's parsers against net/http:
// whatever the fast path accepts, net/http must read the same way. A
// request head the two read differently is how requests get smuggled.

var fastRequestSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a.localhost\r\n\r\n",
	"GET /x?y=%20z HTTP/1.1\r\nHost: a.localhost:8080\r\nCookie: plat_bucket=3; b=c\r\nConnection: keep-alive\r\n\r\n",
	"HEAD /p HTTP/1.1\r\nhost: A.Localhost\r\nX-Request-Id: abc\r\nContent-Length: 0\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
	"POST /form HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}GET / HTTP/1.1\r\n\r\n",
	"PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 05\r\n\r\nhel",
	"GET / HTTP/1.1\nHost: a\n\n",
	"GET / HTTP/1.1\r\nHost: a\r\n Foo: folded\r\n\r\n",
	"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nFoo: b\rc\r\n\r\n",
	"GET http://b/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
	"DELETE /x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\nPlat-Flags: all\r\n\r\n",
	"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
	"G\x00T / HTTP/1.1\r\nHost: a\r\n\r\n",
}

func FuzzFastRequestHead(f *testing.F) {
	for _, s := range fastRequestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var h requestHead
		err := parseRequestHead(in, &h)
		if err == errNeedMore && bytes.Contains(in, crlfcrlf) {
			t.Fatalf("need more for a complete head %q", in)
		}
		if err != nil {
			return
		}
		br := bufio.NewReader(bytes.NewReader(in))
		req, nerr := http.ReadRequest(br)
		if nerr != nil {
			t.Fatalf("fast path takes %q; net/http refuses it: %v", in, nerr)
		}
		// What net/http's server checks beyond ReadRequest.
		if req.Host == "" || !httpguts.ValidHostHeader(req.Host) {
			t.Fatalf("fast path takes host %q; net/http's server refuses it", req.Host)
		}
		for name, vs := range req.Header {
			if !httpguts.ValidHeaderFieldName(name) {
				t.Fatalf("fast path takes field name %q", name)
			}
			for _, v := range vs {
				if !httpguts.ValidHeaderFieldValue(v) {
					t.Fatalf("fast path takes field value %q", v)
				}
			}
		}
		if req.Method != string(h.method) || req.RequestURI != string(h.target) || req.Host != string(h.host) {
			t.Fatalf("fast path reads %q %q host %q; net/http %q %q host %q", h.method, h.target, h.host, req.Method, req.RequestURI, req.Host)
		}
		if req.ProtoMajor != 1 || req.ProtoMinor != 1 {
			t.Fatalf("fast path takes HTTP/%d.%d", req.ProtoMajor, req.ProtoMinor)
		}
		if req.ContentLength != int64(h.bodyLen) || len(req.TransferEncoding) != 0 {
			t.Fatalf("fast path reads a body of %d bytes; net/http length %d, encoding %v", h.bodyLen, req.ContentLength, req.TransferEncoding)
		}
		if req.Close != h.close {
			t.Fatalf("fast path close=%v, net/http close=%v", h.close, req.Close)
		}
		// Both end the head at the same byte: what follows is the next
		// request for both.
		if consumed := len(in) - br.Buffered(); consumed != h.size {
			t.Fatalf("fast path head is %d bytes, net/http read %d", h.size, consumed)
		}
		// Every field the fast path saw, net/http saw with the same value.
		for _, fld := range h.fields {
			if fld.kind == fieldHost {
				continue
			}
			key := textproto.CanonicalMIMEHeaderKey(string(fld.name))
			found := false
			for _, v := range req.Header[key] {
				found = found || v == string(fld.value)
			}
			if !found {
				t.Fatalf("field %q: fast path value %q, net/http %q", fld.name, fld.value, req.Header[key])
			}
		}
		if n := countFields(req.Header) + 1; n != len(h.fields) { // ReadRequest moves Host out
			t.Fatalf("fast path read %d fields, net/http %d", len(h.fields), n)
		}
		if requestPath(h.target) != req.URL.Path {
			t.Fatalf("logged path %q; net/http's %q", requestPath(h.target), req.URL.Path)
		}
		// The body the fast path sends on is the one net/http reads, and
		// both go on at the same byte.
		if end := h.size + h.bodyLen; len(in) >= end {
			body, err := io.ReadAll(req.Body)
			if err != nil || string(body) != string(in[h.size:end]) {
				t.Fatalf("body %q; net/http read %q (%v)", in[h.size:end], body, err)
			}
			if consumed := len(in) - br.Buffered(); consumed != end {
				t.Fatalf("fast path request ends at %d, net/http's at %d", end, consumed)
			}
		}
	})
}

func countFields(h http.Header) int {
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	return n
}

var fastResponseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nFoo: a\r\n b\r\n\r\n",
	"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
	"HTTP/1.1 200\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;ext=\"x\"\r\na\r\n0\r\n\r\n",
}

func FuzzFastResponseHead(f *testing.F) {
	for _, s := range fastResponseSeeds {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, head bool) {
		var h responseHead
		err := parseResponseHead(in, &h)
		if err == errNeedMore && bytes.Contains(in, crlfcrlf) {
			t.Fatalf("need more for a complete head %q", in)
		}
		if err != nil {
			return
		}
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		br := bufio.NewReader(bytes.NewReader(in))
		resp, nerr := http.ReadResponse(br, &http.Request{Method: method})
		if nerr != nil {
			t.Fatalf("fast path takes %q; net/http refuses it: %v", in, nerr)
		}
		if resp.StatusCode != h.status {
			t.Fatalf("status %d, net/http %d", h.status, resp.StatusCode)
		}
		chunked := len(resp.TransferEncoding) == 1 && resp.TransferEncoding[0] == "chunked"
		if !head && h.status >= 200 && h.status != 204 && h.status != 304 {
			if chunked != h.chunked {
				t.Fatalf("chunked %v, net/http %v", h.chunked, chunked)
			}
			if !h.chunked && h.contentLength != resp.ContentLength {
				t.Fatalf("content length %d, net/http %d", h.contentLength, resp.ContentLength)
			}
		}
		if consumed := len(in) - br.Buffered(); consumed != h.size {
			t.Fatalf("head %d bytes, net/http read %d", h.size, consumed)
		}
		if head || h.status < 200 || h.status == 204 || h.status == 304 {
			return
		}
		// The body as the fast path frames it must be the body net/http
		// reads, to the byte.
		body := in[h.size:]
		var n int
		switch {
		case h.chunked:
			var cs chunkScanner
			k, done, serr := cs.scan(body)
			if serr != nil || !done {
				return // the fast path stops the response: nothing to compare
			}
			n = k
		case h.contentLength >= 0:
			if int64(len(body)) < h.contentLength {
				return
			}
			n = int(h.contentLength)
		default:
			return // until close
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatalf("fast path frames a %d byte body in %q; net/http fails to read it: %v", n, in, err)
		}
		if left := br.Buffered(); left != len(body)-n {
			t.Fatalf("fast path leaves %d bytes after the body, net/http %d (%q)", len(body)-n, left, in)
		}
	})
}

func FuzzChunkScanner(f *testing.F) {
	for _, s := range []string{"5\r\nhello\r\n0\r\n\r\n", "0\r\nA: b\r\n\r\nNEXT", "a;x=y\r\n0123456789\r\n0\r\n\r\n", "5\r\nhel"} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		// Scanning in two pieces gives what scanning at once gives.
		var whole chunkScanner
		n, done, err := whole.scan(in)
		if split < 0 || split > len(in) {
			split = len(in) / 2
		}
		var parts chunkScanner
		n1, done1, err1 := parts.scan(in[:split])
		n2, done2, err2 := n1, done1, err1
		if err1 == nil && !done1 {
			k, d, e := parts.scan(in[split:])
			n2, done2, err2 = split+k, d, e
		}
		if (err == nil) != (err2 == nil) || done != done2 || err == nil && n != n2 {
			t.Fatalf("%q at once: %d %v %v; split at %d: %d %v %v", in, n, done, err, split, n2, done2, err2)
		}
		if err != nil || !done {
			return
		}
		resp := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + string(in)
		br := bufio.NewReader(strings.NewReader(resp))
		r, rerr := http.ReadResponse(br, nil)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			t.Fatalf("scanner ends the body %q at %d; net/http fails: %v", in, n, err)
		}
		if left := br.Buffered(); left != len(in)-n {
			t.Fatalf("scanner leaves %d bytes after the body of %q; net/http %d", len(in)-n, in, left)
		}
	})
}
