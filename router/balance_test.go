package router

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// countingTransport counts the requests sent to each backend address.
type countingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	sent map[string]int
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.sent[req.URL.Host]++
	c.mu.Unlock()
	return c.next.RoundTrip(req)
}

func (c *countingTransport) count(addr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent[addr]
}

// newCountingRouter is newTestRouter with plat's transport behind a counter.
func newCountingRouter(t *testing.T) (*Router, *httptest.Server, *countingTransport) {
	t.Helper()
	ct := &countingTransport{next: newTransport(Options{}), sent: map[string]int{}}
	r := New(Options{Logger: slog.New(slog.DiscardHandler), Transport: ct})
	front := httptest.NewServer(r)
	t.Cleanup(func() {
		front.Close()
		r.CloseIdleConnections()
	})
	return r, front, ct
}

// closedAddr returns a loopback address nobody listens on: connecting to it
// is refused, as with a replica whose container died.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// resettingAddr returns the address of a listener that accepts connections,
// reads the start of the request and resets them, as an app that crashes on
// a request does. (Resetting before reading can fail the proxy's connect,
// which is then a dial error, safe to retry with any request.)
func resettingAddr(t *testing.T) (addr string, accepted func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	n := 0
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _ = conn.Read(make([]byte, 16))
			_ = conn.(*net.TCPConn).SetLinger(0) // close sends RST
			conn.Close()
		}
	}()
	return ln.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// echoHandler answers name and the request body.
func echoHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		_, _ = io.WriteString(w, name+":"+string(body))
	})
}

// send sends method with body (none if empty) to the front server and
// returns the status and response body.
func send(t *testing.T, front *httptest.Server, method, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, front.URL+"/", rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "app.localhost"
	resp, err := front.Client().Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func assertNothingInFlight(t *testing.T, backends ...*Backend) {
	t.Helper()
	for _, b := range backends {
		if n := b.InFlight(); n != 0 {
			t.Errorf("backend %s: %d in flight after the requests", b.Addr(), n)
		}
	}
}

func TestThreeBackendsShareTraffic(t *testing.T) {
	r, front, _ := newTestRouter(t)
	var backends []*Backend
	for i := range 3 {
		_, b := newBackendServer(t, textHandler(fmt.Sprint(i)))
		backends = append(backends, b)
	}
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: backends})
	const n = 300
	counts := map[string]int{}
	for range n {
		_, body := get(t, front, "app.localhost", "/", nil)
		counts[body]++
	}
	for i := range 3 {
		if c := counts[fmt.Sprint(i)]; c <= n/5 {
			t.Errorf("backend %d got %d of %d requests, want more than 20%% (counts %v)", i, c, n, counts)
		}
	}
	if st, _ := r.Stats("app"); st.Requests != n || st.InFlight != 0 || st.Backends != 3 {
		t.Errorf("stats = %+v, want %d requests, none in flight, 3 backends", st, n)
	}
}

func TestLeastInFlight(t *testing.T) {
	r, front, _ := newTestRouter(t)
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	_, busy := newBackendServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		<-release
		_, _ = io.WriteString(w, "busy")
	}))
	_, idle := newBackendServer(t, textHandler("idle"))
	// The first request goes to index 1 (the round-robin start): busy.
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{idle, busy}})

	slow := make(chan string, 1)
	go func() {
		_, body, err := getCtx(context.Background(), front, "app.localhost")
		slow <- body + errString(err)
	}()
	waitFor(t, "the slow request to reach the busy backend", func() bool { return busy.InFlight() == 1 })
	if st, _ := r.Stats("app"); st.InFlight != 1 {
		t.Errorf("stats in flight = %d, want 1", st.InFlight)
	}
	for range 10 {
		if _, body := get(t, front, "app.localhost", "/", nil); body != "idle" {
			t.Fatalf("request went to %q while the other backend was busy", body)
		}
	}
	once.Do(func() { close(release) })
	if got := <-slow; got != "busy" {
		t.Errorf("slow request got %q", got)
	}
	assertNothingInFlight(t, busy, idle)
}

func TestDeadBackendIsRetriedAndAvoided(t *testing.T) {
	r, front, ct := newCountingRouter(t)
	dead := NewBackend(closedAddr(t))
	_, a := newBackendServer(t, echoHandler("a"))
	_, b := newBackendServer(t, echoHandler("b"))
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{a, dead, b}})

	const n = 300
	start := time.Now()
	failed := 0
	for i := range n {
		method, body := http.MethodGet, ""
		if i%3 == 0 { // a connection refused is safe to retry with a body too
			method, body = http.MethodPost, fmt.Sprintf("req%d", i)
		}
		status, got := send(t, front, method, body)
		if status != http.StatusOK || !strings.HasSuffix(got, ":"+body) {
			failed++
			t.Logf("%s %d: %d %q", method, i, status, got)
		}
	}
	elapsed := time.Since(start)
	if failed > 0 {
		t.Errorf("%d of %d requests failed with a dead backend", failed, n)
	}
	// Tried once, then avoided for DownPeriod each time.
	maxTries := 2 + int(elapsed/DownPeriod)
	if tries := ct.count(dead.Addr()); tries == 0 || tries > maxTries {
		t.Errorf("dead backend tried %d times in %v, want 1..%d", tries, elapsed.Round(time.Millisecond), maxTries)
	}
	assertNothingInFlight(t, a, b, dead)
}

