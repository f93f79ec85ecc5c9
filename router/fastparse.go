package router

import (
	"bytes"
	"errors"
)

// The fast front end's HTTP/1.1 parsers. They accept a strict subset of
// what RFC 9112 allows and leave everything else to net/http: a request
// head they do not fully understand is never rejected or reinterpreted
// here, it is handed over whole (see FastListener), so the router cannot
// read a request one way while net/http or an app reads it another.

// maxFastHeaders bounds the header fields of a request the fast path
// takes; a request with more goes to net/http.
const maxFastHeaders = 48

// maxFastBody bounds the request body the fast path takes: one that
// arrives with its head in the connection's buffer (a small form or JSON
// document). Larger bodies stream through net/http, which bounds how long
// each read of them may stall.
const maxFastBody = fastReadBuffer / 2

// headerField is one header line of a parsed head: slices into the buffer
// the head was parsed from.
type headerField struct {
	name, value []byte
	line        []byte // the whole line with its CRLF, to copy it as is
	kind        fieldKind
}

// fieldKind sorts the header names the fast path treats specially.
type fieldKind uint8

const (
	fieldOther            fieldKind = iota
	fieldHopByHop                   // dropped on the way: Keep-Alive, Proxy-Connection
	fieldForwarded                  // replaced by the router: X-Forwarded-*, Forwarded
	fieldRouterOwned                // set only by the router: Plat-Flags, Plat-Shadow
	fieldHost                       // Host
	fieldContentLength              // Content-Length
	fieldConnection                 // Connection
	fieldCookie                     // Cookie
	fieldCookieRewritten            // Cookie without the router\'s cookies: value holds the rest
	fieldDropped                    // Cookie that held only the router\'s cookies
	fieldRequestID                  // X-Request-Id
	fieldDate                       // Date (responses)
	fieldTransferEncoding           // Transfer-Encoding (responses)
	fieldSTS                        // Strict-Transport-Security (responses)
	fieldTrailer                    // Trailer (responses)
	fieldUnsupported                // requests: net/http's (Transfer-Encoding, Expect, Upgrade, TE, HTTP2-Settings…)
)

// requestHead is a parsed request line and header section.
type requestHead struct {
	method, target, host []byte
	fields               []headerField
	size                 int  // bytes of the head, final CRLF included
	bodyLen              int  // Content-Length (at most maxFastBody); 0 if none
	close                bool // Connection: close
	hasRequestID         bool
	hasCookie            bool
}

// parse outcomes.
var (
	errNeedMore = errors.New("incomplete head")
	// errHandOver: the head is not one the fast path takes; net/http reads
	// it (and rejects it if it is malformed).
	errHandOver = errors.New("not a fast-path request")
)

// parseRequestHead parses the request head at the start of b into h. It
// returns errNeedMore if b holds no complete head yet, errHandOver for
// anything outside the fast path's subset: HTTP versions other than 1.1,
// request targets other than origin-form, a body over maxFastBody or of
// unknown length (any Transfer-Encoding), Expect, Upgrade, connection options
// other than close and keep-alive, obsolete line folding, bare LF or CR,
// control characters, a missing or repeated Host, too many fields.
func parseRequestHead(b []byte, h *requestHead) error {
	end := bytes.Index(b, crlfcrlf)
	if end < 0 {
		if hasBareLF(b) {
			return errHandOver // a head with bare LFs is net/http's call
		}
		return errNeedMore
	}
	h.fields = h.fields[:0]
	h.host, h.close, h.hasRequestID, h.hasCookie, h.bodyLen = nil, false, false, false, 0
	h.size = end + 4
	head := b[:end+2] // every line with its CRLF
	i := bytes.Index(head, crlf)
	line := head[:i]
	// Request line: method SP origin-form SP HTTP/1.1.
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return errHandOver
	}
	h.method = line[:sp1]
	if !isToken(h.method) {
		return errHandOver
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 || string(rest[sp2+1:]) != "HTTP/1.1" {
		return errHandOver
	}
	h.target = rest[:sp2]
	if !validOriginForm(h.target) {
		return errHandOver
	}
	contentLengths := 0
	for p := i + 2; p < len(head); {
		n := bytes.Index(head[p:], crlf)
		line := head[p : p+n+2]
		p += n + 2
		if len(h.fields) == maxFastHeaders {
			return errHandOver
		}
		f, ok := parseField(line)
		if !ok {
			return errHandOver
		}
		f.kind = requestFieldKind(f.name)
		switch f.kind {
		case fieldUnsupported:
			return errHandOver
		case fieldHost:
			if h.host != nil || !validHost(f.value) {
				return errHandOver
			}
			h.host = f.value
		case fieldContentLength:
			n, ok := parseContentLength(f.value)
			if contentLengths++; contentLengths > 1 || !ok || n > maxFastBody {
				return errHandOver
			}
			h.bodyLen = int(n)
		case fieldConnection:
			close, ok := connectionOptions(f.value)
			if !ok {
				return errHandOver
			}
			h.close = h.close || close
		case fieldCookie:
			h.hasCookie = true
		case fieldRequestID:
			h.hasRequestID = true
		}
		h.fields = append(h.fields, f)
	}
	if h.host == nil {
		return errHandOver
	}
	return nil
}

