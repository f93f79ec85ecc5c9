package router

import (
	"net/http"

	"golang.org/x/net/http/httpguts"
)

// screen applies the router's own rules to a request the front end
// parsed, before any routing: the ambiguities and tunnels a front end lets
// through that an app must not see (docs/router-security.md). It reports
// false when it answered the request itself.
func screen(w http.ResponseWriter, req *http.Request) bool {
	if closeAfter(req) {
		w.Header()["Connection"] = []string{"close"}
	}
	if up := req.Header["Upgrade"]; len(up) > 0 && httpguts.HeaderValuesContainsToken(up, "h2c") {
		// An HTTP/2 cleartext upgrade is for the front end, never the app:
		// an app that accepted it would give the client a tunnel whose
		// requests skip what the router strips and sets (h2c smuggling).
		// The request is answered as HTTP/1.1 (RFC 9110 7.8).
		delete(req.Header, "Upgrade")
		delete(req.Header, "Http2-Settings")
	}
	switch {
	case req.Method == http.MethodConnect:
		// The router is no forward proxy: an app that answered CONNECT
		// with a 2xx would open a tunnel past it, and bytes the client
		// sent for that tunnel must not be read as requests. (net/http
		// serves no HTTP/2 extended CONNECT unless GODEBUG=http2xconnect=1.)
		w.Header()["Connection"] = []string{"close"}
		writePage(w, http.StatusNotImplemented, pageConnect)
		return false
	case req.URL.Path == "*" && req.Method != http.MethodOptions:
		// net/http passes "GET *" on; apps would see a target no client
		// may send (RFC 9112 3.2.4: asterisk-form is for OPTIONS only).
		writePage(w, http.StatusBadRequest, pageAsterisk)
		return false
	}
	return true
}

// pageConnect answers a CONNECT request.
var pageConnect = []byte("501 not implemented: CONNECT is not served here; this is no forward proxy\n")

// pageAsterisk answers a request for "*" other than OPTIONS.
var pageAsterisk = []byte("400 bad request: the request target * is only for OPTIONS; ask for a path such as /\n")

// closeAfter reports whether the client's connection must end after the
// answer to req because its framing may be in doubt (RFC 9112 6.1, 6.3):
// a chunked HTTP/1.1 request may also have carried a Content-Length, and
// an HTTP/1.0 request with a body a Transfer-Encoding, which net/http
// drops before the handler can see them. A front end that framed the body
// the other way would read what follows the body as the next request
// (request smuggling); closing leaves it nothing to read. Clients that
// send such requests (chunked uploads, HTTP/1.0 keep-alive with a body)
// are rare and only pay a new connection.
func closeAfter(req *http.Request) bool {
	return req.ProtoMajor == 1 &&
		(len(req.TransferEncoding) > 0 || req.ProtoMinor == 0 && req.ContentLength != 0)
}
