package router

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plat-paas/plat/internal/httpx"
)

// fastFront serves r with the fast front end and net/http behind it, as
// the daemon does, and returns the listener and its address.
func fastFront(t *testing.T, r *Router) (*FastListener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := r.FastListener(ln, FastOptions{})
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(fl) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = fl.Shutdown(ctx)
		r.CloseIdleConnections()
	})
	return fl, ln.Addr().String()
}

// rawExchange writes req on c and reads one response.
func rawExchange(t *testing.T, c net.Conn, br *bufio.Reader, req string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response to %q: %v", req, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(body)
}

// TestFastPathServesAndHandsOver: a plain GET is answered by the fast
// path with what the net/http path would send the app (forwarded fields,
// request id, no router cookie, no hop-by-hop field); a POST on
// the same connection with a small body too; a large one goes to
// net/http, which serves the connection from then on.
func TestFastPathServesAndHandsOver(t *testing.T) {
	r := New(Options{Logger: slog.New(slog.DiscardHandler)})
	seen := make(chan *http.Request, 4)
	_, b := newBackendServer(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(strings.NewReader(string(body)))
		seen <- req
		w.Header().Set("X-App", "yes")
		_, _ = io.WriteString(w, req.Method+" "+string(body))
	}))
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Release: "v1", Backends: []*Backend{b},
		Canary: nil, Flags: []Flag{{Name: "beta", Percent: 100}}})
	fl, addr := fastFront(t, r)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)

	resp, body := rawExchange(t, c, br, "GET /a?b=c HTTP/1.1\r\nHost: App.localhost\r\nCookie: plat_uid=abc123; theme=dark\r\n"+
		"X-Forwarded-For: 6.6.6.6\r\nKeep-Alive: timeout=5\r\nPlat-Flags: admin\r\n\r\n")
	if resp.StatusCode != 200 || body != "GET " || resp.Header.Get("X-App") != "yes" || resp.Header.Get("Date") == "" {
		t.Fatalf("GET: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	req := <-seen
	for name, want := range map[string]string{
		"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "App.localhost", "X-Forwarded-Proto": "http",
		"Cookie": "theme=dark", "Plat-Flags": "beta", "Keep-Alive": "",
	} {
		if got := strings.Join(req.Header[name], ","); got != want {
			t.Errorf("app got %s %q, want %q", name, got, want)
		}
	}
	if len(req.Header.Get("X-Request-Id")) != 16 || req.URL.RequestURI() != "/a?b=c" || req.Host != "App.localhost" {
		t.Errorf("app got id %q, target %q, host %q", req.Header.Get("X-Request-Id"), req.URL.RequestURI(), req.Host)
	}
	if st := fl.Stats(); st.Served != 1 || st.HandedOver != 0 {
		t.Fatalf("after the GET: %+v, want it served by the fast path", st)
	}

	// A small body that came with its head: the fast path sends it on.
	resp, body = rawExchange(t, c, br, "POST /p HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 5\r\n\r\nhello")
	if resp.StatusCode != 200 || body != "POST hello" {
		t.Fatalf("POST: %d %q", resp.StatusCode, body)
	}
	<-seen
	if st := fl.Stats(); st.Served != 2 || st.HandedOver != 0 {
		t.Fatalf("after the small POST: %+v, want it served by the fast path", st)
	}
	// A larger body is net/http's.
	big := strings.Repeat("w", 8<<10)
	resp, body = rawExchange(t, c, br, "POST /p HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 8192\r\n\r\n"+big)
	if resp.StatusCode != 200 || body != "POST "+big {
		t.Fatalf("large POST: %d %.40q", resp.StatusCode, body)
	}
	<-seen
	resp, body = rawExchange(t, c, br, "GET /again HTTP/1.1\r\nHost: app.localhost\r\n\r\n")
	if resp.StatusCode != 200 || body != "GET " {
		t.Fatalf("GET after the POST: %d %q", resp.StatusCode, body)
	}
	<-seen
	if st := fl.Stats(); st.Served != 2 || st.HandedOver != 1 {
		t.Fatalf("after the large POST: %+v, want the connection handed over once", st)
	}
}

// TestFastPathBodyUntilClose: a response whose body ends when the app
// closes its connection reaches the client whole, chunked, and the
// client's connection serves the next request.
func TestFastPathBodyUntilClose(t *testing.T) {
	r := New(Options{Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = http.ReadRequest(bufio.NewReader(c))
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst part, ")
				time.Sleep(20 * time.Millisecond)
				_, _ = io.WriteString(c, "second part")
			}()
		}
	}()
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{NewBackend(ln.Addr().String())}})
	fl, addr := fastFront(t, r)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := range 2 {
		resp, body := rawExchange(t, c, br, "GET / HTTP/1.1\r\nHost: app.localhost\r\n\r\n")
		if resp.StatusCode != 200 || body != "first part, second part" || len(resp.TransferEncoding) != 1 || resp.Close {
			t.Fatalf("request %d: %d %q encoding %v close %v", i, resp.StatusCode, body, resp.TransferEncoding, resp.Close)
		}
	}
	if st := fl.Stats(); st.Served != 2 {
		t.Fatalf("%+v, want both served by the fast path", st)
	}
}

