package router

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The request-smuggling and malformed-input suite. It talks raw bytes over
// TCP to every front end in frontEnds and to a raw backend (not net/http)
// that records the exact bytes it receives and frames them strictly, so
// that a request the router forwards ambiguously, or one more request
// than the client's, shows up here whatever parser either side uses.

// smHost is the host the suite's app serves.
const smHost = "app.test"

// smWait bounds every read of the suite: answers come within milliseconds
// on loopback, and a connection that should close does so at once.
const smWait = 3 * time.Second

// rawMsg is one HTTP/1.1 message read by readMsg.
type rawMsg struct {
	start    string      // request line or status line
	fields   [][2]string // header fields in order, value trimmed
	body     string      // body, de-chunked
	raw      string      // the exact bytes read
	problems []string    // what a strict reader finds malformed or ambiguous
}

// get returns the values of the fields named name (case-insensitive).
func (m *rawMsg) get(name string) []string {
	var vs []string
	for _, f := range m.fields {
		if strings.EqualFold(f[0], name) {
			vs = append(vs, f[1])
		}
	}
	return vs
}

// word returns the i-th space-separated word of the start line.
func (m *rawMsg) word(i int) string {
	w := strings.SplitN(m.start, " ", 3)
	if i < len(w) {
		return w[i]
	}
	return ""
}

func (m *rawMsg) status() int {
	n, _ := strconv.Atoi(m.word(1))
	return n
}

func (m *rawMsg) problem(format string, args ...any) {
	m.problems = append(m.problems, fmt.Sprintf(format, args...))
}

// readMsg reads one message from br the way a strict HTTP/1.1 peer does:
// CRLF lines only, no obs-fold, token field names, no CTLs in values, one
// framing header at most. What it finds wrong goes to problems; it fails
// only when it cannot frame the message at all. beforeBody, if not nil,
// runs between the head and the body (to answer 100-continue).
// headRequest says the message answers a HEAD request (no body).
func readMsg(br *bufio.Reader, response, headRequest bool, beforeBody func(*rawMsg)) (*rawMsg, error) {
	m := &rawMsg{}
	var raw strings.Builder
	defer func() { m.raw = raw.String() }()
	line := func() (string, error) {
		s, err := br.ReadString('\n')
		raw.WriteString(s)
		if err != nil {
			return "", err
		}
		if !strings.HasSuffix(s, "\r\n") {
			m.problem("bare LF in %q", s)
			s = strings.TrimSuffix(s, "\n")
		} else {
			s = strings.TrimSuffix(s, "\r\n")
		}
		if strings.ContainsAny(s, "\r\x00") {
			m.problem("bare CR or NUL in %q", s)
		}
		return s, nil
	}
	var err error
	if m.start, err = line(); err != nil {
		return m, err
	}
	for {
		s, err := line()
		if err != nil {
			return m, err
		}
		if s == "" {
			break
		}
		if s[0] == ' ' || s[0] == '\t' {
			m.problem("obs-fold line %q", s)
			if len(m.fields) > 0 {
				m.fields[len(m.fields)-1][1] += " " + strings.TrimSpace(s)
			}
			continue
		}
		name, value, ok := strings.Cut(s, ":")
		if !ok || !isToken([]byte(name)) {
			m.problem("malformed field line %q", s)
		}
		value = strings.Trim(value, " \t")
		for i := 0; i < len(value); i++ {
			if c := value[i]; (c < ' ' && c != '\t') || c == 0x7f {
				m.problem("CTL in field value %q", s)
				break
			}
		}
		m.fields = append(m.fields, [2]string{name, value})
	}
	cls, tes := m.get("Content-Length"), m.get("Transfer-Encoding")
	if len(cls) > 1 {
		m.problem("%d Content-Length fields %q", len(cls), cls)
	}
	if len(cls) > 0 && len(tes) > 0 {
		m.problem("both Content-Length %q and Transfer-Encoding %q", cls, tes)
	}
	if len(tes) > 1 || len(tes) == 1 && tes[0] != "chunked" {
		m.problem("Transfer-Encoding %q is not one plain chunked", tes)
	}
	if beforeBody != nil {
		beforeBody(m)
	}
	var body strings.Builder
	defer func() { m.body = body.String() }()
	st := m.status()
	switch {
	case response && (headRequest || st/100 == 1 || st == 204 || st == 304):
	case len(tes) > 0:
		for {
			s, err := line()
			if err != nil {
				return m, err
			}
			size, _, _ := strings.Cut(s, ";")
			n, err := strconv.ParseUint(size, 16, 31)
			if err != nil {
				m.problem("chunk size %q", s)
				return m, fmt.Errorf("unframeable chunk size %q", s)
			}
			if n == 0 {
				for { // trailer section
					if s, err = line(); err != nil || s == "" {
						return m, err
					}
				}
			}
			buf := make([]byte, n+2)
			k, err := io.ReadFull(br, buf)
			raw.Write(buf[:k])
			if err != nil {
				return m, err
			}
			if string(buf[n:]) != "\r\n" {
				m.problem("chunk data not followed by CRLF")
			}
			body.Write(buf[:n])
		}
	case len(cls) > 0:
		n, err := strconv.ParseUint(cls[0], 10, 31)
		if err != nil {
			m.problem("Content-Length %q", cls[0])
			return m, fmt.Errorf("unframeable Content-Length %q", cls[0])
		}
		buf := make([]byte, n)
		k, err := io.ReadFull(br, buf)
		raw.Write(buf[:k])
		body.Write(buf[:k])
		if err != nil {
			return m, err
		}
	case response: // delimited by the end of the connection
		b, err := io.ReadAll(br)
		raw.Write(b)
		body.Write(b)
		if err != nil {
			return m, err
		}
	}
	return m, nil
}

// rawBackend is an app over a bare net.Listener: it records each request
// it receives, framed strictly (readMsg), and answers it with "ok
// <target>" or with what script says.
type rawBackend struct {
	t    *testing.T
	ln   net.Listener
	addr string

	mu    sync.Mutex
	reqs  []*rawMsg
	conns []net.Conn
	// script, if not nil, gives the raw response to the n-th request (from
	// 0): parts written with a pause between them; nil parts: the default.
	script func(n int, m *rawMsg) []string
	// firstSent is closed once the answer to the first request is written
	// whole.
	firstSent chan struct{}
}

