package router

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/plat-paas/plat/internal/httpx"
)

// tlsFront is a router behind plat's two listeners: plain HTTP (challenges
// and redirects) and HTTPS (certificates on demand).
type tlsFront struct {
	router    *Router
	tls       *TLS
	httpAddr  string
	httpsAddr string
}

// startTLSFront serves r on two loopback listeners. ACME settings come
// from opts; the local CA is created in a temp dir.
func startTLSFront(t *testing.T, r *Router, opts TLSOptions) *tlsFront {
	t.Helper()
	return startTLSFrontOn(t, r, opts, "127.0.0.1:0")
}

// startTLSFrontOn is startTLSFront with the HTTP listener on httpAddr.
func startTLSFrontOn(t *testing.T, r *Router, opts TLSOptions, httpAddr string) *tlsFront {
	t.Helper()
	httpLn, err := net.Listen("tcp", httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	httpsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.LocalCA == nil {
		ca, err := LoadOrCreateLocalCA(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		opts.LocalCA = ca
	}
	opts.StorageDir = t.TempDir()
	opts.HTTPAddr = httpLn.Addr().String()
	_, opts.HTTPSPort, _ = net.SplitHostPort(httpsLn.Addr().String())
	opts.Allow = func(_ context.Context, host string) error {
		if r.Serves(host) {
			return nil
		}
		return ErrNoCertificate
	}
	tm, err := NewTLS(opts)
	if err != nil {
		t.Fatal(err)
	}
	httpSrv := &http.Server{Handler: tm.HTTPHandler(r, r.Serves), ReadHeaderTimeout: 10 * time.Second}
	// HTTPS as the daemon serves it: the fast front end over a TLS
	// listener (net/http alone with PLAT_ROUTER_FRONT=nethttp).
	httpsSrv := &http.Server{Handler: WithHandedOverTLS(r), ReadHeaderTimeout: 10 * time.Second, ConnContext: httpx.ConnContext}
	var tlsLn net.Listener = tls.NewListener(httpsLn, tm.TLSConfig())
	var fl *FastListener
	if os.Getenv("PLAT_ROUTER_FRONT") != "nethttp" {
		fl = r.FastListener(tlsLn, FastOptions{})
		tlsLn = fl
	}
	go func() { _ = httpSrv.Serve(httpLn) }()
	go func() { _ = httpsSrv.Serve(tlsLn) }()
	t.Cleanup(func() {
		_ = httpSrv.Close()
		_ = httpsSrv.Close()
		if fl != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = fl.Shutdown(ctx)
			cancel()
		}
		tm.Stop()
		r.CloseIdleConnections()
	})
	return &tlsFront{router: r, tls: tm, httpAddr: opts.HTTPAddr, httpsAddr: httpsLn.Addr().String()}
}

// client returns an HTTPS client that trusts roots and dials the front's
// HTTPS listener whatever the URL's host, so URLs can name app hosts.
func (f *tlsFront) client(roots *x509.CertPool, h2 bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: h2,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, f.httpsAddr)
		},
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// handshake connects to the HTTPS listener with SNI host and verifies the
// chain against roots.
func (f *tlsFront) handshake(host string, roots *x509.CertPool) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 60 * time.Second}, "tcp", f.httpsAddr,
		&tls.Config{ServerName: host, RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func localFront(t *testing.T, h http.Handler) (*tlsFront, *x509.CertPool) {
	t.Helper()
	r, _, _ := newTestRouter(t)
	_, b := newBackendServer(t, h)
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{b}})
	ca, err := LoadOrCreateLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root())
	return startTLSFront(t, r, TLSOptions{LocalCA: ca}), roots
}

func TestIsLocalName(t *testing.T) {
	for _, tc := range []struct {
		host  string
		local bool
	}{
		{"localhost", true},
		{"myapp.localhost", true},
		{"MyApp.LOCALHOST.", true},
		{"app.test", true},
		{"db.internal", true},
		{"printer.local", true},
		{"127.0.0.1", true},
		{"intranet", true},
		{"myapp.example.com", false},
		{"www.plat.dev", false},
	} {
		if got := IsLocalName(tc.host); got != tc.local {
			t.Errorf("IsLocalName(%q) = %v, want %v", tc.host, got, tc.local)
		}
	}
}

func TestLocalCAPersistsAndSigns(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateLocalCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreateLocalCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(again.RootPEM()) != string(ca.RootPEM()) {
		t.Fatal("a second load created a new root instead of reusing the saved one")
	}
	if !ca.Root().IsCA {
		t.Fatal("root is not a CA certificate")
	}
}

