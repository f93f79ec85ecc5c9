package router

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingBackend is a backend server that counts the TCP connections the
// router opened to it.
func countingBackend(t *testing.T, h http.Handler) (*httptest.Server, *Backend, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, NewBackend(srv.Listener.Addr().String()), &conns
}

// do sends method path with Host app.localhost through front and returns the
// response and its body.
func do(t *testing.T, front *httptest.Server, method, path string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, front.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "app.localhost"
	resp, err := front.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, string(b)
}

// TestTransportResponses: every kind of response passes through intact, and
// the router reuses one backend connection for sequential requests whose
// responses allow it.
func TestTransportResponses(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		handler  http.HandlerFunc
		status   int
		body     string
		header   map[string]string
		reusable bool // the backend connection may serve the next request
	}{
		{
			name:   "fixed length",
			method: http.MethodGet,
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				_, _ = io.WriteString(w, "hello")
			},
			status: 200, body: "hello", header: map[string]string{"Content-Length": "5"}, reusable: true,
		},
		{
			name:   "chunked",
			method: http.MethodGet,
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, "part1,")
				_ = http.NewResponseController(w).Flush()
				_, _ = io.WriteString(w, "part2")
			},
			status: 200, body: "part1,part2", reusable: true,
		},
		{
			name:   "large body",
			method: http.MethodGet,
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, strings.Repeat("x", 1<<20))
			},
			status: 200, body: strings.Repeat("x", 1<<20), reusable: true,
		},
		{
			name:   "HEAD",
			method: http.MethodHead,
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Length", "1234")
			},
			status: 200, body: "", header: map[string]string{"Content-Length": "1234"}, reusable: true,
		},
		{
			name:   "no content",
			method: http.MethodGet,
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			},
			status: 204, reusable: true,
		},
		{
			name:   "not modified",
			method: http.MethodGet,
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("ETag", `"v1"`)
				w.WriteHeader(http.StatusNotModified)
			},
			status: 304, header: map[string]string{"Etag": `"v1"`}, reusable: true,
		},
		{
			name:   "early hints then final response",
			method: http.MethodGet,
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Link", "</style.css>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
				_, _ = io.WriteString(w, "final")
			},
			status: 200, body: "final", reusable: true,
		},
		{
			name:   "backend closes the connection",
			method: http.MethodGet,
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Connection", "close")
				_, _ = io.WriteString(w, "bye")
			},
			status: 200, body: "bye", reusable: false,
		},
		{
			name:   "POST with a body (standard transport)",
			method: http.MethodPost,
			handler: func(w http.ResponseWriter, req *http.Request) {
				b, _ := io.ReadAll(req.Body)
				_, _ = w.Write(b)
			},
			status: 200, body: "payload", reusable: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, front, _ := newTestRouter(t)
			_, b, conns := countingBackend(t, tt.handler)
			mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{b}})
			const requests = 3
			for i := range requests {
				var body io.Reader
				if tt.method == http.MethodPost {
					body = strings.NewReader("payload")
				}
				resp, got := do(t, front, tt.method, "/", body)
				if resp.StatusCode != tt.status || got != tt.body {
					t.Fatalf("request %d: %d %.40q, want %d %.40q", i, resp.StatusCode, got, tt.status, tt.body)
				}
				for k, v := range tt.header {
					if resp.Header.Get(k) != v {
						t.Errorf("request %d: header %s = %q, want %q", i, k, resp.Header.Get(k), v)
					}
				}
			}
			want := int32(requests)
			if tt.reusable {
				want = 1
			}
			if n := conns.Load(); n != want {
				t.Errorf("router opened %d backend connections for %d sequential requests, want %d", n, requests, want)
			}
			if n := b.InFlight(); n != 0 {
				t.Errorf("InFlight = %d after the responses, want 0", n)
			}
		})
	}
}

// TestTransportStaleConnection: a pooled connection that the backend closed
// while idle is replaced transparently; the client never sees an error.
func TestTransportStaleConnection(t *testing.T) {
	r, front, _ := newTestRouter(t)
	srv, b, conns := countingBackend(t, textHandler("ok"))
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{b}})
	for i := range 3 {
		if resp, body := do(t, front, http.MethodGet, "/", nil); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		srv.CloseClientConnections() // the backend drops its idle keep-alive connections
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("backend connections = %d, want 3 (one per request after each close)", n)
	}
}