// misbehave makes the backend answer the first request with parts
// (written with smPause between them) and the others normally.
func (b *rawBackend) misbehave(parts []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.script = func(n int, _ *rawMsg) []string {
		if n == 0 {
			return parts
		}
		return nil
	}
}

// waitFirstSent waits until the backend has written its whole answer to
// the first request, and then a moment for the front end's own reads.
func (b *rawBackend) waitFirstSent() {
	b.t.Helper()
	select {
	case <-b.firstSent:
	case <-time.After(smWait):
		b.t.Fatal("the backend did not finish its first answer")
	}
	time.Sleep(smPause)
}

// smPause separates the parts of a scripted response, so that they
// arrive in separate reads.
const smPause = 30 * time.Millisecond

func newRawBackend(t *testing.T) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{t: t, ln: ln, addr: ln.Addr().String(), firstSent: make(chan struct{})}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		b.mu.Lock()
		for _, c := range b.conns {
			_ = c.Close()
		}
		b.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			wg.Go(func() { b.serveConn(c) })
		}
	})
	return b
}

func (b *rawBackend) serveConn(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		m, err := readMsg(br, false, false, func(m *rawMsg) {
			if slices.ContainsFunc(m.get("Expect"), func(v string) bool { return strings.EqualFold(v, "100-continue") }) {
				_, _ = io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
			}
		})
		if err != nil {
			if m.raw != "" && !isClosedErr(err) {
				b.t.Errorf("backend got bytes it cannot frame as a request (%v): %q", err, m.raw)
			}
			return
		}
		b.mu.Lock()
		n := len(b.reqs)
		b.reqs = append(b.reqs, m)
		script := b.script
		b.mu.Unlock()
		if len(m.problems) > 0 {
			b.t.Errorf("router forwarded a malformed or ambiguous request %q: %v", m.raw, m.problems)
		}
		var parts []string
		if script != nil {
			parts = script(n, m)
		}
		if parts == nil {
			parts = []string{okResponse(m.word(1))}
		}
		for i, p := range parts {
			if i > 0 {
				time.Sleep(smPause)
			}
			if _, err := io.WriteString(c, p); err != nil {
				return
			}
		}
		if n == 0 {
			close(b.firstSent)
		}
	}
}

// okResponse is the backend's answer to a request for target.
func okResponse(target string) string {
	body := "ok " + target
	return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// requests returns the requests received so far.
func (b *rawBackend) requests() []*rawMsg {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.reqs)
}

// targets returns the request targets received so far.
func (b *rawBackend) targets() []string {
	var ts []string
	for _, m := range b.requests() {
		ts = append(ts, m.word(1))
	}
	return ts
}

func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET)
}

// smSetup serves an app at smHost, proxied to a fresh raw backend, on fe.
func smSetup(t *testing.T, fe frontEnd, opts Options) (addr string, be *rawBackend) {
	t.Helper()
	be = newRawBackend(t)
	opts.Logger = slog.New(slog.DiscardHandler)
	rt := New(opts)
	if _, err := rt.Set(Route{App: "app", Hosts: []string{smHost}, Backends: []*Backend{NewBackend(be.addr)}}); err != nil {
		t.Fatal(err)
	}
	return fe.serve(t, rt), be
}

// smClient is a raw client connection to a front end.
type smClient struct {
	t    *testing.T
	c    net.Conn
	br   *bufio.Reader
	head bool // the next answer is to a HEAD request: it has no body
}

func smDial(t *testing.T, addr string) *smClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &smClient{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *smClient) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read reads the next final response (skipping 1xx), checking that it is
// well-formed; nil, err when the connection ended first.
func (c *smClient) read() (*rawMsg, error) {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(smWait))
	for {
		m, err := readMsg(c.br, true, c.head, nil)
		if err != nil {
			if m.raw != "" {
				// A response cut short: the front end gave up mid-body.
				return m, fmt.Errorf("response cut short (%w): %q", err, trunc(m.raw))
			}
			return nil, err
		}
		if len(m.problems) > 0 {
			c.t.Errorf("front end sent a malformed response %q: %v", trunc(m.raw), m.problems)
		}
		if !strings.HasPrefix(m.start, "HTTP/1.1 ") && !strings.HasPrefix(m.start, "HTTP/1.0 ") {
			c.t.Errorf("status line %q", m.start)
		}
		if m.status() >= 200 {
			return m, nil
		}
	}
}

// closes reports whether the front end announced it closes after m.
func closes(m *rawMsg) bool {
	has := func(token string) bool {
		return slices.ContainsFunc(m.get("Connection"), func(v string) bool { return strings.EqualFold(v, token) })
	}
	return has("close") || strings.HasPrefix(m.start, "HTTP/1.0 ") && !has("keep-alive")
}

// expectClosed checks that the front end closes the connection with no
// further byte.
func (c *smClient) expectClosed() {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(smWait))
	b, err := c.br.ReadByte()
	switch {
	case err == nil:
		rest, _ := c.br.Peek(c.br.Buffered())
		c.t.Errorf("connection not closed: more bytes %q", trunc(string(b)+string(rest)))
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.t.Errorf("connection still open %s after the answer; want it closed", smWait)
	case !isClosedErr(err):
		c.t.Errorf("reading for the close: %v", err)
	}
}

// next sends a clean request for target on the connection and checks that
// it gets its own answer from the backend.
func (c *smClient) next(be *rawBackend, target string) {
	c.t.Helper()
	c.write("GET " + target + " HTTP/1.1\r\nHost: " + smHost + "\r\n\r\n")
	m, err := c.read()
	if err != nil {
		c.t.Fatalf("next request %s on the kept connection: %v", target, err)
	}
	if m.status() != 200 || m.body != "ok "+target {
		c.t.Fatalf("next request %s got %q %q; want its own 200 %q", target, m.start, trunc(m.body), "ok "+target)
	}
	if ts := be.targets(); len(ts) == 0 || ts[len(ts)-1] != target {
		c.t.Fatalf("backend saw %q; want %s last", ts, target)
	}
}