// TestFastPathShutdown: turning keep-alives off closes idle connections;
// Shutdown lets a request in flight finish (its response says close) and
// then ends.
func TestFastPathShutdown(t *testing.T) {
	r := New(Options{Logger: slog.New(slog.DiscardHandler)})
	release := make(chan struct{})
	var inHandler atomic.Int32
	_, b := newBackendServer(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/slow" {
			inHandler.Add(1)
			<-release
		}
		_, _ = io.WriteString(w, "done")
	}))
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{b}})
	fl, addr := fastFront(t, r)

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	rawExchange(t, idle, bufio.NewReader(idle), "GET / HTTP/1.1\r\nHost: app.localhost\r\n\r\n")

	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	got := make(chan string, 1)
	go func() {
		resp, body := rawExchange(t, busy, bufio.NewReader(busy), "GET /slow HTTP/1.1\r\nHost: app.localhost\r\n\r\n")
		got <- fmt.Sprintf("close=%v %s", resp.Close, body)
	}()
	waitFor(t, "the slow request to reach the app", func() bool { return inHandler.Load() == 1 })

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- fl.Shutdown(ctx)
	}()
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := idle.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("idle connection: read %d, %v; want it closed", n, err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if s := <-got; s != "close=true done" {
		t.Fatalf("the request in flight got %q, want its answer with Connection: close", s)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestFastPathTLS: over TLS the fast path serves HTTP/1.1 (the app sees
// X-Forwarded-Proto https), an HTTP/2 client is handed to net/http, and a
// request handed over after the fast path read from the TLS connection
// still counts as HTTPS.
func TestFastPathTLS(t *testing.T) {
	r := New(Options{Logger: slog.New(slog.DiscardHandler)})
	_, b := newBackendServer(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.WriteString(w, req.Header.Get("X-Forwarded-Proto"))
	}))
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{b}})
	ca, err := LoadOrCreateLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert := localCert(t, ca, "app.localhost")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := r.FastListener(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}), FastOptions{})
	srv := &http.Server{Handler: WithHandedOverTLS(r), ConnContext: httpx.ConnContext}
	go func() { _ = srv.Serve(fl) }()
	t.Cleanup(func() { _ = srv.Close(); _ = fl.Shutdown(context.Background()) })
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root())
	url := "https://app.localhost:" + strings.Split(ln.Addr().String(), ":")[1] + "/"
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, ln.Addr().String())
	}
	for _, tc := range []struct {
		name   string
		h2     bool
		method string
		proto  string
	}{
		{"HTTP/1.1 GET", false, http.MethodGet, "HTTP/1.1"},
		{"HTTP/1.1 POST of 8 KiB (handed over)", false, http.MethodPost, "HTTP/1.1"},
		{"HTTP/2 GET", true, http.MethodGet, "HTTP/2.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{DialContext: dial, TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: tc.h2}
			if !tc.h2 {
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			}
			defer tr.CloseIdleConnections()
			var reqBody io.Reader
			if tc.method == http.MethodPost {
				reqBody = strings.NewReader(strings.Repeat("x", 8<<10))
			}
			req, _ := http.NewRequest(tc.method, url, reqBody)
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "https" || resp.Proto != tc.proto {
				t.Fatalf("%s: %d %q %s; want 200, the app told https, %s", tc.name, resp.StatusCode, body, resp.Proto, tc.proto)
			}
		})
	}
	if st := fl.Stats(); st.Served != 1 || st.HandedOver != 2 {
		t.Errorf("%+v: want the GET served fast, the POST's and the HTTP/2 connection handed over", st)
	}
}

// localCert issues a certificate for host from ca.
func localCert(t *testing.T, ca *LocalCA, host string) tls.Certificate {
	t.Helper()
	certPEM, key, err := issueWithKey(t, ca, host)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestFastPathStalledBody: a small body that stops coming after its head
// goes to net/http after the header timeout, whose body timeout answers
// 408, as if the fast path had not been there.
func TestFastPathStalledBody(t *testing.T) {
	r := New(Options{Logger: slog.New(slog.DiscardHandler)})
	_, b := newBackendServer(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
	}))
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{b}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := r.FastListener(ln, FastOptions{ReadHeaderTimeout: 100 * time.Millisecond})
	srv := httpx.NewServer(r, httpx.Limits{BodyIdleTimeout: 200 * time.Millisecond}, nil)
	go func() { _ = srv.Serve(fl) }()
	t.Cleanup(func() { _ = srv.Close(); _ = fl.Shutdown(context.Background()) })

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	resp, _ := rawExchange(t, c, bufio.NewReader(c), "POST / HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 10\r\n\r\nabc")
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("stalled body: %d, want 408", resp.StatusCode)
	}
	if st := fl.Stats(); st.Served != 0 || st.HandedOver != 1 {
		t.Fatalf("%+v, want the request handed over", st)
	}
	t.Logf("408 after %v", time.Since(start).Round(time.Millisecond))
}

// TestFastPathHandOverAfterClose: a connection accepted before the
// listener closed (a shutdown or upgrade began) whose request the fast
// path hands over is still answered, by FastOptions.Server.
func TestFastPathHandOverAfterClose(t *testing.T) {
	r := New(Options{Logger: slog.New(slog.DiscardHandler)})
	_, b := newBackendServer(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n, _ := io.Copy(io.Discard, req.Body)
		fmt.Fprintf(w, "%s %d", req.Method, n)
	}))
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{b}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r}
	fl := r.FastListener(ln, FastOptions{Server: srv})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(fl) }()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, "the connection to be accepted", func() bool { return fl.Unread() == 1 })
	fl.Close()
	if err := <-served; err == nil {
		t.Fatal("Serve went on after the listener closed")
	}
	big := strings.Repeat("x", 8<<10) // over the fast path's body limit: handed over
	resp, body := rawExchange(t, c, bufio.NewReader(c), "POST / HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 8192\r\n\r\n"+big)
	if resp.StatusCode != 200 || body != "POST 8192" {
		t.Fatalf("request handed over after the close: %d %q", resp.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := fl.Shutdown(ctx); err != nil {
		t.Fatalf("fast Shutdown: %v", err)
	}
}