// TestTransportClientGoesAway: when the client disconnects while the backend
// is still working, the router closes its backend connection (the app sees
// its request canceled) and the request stops counting as in flight.
func TestTransportClientGoesAway(t *testing.T) {
	tests := []struct {
		name      string
		streaming bool // the response head reaches the client first
		// handler reports that it started, blocks until its request is
		// canceled, then reports that.
		handler func(started, canceled chan<- struct{}) http.HandlerFunc
	}{
		{"before the response head", false, func(started, canceled chan<- struct{}) http.HandlerFunc {
			return func(_ http.ResponseWriter, req *http.Request) {
				close(started)
				<-req.Context().Done()
				close(canceled)
			}
		}},
		{"while streaming the body", true, func(started, canceled chan<- struct{}) http.HandlerFunc {
			return func(w http.ResponseWriter, req *http.Request) {
				close(started)
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, "data: first\n\n")
				_ = http.NewResponseController(w).Flush()
				<-req.Context().Done()
				close(canceled)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, front, _ := newTestRouter(t)
			started, canceled := make(chan struct{}), make(chan struct{})
			_, b := newBackendServer(t, tt.handler(started, canceled))
			mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{b}})

			conn, err := net.Dial("tcp", front.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: app.localhost\r\n\r\n")
			<-started // the request reached the app
			if tt.streaming {
				line, err := bufio.NewReader(conn).ReadString('\n')
				if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
					t.Fatalf("status line = %q, %v", line, err)
				}
			}
			_ = conn.Close()
			select {
			case <-canceled:
			case <-time.After(5 * time.Second):
				t.Fatal("the backend's request was not canceled after the client went away")
			}
			waitFor(t, "InFlight 0", func() bool { return b.InFlight() == 0 })
		})
	}
}

// TestTransportResponseHeaderTimeout: a backend slower than
// ResponseHeaderTimeout gets a 504 page, not a hung client.
func TestTransportResponseHeaderTimeout(t *testing.T) {
	r := New(Options{Logger: slog.New(slog.DiscardHandler), ResponseHeaderTimeout: 100 * time.Millisecond})
	front := httptest.NewServer(r)
	t.Cleanup(func() { front.Close(); r.CloseIdleConnections() })
	release := make(chan struct{})
	_, b := newBackendServer(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}))
	defer close(release)
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{b}})
	resp, body := do(t, front, http.MethodGet, "/", nil)
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(body, "504 gateway timeout") {
		t.Errorf("got %d %q, want 504 page", resp.StatusCode, body)
	}
}

// TestTransportBodyClosedEarly: a client that stops reading a large response
// does not leave a half-read connection in the pool.
func TestTransportBodyClosedEarly(t *testing.T) {
	r, front, _ := newTestRouter(t)
	big := strings.Repeat("y", 4<<20)
	_, b, conns := countingBackend(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/big" {
			_, _ = io.WriteString(w, big)
			return
		}
		_, _ = io.WriteString(w, "small")
	}))
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{b}})

	conn, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(conn, "GET /big HTTP/1.1\r\nHost: app.localhost\r\n\r\n")
	if _, err := io.ReadFull(conn, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
	waitFor(t, "InFlight 0", func() bool { return b.InFlight() == 0 })

	for i := range 3 {
		if resp, body := do(t, front, http.MethodGet, "/small", nil); resp.StatusCode != 200 || body != "small" {
			t.Fatalf("request %d after the aborted one: %d %.40q", i, resp.StatusCode, body)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("backend connections = %d, want 2 (the aborted one is not reused)", n)
	}
}

// TestTransportIdleTimeout: idle backend connections are closed after
// IdleConnTimeout even with no further traffic, so connections to the
// containers of old releases do not stay open.
func TestTransportIdleTimeout(t *testing.T) {
	r := New(Options{Logger: slog.New(slog.DiscardHandler), IdleConnTimeout: 50 * time.Millisecond})
	front := httptest.NewServer(r)
	t.Cleanup(func() { front.Close(); r.CloseIdleConnections() })
	var closed atomic.Int32
	srv := httptest.NewUnstartedServer(textHandler("ok"))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{NewBackend(srv.Listener.Addr().String())}})
	if resp, body := do(t, front, http.MethodGet, "/", nil); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	waitFor(t, "the idle backend connection to be closed", func() bool { return closed.Load() == 1 })
}