func trunc(s string) string {
	if len(s) > 200 {
		return s[:200] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

// smuggled is a request hidden inside another one's body: the backend must
// never receive it.
const smuggled = "GET /smuggled HTTP/1.1\r\nHost: " + smHost + "\r\n\r\n"

// reqCase is one raw request and the outcomes a front end may give it.
type reqCase struct {
	name string
	raw  string // written in one write
	// netHTTP is the status the net/http front end answers today (0: it
	// closes without an answer); that front end must keep to it.
	netHTTP int
	// forward, if not nil, allows a front end to proxy the request: the
	// backend must then receive exactly these request targets, each with
	// body, and the client the answer to the first. nil: it must reject.
	forward []string
	body    string
	// mustForward: the request is valid; rejecting it is wrong.
	mustForward bool
	// mustClose: the framing is in doubt, so the connection must end after
	// the answer (RFC 9112 6.1, 6.3), whatever the outcome.
	mustClose bool
	// thenRejected: bytes the front end reads as further requests after
	// the first may only get rejections before the close (the front end
	// cannot know they were meant as a body).
	thenRejected bool
	// check, if not nil, checks the requests the backend received.
	check func(t *testing.T, reqs []*rawMsg)
}

// runReqCases runs each case on a fresh connection to each front end.
//
// The outcomes: a rejection (4xx/5xx, or a close without an answer) of a
// request the backend never sees; or a 2xx that is the backend's answer to
// exactly the requests the client meant, each framed unambiguously (the
// raw backend reports any ambiguity). Either way no request the client
// did not mean reaches the backend, and a connection the front end keeps
// serves the client's next request with that request's own answer.
func runReqCases(t *testing.T, cases []reqCase) {
	for _, fe := range frontEnds {
		t.Run(fe.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					addr, be := smSetup(t, fe, Options{})
					c := smDial(t, addr)
					c.write(tc.raw)
					runOutcome(t, fe, tc, c, be)
				})
			}
		})
	}
}

func runOutcome(t *testing.T, fe frontEnd, tc reqCase, c *smClient, be *rawBackend) {
	t.Helper()
	m, err := c.read()
	status := 0
	switch {
	case err == nil:
		status = m.status()
	case m != nil:
		t.Fatalf("%v", err)
	case !isClosedErr(err):
		t.Fatalf("no answer and no close: %v", err)
	}
	t.Logf("%s answers %d", fe.name, status)
	if fe.name == "net/http" && status != tc.netHTTP {
		t.Errorf("net/http answered %d; it answered %d when the suite was written", status, tc.netHTTP)
	}
	switch {
	case status >= 200 && status < 300:
		if tc.forward == nil {
			t.Fatalf("answered %d %q; want a rejection", status, trunc(m.body))
		}
		if got := be.targets(); !slices.Equal(got, tc.forward) {
			t.Fatalf("backend received %q; want exactly %q", got, tc.forward)
		}
		for _, r := range be.requests() {
			if r.body != tc.body {
				t.Errorf("backend received body %q; want %q", trunc(r.body), tc.body)
			}
		}
		if m.body != "ok "+tc.forward[0] {
			t.Errorf("client got %q; want the backend's answer %q", trunc(m.body), "ok "+tc.forward[0])
		}
		if tc.check != nil {
			tc.check(t, be.requests())
		}
	case tc.mustForward:
		t.Fatalf("a valid request got %d (%v); want it proxied", status, err)
	case status >= 400 || status == 0:
		if got := be.targets(); len(got) > 0 {
			t.Fatalf("answered %d but the backend received %q", status, got)
		}
	default:
		t.Fatalf("answered %d; want a 2xx from the backend or a rejection", status)
	}
	if status == 0 {
		return
	}
	if tc.mustClose || closes(m) {
		for tc.thenRejected && !closes(m) {
			if m, err = c.read(); err != nil {
				break
			}
			if m.status() < 400 {
				t.Fatalf("the rest of the body got %q; want a rejection", m.start)
			}
		}
		c.expectClosed()
		want := tc.forward
		if status >= 300 {
			want = nil
		}
		if got := be.targets(); !slices.Equal(got, want) {
			t.Errorf("after the close the backend has received %q; want %q", got, want)
		}
		return
	}
	c.next(be, "/next")
}

// chunk frames s as one chunk and the last chunk.
func chunk(s string) string {
	return fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(s), s)
}

const hostLine = "Host: " + smHost + "\r\n"

