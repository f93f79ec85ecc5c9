package router

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// hugeHeaderBackend is a real TCP backend that answers every request with a
// response head of total bytes (streamed, never held in memory), shaped by
// kind: "line" is one endless header line, "lines" is many 1 KiB header
// lines, "1xx" is a 103 Early Hints with the endless line. It reports how
// many bytes it managed to write before the router hung up.
func hugeHeaderBackend(t *testing.T, kind string, total int64) (*Backend, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	var written atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				status := "HTTP/1.1 200 OK\r\n"
				if kind == "1xx" {
					status = "HTTP/1.1 103 Early Hints\r\n"
				}
				chunk := bytes.Repeat([]byte("a"), 64<<10)
				if kind == "lines" {
					line := "X-Filler: " + strings.Repeat("b", 1000) + "\r\n"
					chunk = bytes.Repeat([]byte(line), 64)
					status += "X-Start: 1\r\n"
				} else {
					status += "X-Big: "
				}
				n, err := io.WriteString(c, status)
				written.Add(int64(n))
				for sent := int64(0); err == nil && sent < total; sent += int64(len(chunk)) {
					n, err = c.Write(chunk)
					written.Add(int64(n))
				}
				_, _ = io.WriteString(c, "\r\n\r\nContent-Length: 0\r\n\r\n")
			}()
		}
	}()
	return NewBackend(ln.Addr().String()), &written
}

// TestHugeResponseHeaderIs502: an app that sends an endless response header
// gets its client a 502 on every path of the router (lean GET/HEAD path,
// net/http path for requests with bodies, a 1xx head before the final one),
// with one log line naming the app; the router reads only about the limit,
// so its memory does not grow with the header; and other apps keep working.
// On main the lean path read the whole 100 MiB header into memory.
func TestHugeResponseHeaderIs502(t *testing.T) {
	const headerSize = 100 << 20
	tests := []struct {
		name, kind, method, body string
	}{
		{"GET one endless line", "line", http.MethodGet, ""},
		{"HEAD one endless line", "line", http.MethodHead, ""},
		{"GET many lines", "lines", http.MethodGet, ""},
		{"GET huge 103 head", "1xx", http.MethodGet, ""},
		{"POST with body (net/http path)", "line", http.MethodPost, "payload"},
		{"POST many lines (net/http path)", "lines", http.MethodPost, "payload"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, front, logs := newTestRouter(t)
			huge, written := hugeHeaderBackend(t, tc.kind, headerSize)
			mustSet(t, r, Route{App: "hostile", Hosts: []string{"hostile.localhost"}, Backends: []*Backend{huge}})
			_, good := newBackendServer(t, textHandler("fine"))
			mustSet(t, r, Route{App: "good", Hosts: []string{"good.localhost"}, Backends: []*Backend{good}})

			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(tc.method, front.URL+"/", body)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "hostile.localhost"

			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			resp, err := front.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			runtime.ReadMemStats(&after)

			if resp.StatusCode != http.StatusBadGateway {
				t.Fatalf("status %d, want 502; body %q", resp.StatusCode, msg)
			}
			if tc.method != http.MethodHead && !strings.Contains(string(msg), "too large") {
				t.Errorf("page %q does not say the headers were too large", msg)
			}
			// Everything the process allocated during the request, garbage
			// included: far below the header the app sent.
			const maxAlloc = 16 << 20
			if grew := after.TotalAlloc - before.TotalAlloc; grew > maxAlloc {
				t.Errorf("allocated %d MiB while refusing a %d MiB header; want under %d MiB",
					grew>>20, headerSize>>20, maxAlloc>>20)
			} else {
				t.Logf("allocated %.1f MiB while refusing a %d MiB header", float64(grew)/(1<<20), headerSize>>20)
			}
			waitFor(t, "the backend to see the router hang up", func() bool {
				n := written.Load()
				return n > 0 && n < headerSize/4
			})
			log := logs.String()
			if !strings.Contains(log, "response headers over the limit") || !strings.Contains(log, "app=hostile") ||
				!strings.Contains(log, "backend="+huge.Addr()) {
				t.Errorf("log does not name the app and backend with the header limit:\n%s", log)
			}
			if n := strings.Count(log, "level=ERROR"); n != 1 {
				t.Errorf("%d ERROR lines, want 1:\n%s", n, log)
			}
			if resp, body := get(t, front, "good.localhost", "/", nil); resp.StatusCode != 200 || body != "fine" {
				t.Errorf("other app after the refused header: %d %q", resp.StatusCode, body)
			}
			assertNothingInFlight(t, huge, good)
		})
	}
}

// TestResponseHeaderLimitOption: a head just under the configured limit
// passes, one just over it is refused, on both transport paths.
func TestResponseHeaderLimitOption(t *testing.T) {
	const limit = 8 << 10
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		for _, size := range []int{limit / 2, limit * 2} {
			t.Run(fmt.Sprintf("%s %d", method, size), func(t *testing.T) {
				r := New(Options{MaxResponseHeaderBytes: limit, Logger: slog.New(slog.DiscardHandler)})
				_, b := newBackendServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("X-Pad", strings.Repeat("p", size))
					_, _ = io.WriteString(w, "ok")
				}))
				mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{b}})
				front := newFront(t, r)
				var body io.Reader
				if method == http.MethodPost {
					body = strings.NewReader("x")
				}
				resp, _ := do(t, front, method, "/", body)
				want := http.StatusOK
				if size > limit {
					want = http.StatusBadGateway
				}
				if resp.StatusCode != want {
					t.Errorf("header of %d bytes with limit %d: status %d, want %d", size, limit, resp.StatusCode, want)
				}
			})
		}
	}
}

// newFront serves r on a test HTTP server.
func newFront(t *testing.T, r *Router) *httptest.Server {
	t.Helper()
	front := httptest.NewServer(r)
	t.Cleanup(func() {
		front.Close()
		r.CloseIdleConnections()
	})
	return front
}

// TestInvalidStatusIs502: a backend answering status 000 (which
// http.ReadResponse accepts) gets its client a 502 on both transport
// paths. On main the net/http path made ReverseProxy panic on
// WriteHeader(0): the client saw its connection dropped.
func TestInvalidStatusIs502(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(c, "HTTP/1.1 000 Zero\r\nContent-Length: 0\r\n\r\n")
			}()
		}
	}()
	r := New(Options{Logger: slog.New(slog.DiscardHandler)})
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{NewBackend(ln.Addr().String())}})
	front := newFront(t, r)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader("x")
		}
		req, _ := http.NewRequest(method, front.URL+"/", body)
		req.Host = "app.localhost"
		resp, err := front.Client().Do(req)
		if err != nil {
			t.Errorf("%s: %v; want a 502", method, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("%s: status %d, want 502", method, resp.StatusCode)
		}
	}
}