// hasBareLF reports whether b has an LF not preceded by CR.
func hasBareLF(b []byte) bool {
	for i := bytes.IndexByte(b, '\n'); i >= 0; {
		if i == 0 || b[i-1] != '\r' {
			return true
		}
		j := bytes.IndexByte(b[i+1:], '\n')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}

var (
	crlf     = []byte("\r\n")
	crlfcrlf = []byte("\r\n\r\n")
)

// parseField splits one header line (with its CRLF) into name and value,
// the value without its surrounding whitespace. It refuses an empty or
// non-token name, whitespace before the colon, a line that starts with
// whitespace (obsolete folding), and control characters other than HTAB
// in the value (a lone CR or LF included).
func parseField(line []byte) (headerField, bool) {
	body := line[:len(line)-2]
	colon := bytes.IndexByte(body, ':')
	if colon <= 0 {
		return headerField{}, false
	}
	name := body[:colon]
	if !isToken(name) {
		return headerField{}, false
	}
	value := body[colon+1:]
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return headerField{}, false
		}
	}
	value = bytes.Trim(value, " \t")
	return headerField{name: name, value: value, line: line}, true
}

// requestFieldKind sorts a request header name.
func requestFieldKind(name []byte) fieldKind {
	switch len(name) {
	case 2:
		if asciiEqualFold(name, "te") {
			return fieldUnsupported
		}
	case 4:
		if asciiEqualFold(name, "host") {
			return fieldHost
		}
	case 6:
		if asciiEqualFold(name, "expect") {
			return fieldUnsupported
		}
		if asciiEqualFold(name, "cookie") {
			return fieldCookie
		}
	case 7:
		if asciiEqualFold(name, "upgrade") || asciiEqualFold(name, "trailer") {
			return fieldUnsupported
		}
	case 9:
		if asciiEqualFold(name, "forwarded") {
			return fieldForwarded
		}
	case 10:
		if asciiEqualFold(name, "connection") {
			return fieldConnection
		}
		if asciiEqualFold(name, "keep-alive") || asciiEqualFold(name, "plat-flags") {
			if name[0] == 'k' || name[0] == 'K' {
				return fieldHopByHop
			}
			return fieldRouterOwned
		}
	case 11:
		if asciiEqualFold(name, "plat-shadow") {
			return fieldRouterOwned
		}
	case 12:
		if asciiEqualFold(name, "x-request-id") {
			return fieldRequestID
		}
	case 14:
		if asciiEqualFold(name, "content-length") || asciiEqualFold(name, "http2-settings") {
			if name[0] == 'c' || name[0] == 'C' {
				return fieldContentLength
			}
			return fieldUnsupported
		}
	case 15:
		if asciiEqualFold(name, "x-forwarded-for") {
			return fieldForwarded
		}
	case 16:
		if asciiEqualFold(name, "x-forwarded-host") || asciiEqualFold(name, "proxy-connection") {
			if name[0] == 'x' || name[0] == 'X' {
				return fieldForwarded
			}
			return fieldHopByHop
		}
	case 17:
		if asciiEqualFold(name, "x-forwarded-proto") || asciiEqualFold(name, "transfer-encoding") {
			if name[0] == 'x' || name[0] == 'X' {
				return fieldForwarded
			}
			return fieldUnsupported
		}
	}
	return fieldOther
}

// connectionOptions reads a request's Connection value: it reports whether
// it asks to close, and false if it names anything but close and
// keep-alive (options that name further hop-by-hop fields, or "upgrade",
// are net/http's to handle).
func connectionOptions(v []byte) (close, ok bool) {
	for len(v) > 0 {
		var opt []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			opt, v = v[:i], v[i+1:]
		} else {
			opt, v = v, nil
		}
		opt = bytes.Trim(opt, " \t")
		switch {
		case len(opt) == 0:
		case asciiEqualFold(opt, "close"):
			close = true
		case asciiEqualFold(opt, "keep-alive"):
		default:
			return false, false
		}
	}
	return close, true
}

// validOriginForm accepts a request target that starts with '/' and holds
// only visible ASCII other than '#', with well-formed percent escapes (no
// spaces, no control or non-ASCII bytes: net/http decides about those).
func validOriginForm(t []byte) bool {
	if len(t) == 0 || t[0] != '/' {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
		if c == '%' { // net/http refuses a bad escape
			if i+2 >= len(t) || hexValue(t[i+1]) < 0 || hexValue(t[i+2]) < 0 {
				return false
			}
			i += 2
		}
	}
	return true
}