// TestSmugglingRequestFraming: requests whose body framing a front end and
// a backend could read differently (Content-Length with
// Transfer-Encoding, duplicate or odd Content-Length values, obfuscated
// Transfer-Encoding, broken chunks, HTTP/1.0 with Transfer-Encoding) are
// rejected, or forwarded with one unambiguous framing and the connection
// closed where the RFC demands it; the request hidden in each body never
// reaches the backend.
func TestSmugglingRequestFraming(t *testing.T) {
	post := func(target, headers, body string) string {
		return "POST " + target + " HTTP/1.1\r\n" + hostLine + headers + "\r\n" + body
	}
	te := "Transfer-Encoding: chunked\r\n"
	runReqCases(t, []reqCase{
		// CL.TE: a front end that trusts Content-Length reads "0\r\n\r\n"
		// as the body and the hidden request as the next one.
		{name: "CL then TE", raw: post("/clte", "Content-Length: 5\r\n"+te, "0\r\n\r\n"+smuggled),
			netHTTP: 200, forward: []string{"/clte"}, mustClose: true},
		// TE.CL: a front end that trusts Content-Length (3) reads the chunk
		// size line as the body and the hidden request as the next one.
		{name: "TE then CL", raw: post("/tecl", te+"Content-Length: 3\r\n", chunk(smuggled)),
			netHTTP: 200, forward: []string{"/tecl"}, body: smuggled, mustClose: true},
		{name: "TE then CL, hidden request after the chunks", raw: post("/tecl2", te+"Content-Length: 100\r\n", "0\r\n\r\n"+smuggled),
			netHTTP: 200, forward: []string{"/tecl2"}, mustClose: true},
		{name: "duplicate Content-Length equal", raw: post("/dupcl", "Content-Length: 5\r\nContent-Length: 5\r\n", "hello"),
			netHTTP: 200, forward: []string{"/dupcl"}, body: "hello"},
		{name: "duplicate Content-Length different", raw: post("/dupcl2", "Content-Length: 5\r\nContent-Length: 50\r\n", "hello"+smuggled),
			netHTTP: 400, mustClose: true},
		{name: "Content-Length list", raw: post("/cllist", "Content-Length: 5, 50\r\n", "hello"+smuggled),
			netHTTP: 400, mustClose: true},
		{name: "Content-Length plus sign", raw: post("/clplus", "Content-Length: +5\r\n", "hello"),
			netHTTP: 400, mustClose: true},
		{name: "Content-Length minus sign", raw: post("/clneg", "Content-Length: -5\r\n", "hello"),
			netHTTP: 400, mustClose: true},
		{name: "Content-Length leading whitespace (OWS)", raw: post("/clows", "Content-Length: \t 5\r\n", "hello"),
			netHTTP: 200, forward: []string{"/clows"}, body: "hello"},
		{name: "Content-Length space inside", raw: post("/clsp", "Content-Length: 5 0\r\n", "hello"),
			netHTTP: 400, mustClose: true},
		{name: "Content-Length hex", raw: post("/clhex", "Content-Length: 0x5\r\n", "hello"),
			netHTTP: 400, mustClose: true},
		{name: "Content-Length huge", raw: post("/clhuge", "Content-Length: 99999999999999999999\r\n", "hello"),
			netHTTP: 400, mustClose: true},
		{name: "Content-Length empty", raw: post("/clempty", "Content-Length: \r\n", "hello"),
			netHTTP: 400, mustClose: true},
		{name: "Transfer-Encoding xchunked", raw: post("/xchunked", "Transfer-Encoding: xchunked\r\n", chunk(smuggled)),
			netHTTP: 501, mustClose: true},
		{name: "Transfer-Encoding chunked, identity", raw: post("/teid", "Transfer-Encoding: chunked, identity\r\n", chunk(smuggled)),
			netHTTP: 501, mustClose: true},
		{name: "Transfer-Encoding identity, chunked", raw: post("/teid2", "Transfer-Encoding: identity, chunked\r\n", chunk(smuggled)),
			netHTTP: 501, mustClose: true},
		{name: "Transfer-Encoding leading space", raw: post("/tesp", "Transfer-Encoding:  chunked\r\n", chunk("hello")),
			netHTTP: 200, forward: []string{"/tesp"}, body: "hello"},
		{name: "Transfer-Encoding trailing tab", raw: post("/tetab", "Transfer-Encoding: chunked\t\r\n", chunk("hello")),
			netHTTP: 200, forward: []string{"/tetab"}, body: "hello"},
		{name: "Transfer-Encoding upper case", raw: post("/teupper", "Transfer-Encoding: CHUNKED\r\n", chunk("hello")),
			netHTTP: 200, forward: []string{"/teupper"}, body: "hello"},
		{name: "Transfer-Encoding twice", raw: post("/tetwice", te+te, chunk("hello")),
			netHTTP: 501, mustClose: true},
		{name: "Transfer-Encoding name with space", raw: post("/tename", "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n"+smuggled),
			netHTTP: 400, mustClose: true},
		// net/http unfolds the line: the same as CL then TE.
		{name: "Transfer-Encoding folded", raw: post("/tefold", "Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n"+smuggled),
			netHTTP: 200, forward: []string{"/tefold"}, mustClose: true},
		{name: "Transfer-Encoding on HTTP/1.0 with Content-Length",
			raw:     "POST /te10 HTTP/1.0\r\n" + hostLine + "Connection: keep-alive\r\n" + te + "Content-Length: 5\r\n\r\n0\r\n\r\n" + smuggled,
			netHTTP: 200, forward: []string{"/te10"}, body: "0\r\n\r\n", mustClose: true},
		{name: "Transfer-Encoding on HTTP/1.0 without Content-Length",
			raw:     "POST /te10b HTTP/1.0\r\n" + hostLine + "Connection: keep-alive\r\n" + te + "\r\n" + chunk(smuggled),
			netHTTP: 200, forward: []string{"/te10b"}, mustClose: true, thenRejected: true},
		{name: "chunk size not hex", raw: post("/chunkzz", te, "zz\r\nhello\r\n0\r\n\r\n"),
			netHTTP: 400, mustClose: true},
		{name: "chunk size 0x", raw: post("/chunk0x", te, "0x5\r\nhello\r\n0\r\n\r\n"),
			netHTTP: 400, mustClose: true},
		{name: "chunk size overflow", raw: post("/chunkbig", te, "fffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
			netHTTP: 400, mustClose: true},
		{name: "chunk size negative", raw: post("/chunkneg", te, "-5\r\nhello\r\n0\r\n\r\n"),
			netHTTP: 400, mustClose: true},
		{name: "chunk data too long", raw: post("/chunklong", te, "5\r\nhelloXX\r\n0\r\n\r\n"),
			netHTTP: 400, mustClose: true},
		{name: "chunk extension", raw: post("/chunkext", te, "5;name=value\r\nhello\r\n0\r\n\r\n"),
			netHTTP: 200, forward: []string{"/chunkext"}, body: "hello"},
		// net/http drops chunk extensions: the backend never sees it.
		{name: "chunk extension with CTL", raw: post("/chunkextctl", te, "5;a\x00b\r\nhello\r\n0\r\n\r\n"),
			netHTTP: 200, forward: []string{"/chunkextctl"}, body: "hello"},
		{name: "chunk size bare LF", raw: post("/chunklf", te, "5\nhello\r\n0\r\n\r\n"),
			netHTTP: 400, forward: []string{"/chunklf"}, body: "hello", mustClose: true},
		{name: "Connection close stops a pipelined request", raw: "GET /close HTTP/1.1\r\n" + hostLine + "Connection: close\r\n\r\n" + smuggled,
			netHTTP: 200, forward: []string{"/close"}, mustForward: true, mustClose: true},
	})
}

// TestMalformedRequests: malformed request lines, header fields and
// versions are rejected before any byte reaches the backend, or, where the
// RFC lets a recipient repair them, forwarded in a clean form; a valid
// request is never rejected.
func TestMalformedRequests(t *testing.T) {
	get := func(target, headers string) string {
		return "GET " + target + " HTTP/1.1\r\n" + hostLine + headers + "\r\n"
	}
	noInjected := func(t *testing.T, reqs []*rawMsg) {
		for _, r := range reqs {
			if v := r.get("X-Injected"); len(v) > 0 {
				t.Errorf("backend received an injected field X-Injected: %q in %q", v, r.raw)
			}
		}
	}
	hostIs := func(want string) func(*testing.T, []*rawMsg) {
		return func(t *testing.T, reqs []*rawMsg) {
			for _, r := range reqs {
				if h := r.get("Host"); len(h) != 1 || h[0] != want {
					t.Errorf("backend received Host %q; want exactly %q (the host the router routed by)", h, want)
				}
			}
		}
	}
	methodIs := func(want string) func(*testing.T, []*rawMsg) {
		return func(t *testing.T, reqs []*rawMsg) {
			for _, r := range reqs {
				if got := r.word(0); got != want {
					t.Errorf("backend received method %q; want %q", got, want)
				}
			}
		}
	}
	big := strings.Repeat("a", daemonMaxHeaderBytes+8<<10)
	runReqCases(t, []reqCase{
		{name: "valid", raw: get("/valid", ""), netHTTP: 200, forward: []string{"/valid"}, mustForward: true},
		{name: "bare LF line endings", raw: "GET /lf HTTP/1.1\n" + "Host: " + smHost + "\nX-A: 1\n\n",
			netHTTP: 200, forward: []string{"/lf"}},
		{name: "bare CR ends the request line", raw: "GET /cr HTTP/1.1\rHost: " + smHost + "\r\n\r\n",
			netHTTP: 400, mustClose: true},
		{name: "bare CR in a value", raw: get("/crval", "X-A: a\rX-Injected: 1\r\n"),
			netHTTP: 400, mustClose: true},
		{name: "bare LF in a value", raw: get("/lfval", "X-A: a\nX-Injected: 1\r\n"),
			netHTTP: 200, forward: []string{"/lfval"}}, // a line of its own: two fields
		{name: "obs-fold", raw: get("/fold", "X-A: a\r\n b\r\n"),
			netHTTP: 200, forward: []string{"/fold"}},
		{name: "obs-fold on the first field", raw: "GET /fold1 HTTP/1.1\r\n X-A: a\r\n" + hostLine + "\r\n",
			netHTTP: 400, mustClose: true},
		{name: "space before colon", raw: "GET /hostsp HTTP/1.1\r\nHost : " + smHost + "\r\n\r\n",
			netHTTP: 400, mustClose: true},
		{name: "tab before colon", raw: get("/tabname", "Foo\t: x\r\n"),
			netHTTP: 400, mustClose: true},
		{name: "space in a name", raw: get("/spname", "Fo o: x\r\n"),
			netHTTP: 400, mustClose: true},
		{name: "no colon", raw: get("/nocolon", "Foo\r\n"),
			netHTTP: 400, mustClose: true},
		{name: "empty name", raw: get("/emptyname", ": x\r\n"),
			netHTTP: 400, mustClose: true},
		{name: "NUL in a name", raw: get("/nulname", "F\x00o: x\r\n"),
			netHTTP: 400, mustClose: true},
		{name: "NUL in a value", raw: get("/nulval", "X-A: a\x00b\r\n"),
			netHTTP: 400, mustClose: true},
		{name: "CTL in a value", raw: get("/ctlval", "X-A: a\x01b\r\n"),
			netHTTP: 400, mustClose: true},
		{name: "DEL in a value", raw: get("/delval", "X-A: a\x7fb\r\n"),
			netHTTP: 400, mustClose: true},
		{name: "percent-encoded CRLF in the target", raw: get("/a%0d%0aX-Injected:%201", ""),
			netHTTP: 200, forward: []string{"/a%0d%0aX-Injected:%201"}, mustForward: true, check: noInjected},
		{name: "header line just under the limit", raw: get("/under", "X-Big: "+big[:daemonMaxHeaderBytes-1<<10]+"\r\n"),
			netHTTP: 200, forward: []string{"/under"}, mustForward: true},
		{name: "oversized header", raw: get("/bighdr", "X-Big: "+big+"\r\n"),
			netHTTP: 431, mustClose: true},
		{name: "oversized request line", raw: get("/"+big, ""),
			netHTTP: 431, mustClose: true},
		{name: "many headers", raw: get("/many", strings.Repeat("X-A: 0123456789\r\n", daemonMaxHeaderBytes/16)),
			netHTTP: 431, mustClose: true},
		{name: "empty method", raw: " /nomethod HTTP/1.1\r\n" + hostLine + "\r\n",
			netHTTP: 400, mustClose: true},
		{name: "lower-case method", raw: "get /lower HTTP/1.1\r\n" + hostLine + "\r\n",
			netHTTP: 200, forward: []string{"/lower"}, check: methodIs("get")},
		{name: "method not a token", raw: "G(T /paren HTTP/1.1\r\n" + hostLine + "\r\n",
			netHTTP: 400, mustClose: true},
		{name: "method with NUL", raw: "GE\x00T /nulmethod HTTP/1.1\r\n" + hostLine + "\r\n",
			netHTTP: 400, mustClose: true},
		{name: "two spaces after the method", raw: "GET  /twospace HTTP/1.1\r\n" + hostLine + "\r\n",
			netHTTP: 400, mustClose: true},
		{name: "target without a slash", raw: get("noslash", ""),
			netHTTP: 400, mustClose: true},
		{name: "space in the target", raw: get("/a b", ""),
			netHTTP: 400, mustClose: true},
		{name: "CTL in the target", raw: get("/a\x01b", ""),
			netHTTP: 400, mustClose: true},
		{name: "asterisk with GET", raw: get("*", ""),
			netHTTP: 400},
		{name: "absolute-form, Host of another app", raw: "GET http://" + smHost + "/abs HTTP/1.1\r\nHost: other.test\r\n\r\n",
			netHTTP: 200, forward: []string{"/abs"}, check: hostIs(smHost)},
		{name: "absolute-form of an unknown host", raw: "GET http://other.test/abs HTTP/1.1\r\n" + hostLine + "\r\n",
			netHTTP: 404},
		{name: "missing Host", raw: "GET /nohost HTTP/1.1\r\n\r\n",
			netHTTP: 400, mustClose: true},
		{name: "two Host fields", raw: "GET /twohost HTTP/1.1\r\n" + hostLine + "Host: other.test\r\n\r\n",
			netHTTP: 400, mustClose: true},
		{name: "two equal Host fields", raw: "GET /twohost2 HTTP/1.1\r\n" + hostLine + hostLine + "\r\n",
			netHTTP: 400, mustClose: true},
		{name: "Host with a path", raw: "GET /hostpath HTTP/1.1\r\nHost: " + smHost + "/x\r\n\r\n",
			netHTTP: 400, mustClose: true},
		{name: "HTTP/1.0 without Host", raw: "GET /nohost10 HTTP/1.0\r\n\r\n",
			netHTTP: 404},
		{name: "HTTP/0.9 request line", raw: "GET /\r\n\r\n",
			netHTTP: 400, mustClose: true},
		{name: "HTTP/0.9 version", raw: "GET /v09 HTTP/0.9\r\n" + hostLine + "\r\n",
			netHTTP: 505, mustClose: true},
		{name: "HTTP/1.2", raw: "GET /v12 HTTP/1.2\r\n" + hostLine + "\r\n",
			netHTTP: 200, forward: []string{"/v12"}},
		{name: "HTTP/2.0", raw: "GET /v20 HTTP/2.0\r\n" + hostLine + "\r\n",
			netHTTP: 505, mustClose: true},
		{name: "lower-case version", raw: "GET /lowerv http/1.1\r\n" + hostLine + "\r\n",
			netHTTP: 400, mustClose: true},
		// net/http hands "PRI * HTTP/2.0" to the handler (for h2c); the
		// router refuses "*" but for OPTIONS.
		{name: "HTTP/2 preface on the HTTP/1 port", raw: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
			netHTTP: 400, mustClose: true},
		// The router is no forward proxy: a tunnel to the app would carry
		// requests past it.
		{name: "CONNECT", raw: "CONNECT " + smHost + ":80 HTTP/1.1\r\nHost: " + smHost + ":80\r\n\r\n",
			netHTTP: 501, mustClose: true},
		{name: "Upgrade without a websocket backend",
			raw:     get("/ws", "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
			netHTTP: 200, forward: []string{"/ws"}, mustForward: true},
	})
}

// forEachFrontEnd runs f in a parallel subtest per front end, each with
// a fresh app and raw backend.
func forEachFrontEnd(t *testing.T, opts Options, f func(t *testing.T, c *smClient, be *rawBackend)) {
	for _, fe := range frontEnds {
		t.Run(fe.name, func(t *testing.T) {
			t.Parallel()
			addr, be := smSetup(t, fe, opts)
			f(t, smDial(t, addr), be)
		})
	}
}

// expectAnswers reads len(targets) answers and checks that each is the
// backend's answer to its own request, in order.
func (c *smClient) expectAnswers(targets ...string) {
	c.t.Helper()
	for _, target := range targets {
		m, err := c.read()
		if err != nil {
			c.t.Fatalf("answer to %s: %v", target, err)
		}
		if m.status() != 200 || m.body != "ok "+target {
			c.t.Fatalf("answer to %s: %q %q; want 200 %q", target, m.start, trunc(m.body), "ok "+target)
		}
	}
}

// TestSmugglingPipelined: two and three requests in one write, with and
// without bodies, each get their own answer in order, and the backend gets
// exactly those requests with their own bodies. After a chunked request
// the connection ends (see Router.ServeHTTP): what follows is not served.
func TestSmugglingPipelined(t *testing.T) {
	req := func(target string) string { return "GET " + target + " HTTP/1.1\r\n" + hostLine + "\r\n" }
	t.Run("two", func(t *testing.T) {
		forEachFrontEnd(t, Options{}, func(t *testing.T, c *smClient, be *rawBackend) {
			c.write(req("/p1") + req("/p2"))
			c.expectAnswers("/p1", "/p2")
			c.next(be, "/next")
			if got, want := be.targets(), []string{"/p1", "/p2", "/next"}; !slices.Equal(got, want) {
				t.Errorf("backend received %q; want %q", got, want)
			}
		})
	})
	t.Run("three with a body", func(t *testing.T) {
		forEachFrontEnd(t, Options{}, func(t *testing.T, c *smClient, be *rawBackend) {
			body := req("/not-a-request") // a body that looks like a request is only a body
			c.write(req("/p1") + "POST /p2 HTTP/1.1\r\n" + hostLine + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body + req("/p3"))
			c.expectAnswers("/p1", "/p2", "/p3")
			c.next(be, "/next")
			reqs := be.requests()
			if got, want := be.targets(), []string{"/p1", "/p2", "/p3", "/next"}; !slices.Equal(got, want) {
				t.Fatalf("backend received %q; want %q", got, want)
			}
			if reqs[1].body != body {
				t.Errorf("backend received POST body %q; want %q", reqs[1].body, body)
			}
		})
	})
	t.Run("after a chunked request", func(t *testing.T) {
		forEachFrontEnd(t, Options{}, func(t *testing.T, c *smClient, be *rawBackend) {
			c.write(req("/p1") + "POST /p2 HTTP/1.1\r\n" + hostLine + "Transfer-Encoding: chunked\r\n\r\n" + chunk("hello") + req("/p3"))
			c.expectAnswers("/p1", "/p2")
			c.expectClosed()
			if got, want := be.targets(), []string{"/p1", "/p2"}; !slices.Equal(got, want) {
				t.Errorf("backend received %q; want %q", got, want)
			}
		})
	})
}

// TestMalformedSplitWrites: a request that arrives a few bytes at a time
// (head and chunked body) is put together whole, and the next request on
// the connection gets its own answer.
func TestMalformedSplitWrites(t *testing.T) {
	t.Run("chunked POST in 3-byte pieces", func(t *testing.T) {
		forEachFrontEnd(t, Options{}, func(t *testing.T, c *smClient, be *rawBackend) {
			raw := "POST /split HTTP/1.1\r\n" + hostLine + "X-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n" + "3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"
			for i := 0; i < len(raw); i += 3 {
				c.write(raw[i:min(i+3, len(raw))])
				if i%30 == 0 {
					time.Sleep(time.Millisecond) // let some pieces arrive alone
				}
			}
			c.expectAnswers("/split")
			if reqs := be.requests(); len(reqs) != 1 || reqs[0].body != "hello" || len(reqs[0].get("X-A")) != 1 {
				t.Fatalf("backend received %d requests: %q; want one with body hello", len(reqs), be.targets())
			}
			c.expectClosed() // chunked: the connection ends (closeAfter)
		})
	})
	t.Run("GET byte by byte", func(t *testing.T) {
		forEachFrontEnd(t, Options{}, func(t *testing.T, c *smClient, be *rawBackend) {
			raw := "GET /split2 HTTP/1.1\r\n" + hostLine + "X-A: 1\r\n\r\n"
			for i := range len(raw) {
				c.write(raw[i : i+1])
			}
			c.expectAnswers("/split2")
			c.next(be, "/next")
		})
	})
}

// TestSmugglingExpectContinue: a client that waits for 100 Continue before
// its body gets it, the backend gets the body whole, and the connection
// serves the next request.
func TestSmugglingExpectContinue(t *testing.T) {
	forEachFrontEnd(t, Options{}, func(t *testing.T, c *smClient, be *rawBackend) {
		c.write("POST /expect HTTP/1.1\r\n" + hostLine + "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		_ = c.c.SetReadDeadline(time.Now().Add(smWait))
		m, err := readMsg(c.br, true, false, nil)
		if err != nil || m.status() != 100 {
			t.Fatalf("first answer %v %v; want 100 Continue before the body", m, err)
		}
		c.write("hello")
		c.expectAnswers("/expect")
		if reqs := be.requests(); len(reqs) != 1 || reqs[0].body != "hello" {
			t.Fatalf("backend received %q; want /expect with body hello", be.targets())
		}
		c.next(be, "/next")
	})
}

// TestSmugglingHopByHopAndForwarded: hop-by-hop fields (those listed in
// Connection, Keep-Alive, Proxy-Connection, Proxy-Authorization, TE,
// Upgrade without an upgrade) never reach the backend, and the client's
// X-Forwarded-For/Host/Proto and Forwarded are replaced, not trusted; on
// both transport paths (GET: lean, POST: net/http).
func TestSmugglingHopByHopAndForwarded(t *testing.T) {
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			forEachFrontEnd(t, Options{}, func(t *testing.T, c *smClient, be *rawBackend) {
				body := ""
				if method == "POST" {
					body = "Content-Length: 2\r\n\r\nhi"
				} else {
					body = "\r\n"
				}
				c.write(method + " /hop HTTP/1.1\r\n" + hostLine +
					"Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\n" +
					"Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic c2VjcmV0\r\nTE: gzip\r\nUpgrade: h2c\r\n" +
					"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil.test\r\nX-Forwarded-Proto: https\r\nForwarded: for=6.6.6.6;proto=https\r\n" +
					"X-Kept: yes\r\n" + body)
				c.expectAnswers("/hop")
				reqs := be.requests()
				if len(reqs) != 1 {
					t.Fatalf("backend received %q", be.targets())
				}
				r := reqs[0]
				for _, name := range []string{"X-Hop", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Upgrade", "Forwarded"} {
					if v := r.get(name); len(v) > 0 {
						t.Errorf("backend received %s: %q", name, v)
					}
				}
				// net/http's proxy announces trailer support with TE:
				// trailers; nothing else of the client's TE may pass.
				if v := r.get("TE"); len(v) > 1 || len(v) == 1 && v[0] != "trailers" {
					t.Errorf("backend received TE %q", v)
				}
				if v := r.get("Connection"); len(v) > 0 && !slices.Equal(v, []string{"keep-alive"}) {
					t.Errorf("backend received Connection %q", v)
				}
				for name, want := range map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": smHost, "X-Forwarded-Proto": "http", "X-Kept": "yes"} {
					if v := r.get(name); len(v) != 1 || v[0] != want {
						t.Errorf("backend received %s %q; want exactly %q", name, v, want)
					}
				}
				c.next(be, "/next")
			})
		})
	}
}