func TestResetBackend(t *testing.T) {
	tests := []struct {
		method, body string
		wantStatus   int
		wantRetried  bool
	}{
		{http.MethodGet, "", http.StatusOK, true},
		{http.MethodDelete, "", http.StatusOK, true},
		{http.MethodPost, "", http.StatusBadGateway, false},         // not idempotent
		{http.MethodPut, "payload", http.StatusBadGateway, false},   // has a body that may have been read
		{http.MethodPost, "payload", http.StatusBadGateway, false},  // neither
		{http.MethodPatch, "payload", http.StatusBadGateway, false}, // neither
		{http.MethodOptions, "", http.StatusOK, true},               // idempotent
		{http.MethodHead, "", http.StatusOK, true},                  // lean transport
		{http.MethodGet + "-twice", "", http.StatusOK, true},        // see below
	}
	for _, tt := range tests {
		t.Run(tt.method+"/"+tt.body, func(t *testing.T) {
			method := strings.TrimSuffix(tt.method, "-twice")
			r, front, ct := newCountingRouter(t)
			resetAddr, accepted := resettingAddr(t)
			reset := NewBackend(resetAddr)
			_, good := newBackendServer(t, echoHandler("good"))
			// Index 1 (the reset one) takes the first request.
			mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{good, reset}})

			status, body := send(t, front, method, tt.body)
			if status != tt.wantStatus {
				t.Errorf("status = %d, want %d (body %q)", status, tt.wantStatus, body)
			}
			if accepted() == 0 {
				t.Error("the request never reached the resetting backend")
			}
			if retried := ct.count(good.Addr()) > 0; retried != tt.wantRetried {
				t.Errorf("retried on the good backend: %v, want %v", retried, tt.wantRetried)
			}
			if tt.wantStatus == http.StatusBadGateway && !strings.Contains(body, "app app did not answer") {
				t.Errorf("body = %q, want the 502 page", body)
			}
			if strings.HasSuffix(tt.method, "-twice") {
				// The reset backend is down now: the next request goes
				// straight to the good one although it is its turn.
				before := accepted()
				if status, _ := send(t, front, method, ""); status != http.StatusOK || accepted() != before {
					t.Errorf("second request: status %d, reset backend reached %d more times", status, accepted()-before)
				}
			}
			assertNothingInFlight(t, good, reset)
		})
	}
}

func TestClassify(t *testing.T) {
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	resetErr := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		method string
		body   string
		ctx    context.Context
		err    error
		want   failure
	}{
		{"refused GET", "GET", "", nil, dialErr, failedSafe},
		{"refused POST with body", "POST", "x", nil, fmt.Errorf("wrapped: %w", dialErr), failedSafe},
		{"reset GET", "GET", "", nil, resetErr, failedSafe},
		{"EOF HEAD", "HEAD", "", nil, io.EOF, failedSafe},
		{"unexpected EOF PUT", "PUT", "", nil, io.ErrUnexpectedEOF, failedSafe},
		{"reset PUT with body", "PUT", "x", nil, resetErr, failedUnsafe},
		{"reset POST", "POST", "", nil, resetErr, failedUnsafe},
		{"reset PATCH", "PATCH", "", nil, resetErr, failedUnsafe},
		{"timeout", "GET", "", nil, context.DeadlineExceeded, failedAfterResponse},
		{"other error", "GET", "", nil, fmt.Errorf("malformed HTTP response"), failedAfterResponse},
		{"client left", "GET", "", canceled, dialErr, failedAfterResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req := httptest.NewRequest(tt.method, "http://app.localhost/", body)
			if tt.ctx != nil {
				req = req.WithContext(tt.ctx)
			}
			if got := classify(req, tt.err); got != tt.want {
				t.Errorf("classify = %d, want %d", got, tt.want)
			}
		})
	}
}

// refusingTransport fails requests to one address as a refused connection
// and records where the others went.
type refusingTransport struct {
	hostTransport
	refuse string
}

func (rt *refusingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == rt.refuse {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	return rt.hostTransport.RoundTrip(req)
}

// TestRetryRechecksTable: the drain race re-check holds for the backend a
// retry chooses too. The table is swapped after the retry chose b2 but
// before it counted itself on it: the retry must go to b3.
func TestRetryRechecksTable(t *testing.T) {
	dead, b2, b3 := NewBackend("127.0.0.1:1"), NewBackend("127.0.0.1:2"), NewBackend("127.0.0.1:3")
	tr := &refusingTransport{refuse: dead.Addr()}
	r := New(Options{Transport: tr, Logger: slog.New(slog.DiscardHandler)})
	// The first pick takes index 1: dead.
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{b2, dead}})
	picks := 0
	testHookPicked = func() {
		if picks++; picks == 2 { // the retry's choice
			mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{dead, b3}})
		}
	}
	defer func() { testHookPicked = nil }()

	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://app.localhost/", nil))
	if w.Code != http.StatusOK || len(tr.addrs) != 1 || tr.addrs[0] != b3.Addr() {
		t.Errorf("status %d, forwarded to %v; want 200 via %s only", w.Code, tr.addrs, b3.Addr())
	}
	if picks != 3 {
		t.Errorf("backend chosen %d times, want 3 (dead, b2 dropped, b3)", picks)
	}
	assertNothingInFlight(t, dead, b2, b3)
}