// validHost accepts a non-empty Host of letters, digits, '-', '.', '_',
// and one ':' port suffix of digits (no IPv6 literals, no user info).
func validHost(h []byte) bool {
	if len(h) == 0 || len(h) > 255 {
		return false
	}
	colon := false
	for i, c := range h {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '-' == c, '.' == c, '_' == c:
			if colon {
				return false
			}
		case '0' <= c && c <= '9':
		case c == ':':
			if colon || i == 0 || i == len(h)-1 {
				return false
			}
			colon = true
		default:
			return false
		}
	}
	return true
}

// isToken reports whether b is a non-empty RFC 9110 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChar[c] {
			return false
		}
	}
	return true
}

var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// asciiEqualFold compares b to lower, which is lower case ASCII.
func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// responseHead is a parsed status line and header section of a backend's
// response.
type responseHead struct {
	status    int
	http10    bool
	fields    []headerField
	size      int
	statusEnd int // end of the status line, CRLF excluded
	// framing
	contentLength int64 // -1: none
	chunked       bool
	close         bool // the backend will close: Connection: close, or HTTP/1.0 without keep-alive
	hasDate       bool
	hasSTS        bool
	connOpts      [][]byte // field names the Connection header lists (hop-by-hop)
}

// errBadResponse: the backend's response head is not valid HTTP/1.x or
// frames its body ambiguously; the client gets a 502.
var errBadResponse = errors.New("malformed response from app")

// parseResponseHead parses the response head at the start of b into h:
// errNeedMore if incomplete, errBadResponse if invalid. It is stricter than
// net/http: no obsolete folding, no bare LF, no control characters, one
// Content-Length (or several equal ones), Transfer-Encoding only "chunked"
// (which then overrides any Content-Length).
func parseResponseHead(b []byte, h *responseHead) error {
	end := bytes.Index(b, crlfcrlf)
	if end < 0 {
		if hasBareLF(b) {
			return errBadResponse // it would never end the head we wait for
		}
		return errNeedMore
	}
	*h = responseHead{fields: h.fields[:0], connOpts: h.connOpts[:0], contentLength: -1}
	h.size = end + 4
	head := b[:end+2]
	i := bytes.Index(head, crlf)
	line := head[:i]
	h.statusEnd = i
	// HTTP/1.x SP 3DIGIT SP reason
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' {
		return errBadResponse
	}
	h.http10 = line[7] == '0'
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return errBadResponse
		}
		h.status = h.status*10 + int(c-'0')
	}
	if h.status < 100 || len(line) > 12 && line[12] != ' ' {
		return errBadResponse
	}
	for _, c := range line[12:] {
		if c < ' ' && c != '\t' || c == 0x7f {
			return errBadResponse
		}
	}
	keepAlive := false
	for p := i + 2; p < len(head); {
		n := bytes.Index(head[p:], crlf)
		line := head[p : p+n+2]
		p += n + 2
		f, ok := parseField(line)
		if !ok {
			return errBadResponse
		}
		f.kind = responseFieldKind(f.name)
		switch f.kind {
		case fieldContentLength:
			n, ok := parseContentLength(f.value)
			if !ok || h.contentLength >= 0 && h.contentLength != n {
				return errBadResponse
			}
			h.contentLength = n
		case fieldTransferEncoding:
			if !asciiEqualFold(f.value, "chunked") || h.chunked {
				return errBadResponse
			}
			h.chunked = true
		case fieldConnection:
			for opt := range bytes.SplitSeq(f.value, []byte(",")) {
				opt = bytes.Trim(opt, " \t")
				switch {
				case len(opt) == 0:
				case asciiEqualFold(opt, "close"):
					h.close = true
				case asciiEqualFold(opt, "keep-alive"):
					keepAlive = true
				default:
					h.connOpts = append(h.connOpts, opt)
				}
			}
		case fieldDate:
			h.hasDate = true
		case fieldSTS:
			h.hasSTS = true
		}
		h.fields = append(h.fields, f)
	}
	if h.chunked {
		if h.http10 {
			return errBadResponse // RFC 9112 6.1: faulty framing in HTTP/1.0
		}
		h.contentLength = -1 // RFC 9112 6.3: Transfer-Encoding overrides it
	}
	if h.http10 && !keepAlive {
		h.close = true
	}
	return nil
}