func TestLocalCAServesAppHostOnly(t *testing.T) {
	f, roots := localFront(t, textHandler("hello over tls"))
	cert, err := f.handshake("app.localhost", roots)
	if err != nil {
		t.Fatalf("handshake for app.localhost: %v", err)
	}
	if cert.DNSNames[0] != "app.localhost" {
		t.Errorf("certificate names %v, want app.localhost", cert.DNSNames)
	}
	if _, err := f.handshake("nobody.localhost", roots); err == nil {
		t.Error("handshake for a host of no app succeeded; want no certificate")
	}

	resp, err := f.client(roots, true).Get("https://app.localhost/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "hello over tls" {
		t.Errorf("GET https://app.localhost/ = %d %q", resp.StatusCode, body)
	}
	if resp.Proto != "HTTP/2.0" {
		t.Errorf("protocol %s, want HTTP/2.0 negotiated over TLS", resp.Proto)
	}
}

func TestForwardedProtoHTTPS(t *testing.T) {
	f, roots := localFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s|%s", r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-For"))
	}))
	resp, err := f.client(roots, true).Get("https://app.localhost/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "https|app.localhost|127.0.0.1" {
		t.Errorf("backend saw X-Forwarded-Proto|Host|For = %q, want https|app.localhost|127.0.0.1", body)
	}
}

func TestRedirectToHTTPS(t *testing.T) {
	f, _ := localFront(t, textHandler("app"))
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	_, port, _ := net.SplitHostPort(f.httpsAddr)
	for _, tc := range []struct {
		name, method, host, path string
		status                   int
		location                 string
	}{
		{"app host", http.MethodPost, "app.localhost", "/a/b?c=d", http.StatusPermanentRedirect, "https://app.localhost:" + port + "/a/b?c=d"},
		{"unknown host is not redirected nor forwarded", http.MethodGet, "evil.example.com", "/", http.StatusNotFound, ""},
		{"ACME challenge path is not redirected", http.MethodGet, "app.localhost", "/.well-known/acme-challenge/tok", http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://"+f.httpAddr+tc.path, strings.NewReader("x"))
			req.Host = tc.host
			resp, err := noFollow.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.location {
				t.Errorf("status %d Location %q, want %d %q", resp.StatusCode, resp.Header.Get("Location"), tc.status, tc.location)
			}
		})
	}
}

func TestWebsocketOverTLS(t *testing.T) {
	upgrader := websocket.Upgrader{}
	f, roots := localFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	}))
	dialer := websocket.Dialer{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		NetDialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, f.httpsAddr)
		},
		HandshakeTimeout: 30 * time.Second,
	}
	c, resp, err := dialer.Dial("wss://app.localhost/ws", nil)
	if err != nil {
		t.Fatalf("websocket dial: %v (response %v)", err, resp)
	}
	defer c.Close()
	for _, msg := range []string{"one", "two"} {
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, got, err := c.ReadMessage()
		if err != nil || string(got) != "echo: "+msg {
			t.Fatalf("read %q, %v; want %q", got, err, "echo: "+msg)
		}
	}
}

func TestSSEStreamsOverTLS(t *testing.T) {
	release := make(chan struct{})
	var finished atomic.Bool
	f, roots := localFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		_ = http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		finished.Store(true)
		fmt.Fprint(w, "data: last\n\n")
	}))
	for _, h2 := range []bool{true, false} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) {
			resp, err := f.client(roots, h2).Get("https://app.localhost/events")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			line, err := br.ReadString('\n')
			if err != nil || line != "data: first\n" {
				t.Fatalf("first line %q, %v", line, err)
			}
			if finished.Load() {
				t.Fatal("the first event arrived only after the response ended")
			}
			release <- struct{}{}
			rest, _ := io.ReadAll(br)
			if !strings.Contains(string(rest), "data: last") {
				t.Errorf("rest of stream %q", rest)
			}
			finished.Store(false)
		})
	}
}

func TestNoCertificateWithoutSNI(t *testing.T) {
	f, roots := localFront(t, textHandler("x"))
	conn, err := tls.Dial("tcp", f.httpsAddr, &tls.Config{RootCAs: roots, InsecureSkipVerify: true}) //nolint:gosec // testing the server refuses
	if err == nil {
		conn.Close()
		t.Fatal("handshake without SNI succeeded")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
}
