package router

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/plat-paas/plat/internal/httpx"
)

// rawRequest sends raw bytes to addr and returns the connection, for
// clients that misbehave the way no http.Client can.
func rawRequest(t *testing.T, addr, raw string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return c
}

// readAnswer reads the response on c within a few seconds.
func readAnswer(t *testing.T, c net.Conn) (*http.Response, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// readingBackend reads each request's body whole before it answers.
func readingBackend(t *testing.T) *Backend {
	_, b := newBackendServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return
		}
		fmt.Fprintf(w, "read %d", n)
	}))
	return b
}

// TestClientBodyFaults: a request body that stalls gets 408, a malformed
// chunked body 400, a client that hangs up mid-body nothing; each is
// logged as a client error below ERROR, never blamed on the app, and the
// request leaves the in-flight count. On main a malformed chunked body got
// a 502 and an ERROR "backend did not answer", and a stalled body stayed in
// flight for good.
func TestClientBodyFaults(t *testing.T) {
	const idle = 300 * time.Millisecond
	tests := []struct {
		name        string
		raw         string
		hangUp      bool
		earlyAnswer bool // the app answers without reading the body
		wantStatus  int
		wantLog     string
	}{
		{
			name:       "stalled after 3 of 1 MB",
			raw:        "POST /upload HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 1048576\r\n\r\nabc",
			wantStatus: http.StatusRequestTimeout,
			wantLog:    "level=INFO msg=\"router: client error: the client stopped sending the request body\"",
		},
		{
			name:       "malformed chunk size",
			raw:        "POST /upload HTTP/1.1\r\nHost: app.localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\nxx\r\n0\r\n\r\n",
			wantStatus: http.StatusBadRequest,
			wantLog:    "level=INFO msg=\"router: client error: malformed request body\"",
		},
		{
			name:       "chunk without its CRLF",
			raw:        "POST /upload HTTP/1.1\r\nHost: app.localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n",
			wantStatus: http.StatusBadRequest,
			wantLog:    "level=INFO msg=\"router: client error: malformed request body\"",
		},
		{
			name:        "stalled, and the app answered without reading",
			raw:         "POST /upload HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 1048576\r\n\r\nabc",
			earlyAnswer: true,
			wantStatus:  http.StatusOK,
		},
		{
			name:    "client hangs up mid-body",
			raw:     "POST /upload HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 1048576\r\n\r\nabc",
			hangUp:  true,
			wantLog: "level=DEBUG msg=\"router: client error: the client closed the connection before the request body ended\"",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logBuffer{}
			r := New(Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			front := httptest.NewUnstartedServer(nil)
			front.Config = httpx.NewServer(r, httpx.Limits{BodyIdleTimeout: idle}, nil)
			front.Start()
			t.Cleanup(func() { front.Close(); r.CloseIdleConnections() })
			b := readingBackend(t)
			if tc.earlyAnswer {
				_, b = newBackendServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodPost && r.URL.Path == "/upload" {
						_, _ = io.WriteString(w, "not reading that")
						return
					}
					n, _ := io.Copy(io.Discard, r.Body)
					fmt.Fprintf(w, "read %d", n)
				}))
			}
			mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{b}})

			c := rawRequest(t, front.Listener.Addr().String(), tc.raw)
			if tc.hangUp {
				waitFor(t, "the request to reach the router", func() bool { return b.Requests() == 1 })
				_ = c.Close()
			} else {
				resp, body := readAnswer(t, c)
				if resp.StatusCode != tc.wantStatus {
					t.Errorf("status %d %q, want %d", resp.StatusCode, body, tc.wantStatus)
				}
			}
			waitFor(t, "the request to leave the in-flight count", func() bool {
				return b.InFlight() == 0 && b.Receiving() == 0
			})
			if tc.wantLog != "" {
				waitFor(t, "the log line", func() bool { return strings.Contains(logs.String(), tc.wantLog) })
			}
			if log := logs.String(); strings.Contains(log, "level=ERROR") || strings.Contains(log, "level=WARN") {
				t.Errorf("a client's fault logged as the app's:\n%s", log)
			}
			// The app still serves well-formed requests.
			if code, body := send(t, front, http.MethodPost, "hello"); code != 200 || body != "read 5" {
				t.Errorf("next request: %d %q", code, body)
			}
		})
	}
}

// TestReceivingIsNotLoad: requests whose body is still coming from the
// client count in flight on their backend (a drain waits for them) but not
// as the app's load in Stats, which the autoscaler and idle timer read: 8
// clients that send 3 bytes of a 1 MB body and stall show as 0 in flight.
// A request counts as load once its body has arrived. On main Stats showed
// 8 in flight, which scaled an app up and kept it awake.
func TestReceivingIsNotLoad(t *testing.T) {
	const stalled = 8
	r, front, _ := newTestRouter(t)
	release := make(chan struct{})
	_, b := newBackendServer(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		<-release // the app works on the request
	}))
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{b}})
	addr := front.Listener.Addr().String()

	conns := make([]net.Conn, stalled)
	for i := range conns {
		conns[i] = rawRequest(t, addr, "POST / HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 1048576\r\n\r\nabc")
	}
	waitFor(t, "all requests to reach the backend", func() bool { return b.Requests() == stalled })
	st, _ := r.Stats("app")
	if st.InFlight != 0 || st.Receiving != stalled {
		t.Errorf("stalled uploads: Stats in flight %d, receiving %d; want 0 and %d", st.InFlight, st.Receiving, stalled)
	}
	if b.InFlight() != stalled {
		t.Errorf("backend in flight %d, want %d (drains wait for them)", b.InFlight(), stalled)
	}

	// One client sends the rest of its body: from then on the app works
	// on it, and it is load.
	if _, err := conns[0].Write(make([]byte, 1048576-3)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the complete request to count as load", func() bool {
		st, _ := r.Stats("app")
		return st.InFlight == 1 && st.Receiving == stalled-1
	})
	// A chunked body counts as load once its last chunk arrived.
	chunked := rawRequest(t, addr, "POST / HTTP/1.1\r\nHost: app.localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
	waitFor(t, "the chunked request to arrive", func() bool { return b.Requests() == stalled+1 })
	if st, _ := r.Stats("app"); st.InFlight != 1 {
		t.Errorf("chunked body still arriving counts as load: %+v", st)
	}
	_, _ = io.WriteString(chunked, "0\r\n\r\n")
	waitFor(t, "the complete chunked request to count as load", func() bool {
		st, _ := r.Stats("app")
		return st.InFlight == 2
	})

	close(release)
	for _, c := range conns {
		_ = c.Close()
	}
	waitFor(t, "every request to end", func() bool { return b.InFlight() == 0 && b.Receiving() == 0 })
}