// responseFieldKind sorts a response header name.
func responseFieldKind(name []byte) fieldKind {
	switch {
	case asciiEqualFold(name, "content-length"):
		return fieldContentLength
	case asciiEqualFold(name, "transfer-encoding"):
		return fieldTransferEncoding
	case asciiEqualFold(name, "connection"):
		return fieldConnection
	case asciiEqualFold(name, "date"):
		return fieldDate
	case asciiEqualFold(name, "strict-transport-security"):
		return fieldSTS
	case asciiEqualFold(name, "trailer"):
		return fieldTrailer
	case asciiEqualFold(name, "keep-alive"), asciiEqualFold(name, "proxy-connection"),
		asciiEqualFold(name, "te"), asciiEqualFold(name, "upgrade"):
		return fieldHopByHop
	}
	return fieldOther
}

// maxContentLength bounds a Content-Length the fast path believes (2^53:
// far beyond any real body, and no overflow).
const maxContentLength = 1 << 53

// parseContentLength parses 1DIGIT+ without sign, spaces or overflow.
func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 16 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, n <= maxContentLength
}

// chunkScanner follows the framing of a chunked body as its bytes pass
// through: chunk-size [ext] CRLF data CRLF ..., 0 CRLF, trailer fields,
// CRLF. It is strict: hex sizes of at most 15 digits, no control
// characters in extensions or trailers, trailer fields "token:value",
// CRLF line ends.
type chunkScanner struct {
	state     chunkState
	remaining int64 // data bytes left in the current chunk
	digits    int
	lineBytes int // bytes of the trailer section so far
	nameLen   int // of the trailer field being read
}

type chunkState uint8

const (
	chunkSize chunkState = iota
	chunkExt
	chunkSizeLF
	chunkData
	chunkDataCR
	chunkDataLF
	chunkTrailerStart
	chunkTrailerName
	chunkTrailerValue
	chunkTrailerLF
	chunkEndLF
	chunkDone
)

// maxTrailerBytes bounds the trailer section of a chunked body.
const maxTrailerBytes = 64 << 10

var errBadChunk = errors.New("malformed chunked body from app")

// scan consumes the bytes of p that belong to the body: n of them, and
// done once the body ended (the bytes after n are not the body's).
func (cs *chunkScanner) scan(p []byte) (n int, done bool, err error) {
	for n < len(p) {
		c := p[n]
		switch cs.state {
		case chunkSize:
			switch {
			case hexValue(c) >= 0:
				if cs.digits++; cs.digits > 15 {
					return n, false, errBadChunk
				}
				cs.remaining = cs.remaining<<4 | int64(hexValue(c))
			case cs.digits > 0 && c == ';':
				cs.state = chunkExt
			case cs.digits > 0 && c == '\r':
				cs.state = chunkSizeLF
			default:
				return n, false, errBadChunk
			}
		case chunkExt:
			switch {
			case c == '\r':
				cs.state = chunkSizeLF
			case c < ' ' && c != '\t' || c == 0x7f:
				return n, false, errBadChunk
			}
		case chunkSizeLF:
			if c != '\n' {
				return n, false, errBadChunk
			}
			cs.digits = 0
			if cs.remaining == 0 {
				cs.state = chunkTrailerStart
			} else {
				cs.state = chunkData
			}
		case chunkData:
			k := int(min(int64(len(p)-n), cs.remaining))
			cs.remaining -= int64(k)
			n += k
			if cs.remaining == 0 {
				cs.state = chunkDataCR
			}
			continue
		case chunkDataCR:
			if c != '\r' {
				return n, false, errBadChunk
			}
			cs.state = chunkDataLF
		case chunkDataLF:
			if c != '\n' {
				return n, false, errBadChunk
			}
			cs.state = chunkSize
		case chunkTrailerStart:
			if c == '\r' {
				cs.state = chunkEndLF
				break
			}
			cs.state, cs.nameLen = chunkTrailerName, 0
			continue // this byte starts a field line
		case chunkTrailerName:
			if cs.lineBytes++; cs.lineBytes > maxTrailerBytes {
				return n, false, errBadChunk
			}
			switch {
			case c == ':' && cs.nameLen > 0:
				cs.state = chunkTrailerValue
			case tokenChar[c]:
				cs.nameLen++
			default:
				return n, false, errBadChunk
			}
		case chunkTrailerValue:
			if cs.lineBytes++; cs.lineBytes > maxTrailerBytes {
				return n, false, errBadChunk
			}
			switch {
			case c == '\r':
				cs.state = chunkTrailerLF
			case c < ' ' && c != '\t' || c == 0x7f:
				return n, false, errBadChunk
			}
		case chunkTrailerLF:
			if c != '\n' {
				return n, false, errBadChunk
			}
			cs.state = chunkTrailerStart
		case chunkEndLF:
			if c != '\n' {
				return n, false, errBadChunk
			}
			cs.state = chunkDone
			return n + 1, true, nil
		}
		n++
	}
	return n, false, nil
}

func hexValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