// respCase is a backend that misbehaves in its answer to one request.
type respCase struct {
	name  string
	parts []string // the raw answer, written with smPause between parts
	// lean and std are what the net/http front end answers today when the
	// request takes the lean transport path (GET) and net/http's (POST):
	// a status, or 0 when the client's connection ends before the answer
	// is whole (before it or mid-body), so that the client can tell.
	lean, std int
	body      string // the body a 2xx must carry
	opts      Options
}

// smuggledAnswer is an answer a misbehaving backend sends beyond the one
// it owes: no client may ever receive it.
const smuggledAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"

// TestSmugglingResponses: a backend that frames its answer ambiguously or
// wrongly gets its client a 502, an answer cut short, or one clean answer;
// the bytes it sends beyond that answer never reach a client as the
// answer to another request, neither on the same client connection nor on
// another one (the router pools backend connections), on both transport
// paths.
func TestSmugglingResponses(t *testing.T) {
	ok := func(head, body string) string {
		return "HTTP/1.1 200 OK\r\n" + head + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	bigHeader := "X-Big: " + strings.Repeat("a", DefaultMaxResponseHeaderBytes) + "\r\n"
	cases := []respCase{
		{name: "valid", parts: []string{ok("", "first")}, lean: 200, std: 200, body: "first"},
		{name: "CL and TE", parts: []string{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk("hello")},
			lean: 200, std: 200, body: "hello"},
		// Transfer-Encoding wins (RFC 9112 6.3); what follows the chunks
		// is not an answer to anything.
		{name: "TE and CL, answer hidden after the chunks", parts: []string{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: " + strconv.Itoa(5+len(smuggledAnswer)) + "\r\n\r\n0\r\n\r\n" + smuggledAnswer},
			lean: 200, std: 200},
		{name: "two different CLs", parts: []string{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\nhello" + smuggledAnswer},
			lean: 502, std: 502},
		{name: "CL list", parts: []string{"HTTP/1.1 200 OK\r\nContent-Length: 5, 50\r\n\r\nhello" + smuggledAnswer},
			lean: 502, std: 502},
		{name: "bare LF", parts: []string{"HTTP/1.1 200 OK\nContent-Length: 5\nX-A: 1\n\nhello"},
			lean: 200, std: 200, body: "hello"},
		{name: "obs-fold", parts: []string{ok("X-A: a\r\n b\r\n", "hello")},
			lean: 200, std: 200, body: "hello"},
		{name: "CR in a value", parts: []string{ok("X-A: a\rX-Injected: 1\r\n", "hello")},
			lean: 502, std: 502},
		{name: "NUL in a value", parts: []string{ok("X-A: a\x00b\r\n", "hello")},
			lean: 502, std: 502},
		{name: "status line HTTP/2.0", parts: []string{"HTTP/2.0 200 OK\r\nContent-Length: 5\r\n\r\nhello"},
			lean: 200, std: 200, body: "hello"},
		{name: "status line not HTTP", parts: []string{"ICY 200 OK\r\nContent-Length: 5\r\n\r\nhello"},
			lean: 502, std: 502},
		{name: "status 4 digits", parts: []string{"HTTP/1.1 2000 OK\r\nContent-Length: 5\r\n\r\nhello"},
			lean: 502, std: 502},
		{name: "101 to a plain request", parts: []string{"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n" + smuggledAnswer},
			lean: 502, std: 502},
		{name: "103 then the answer", parts: []string{"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" + ok("", "hello")},
			lean: 200, std: 200, body: "hello"},
		{name: "body longer than CL, one write", parts: []string{ok("", "hello") + smuggledAnswer},
			lean: 200, std: 200, body: "hello"},
		{name: "body longer than CL, later write", parts: []string{ok("", "hello"), smuggledAnswer},
			lean: 200, std: 200, body: "hello"},
		{name: "body on a 204, later write", parts: []string{"HTTP/1.1 204 No Content\r\n\r\n", smuggledAnswer},
			lean: 204, std: 204},
		{name: "body on a 304, later write", parts: []string{"HTTP/1.1 304 Not Modified\r\n\r\n", smuggledAnswer},
			lean: 304, std: 304},
		{name: "chunk size not hex", parts: []string{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"},
			lean: 0, std: 0},
		{name: "chunk size overflow", parts: []string{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nhello\r\n0\r\n\r\n"},
			lean: 0, std: 0},
		{name: "Transfer-Encoding not chunked", parts: []string{"HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n" + chunk("hello")},
			lean: 502, std: 502},
		{name: "headers over MaxResponseHeaderBytes", parts: []string{ok(bigHeader, "hello")},
			lean: 502, std: 502},
	}
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			for _, fe := range frontEnds {
				t.Run(fe.name, func(t *testing.T) {
					for _, tc := range cases {
						t.Run(tc.name, func(t *testing.T) {
							t.Parallel()
							runRespCase(t, fe, method, tc)
						})
					}
				})
			}
		})
	}
}

func runRespCase(t *testing.T, fe frontEnd, method string, tc respCase) {
	addr, be := smSetup(t, fe, tc.opts)
	be.misbehave(tc.parts)
	c := smDial(t, addr)
	if method == "GET" {
		c.write("GET /first HTTP/1.1\r\n" + hostLine + "\r\n")
	} else {
		c.write("POST /first HTTP/1.1\r\n" + hostLine + "Content-Length: 1\r\n\r\nx")
	}
	m, err := c.read()
	status := 0
	if err == nil {
		status = m.status()
	}
	want := tc.lean
	if method != "GET" {
		want = tc.std
	}
	t.Logf("%s answers %d (%v)", fe.name, status, err)
	if fe.name == "net/http" && status != want {
		t.Errorf("net/http answered %d; it answered %d when the suite was written", status, want)
	}
	switch {
	case status == 0:
		if !isClosedErr(err) && m == nil {
			t.Fatalf("no answer (%v); want a 502, or the connection closed", err)
		}
	case status >= 200 && status < 300:
		if m.body != tc.body {
			t.Errorf("client got body %q; want %q", trunc(m.body), tc.body)
		}
		if v := m.get("X-Injected"); len(v) > 0 {
			t.Errorf("client got an injected field X-Injected: %q", v)
		}
	case status == 204 || status == 304 || status == 502:
	default:
		t.Errorf("answered %d; want a 502, an answer cut short or the backend's answer", status)
	}
	be.waitFirstSent() // every byte it sends arrives before the next requests
	if status != 0 && !closes(m) {
		c.next(be, "/next")
	}
	for i := range 3 {
		smDial(t, addr).next(be, "/other"+strconv.Itoa(i))
	}
}

// TestSmugglingHeadBody: an app that answers HEAD with a body (a common
// bug) never gets those bytes to a client as the answer to another
// request, whether they come with the head or a moment later.
func TestSmugglingHeadBody(t *testing.T) {
	for name, parts := range map[string][]string{
		"one write":   {okResponse("/first")},
		"later write": {"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n", "smuggled" + smuggledAnswer},
	} {
		t.Run(name, func(t *testing.T) {
			forEachFrontEnd(t, Options{}, func(t *testing.T, c *smClient, be *rawBackend) {
				addr := c.c.RemoteAddr().String()
				be.misbehave(parts)
				c.head = true
				c.write("HEAD /first HTTP/1.1\r\n" + hostLine + "\r\n")
				if m, err := c.read(); err != nil || m.status() != 200 {
					t.Fatalf("HEAD answer %v, %v; want a 200", m, err)
				}
				c.head = false
				be.waitFirstSent()
				c.next(be, "/next")
				for i := range 3 {
					smDial(t, addr).next(be, "/other"+strconv.Itoa(i))
				}
			})
		})
	}
}

// TestSmugglingH2CUpgrade: an HTTP/2 cleartext upgrade (h2c) never
// reaches the app, so an app that would accept it cannot give the client
// a tunnel past the router (h2c smuggling): requests in it would skip
// what the router strips and sets (X-Forwarded-For, Plat-Flags, the
// plat cookies). The request itself is answered as HTTP/1.1.
func TestSmugglingH2CUpgrade(t *testing.T) {
	for _, upgrade := range []string{"h2c", "H2C", "websocket, h2c"} {
		t.Run(upgrade, func(t *testing.T) {
			forEachFrontEnd(t, Options{}, func(t *testing.T, c *smClient, be *rawBackend) {
				be.mu.Lock()
				be.script = func(n int, m *rawMsg) []string {
					if len(m.get("Upgrade")) > 0 { // an app that accepts h2c
						return []string{"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"}
					}
					return nil
				}
				be.mu.Unlock()
				c.write("GET /h2c HTTP/1.1\r\n" + hostLine + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: " + upgrade + "\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
				c.expectAnswers("/h2c")
				for _, r := range be.requests() {
					for _, name := range []string{"Upgrade", "HTTP2-Settings"} {
						if v := r.get(name); len(v) > 0 {
							t.Errorf("backend received %s: %q", name, v)
						}
					}
				}
				c.next(be, "/next")
			})
		})
	}
}
