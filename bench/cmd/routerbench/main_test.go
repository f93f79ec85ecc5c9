package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plat-paas/plat/router"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		in      string
		want    []router.Flag
		wantErr string
	}{
		{in: "", want: nil},
		{in: "new-ui:50", want: []router.Flag{{Name: "new-ui", Percent: 50}}},
		{in: "a:0,b:100", want: []router.Flag{{Name: "a", Percent: 0}, {Name: "b", Percent: 100}}},
		{in: "new-ui", wantErr: "give name:percent"},
		{in: "new-ui:half", wantErr: "give name:percent"},
		{in: "new-ui:150", wantErr: "not a percentage"},
		{in: "New UI:50", wantErr: "not valid"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseFlags(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseFlags(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFlags(%q): %v", tt.in, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("parseFlags(%q) = %v, want %v", tt.in, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("parseFlags(%q) = %v, want %v", tt.in, got, tt.want)
				}
			}
		})
	}
}

// TestServeTLS serves the router as the benchmark does, over TLS on a real
// socket: HTTP/2 and HTTP/1.1 by ALPN as in the daemon, TLS 1.3 with the
// certificate from the files, sessions resumed unless -no-resume, and the
// features of plat-features on (the split's and the flags' cookies, the
// flag header; request lines are read, not checked).
func TestServeTLS(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "flags="+r.Header.Get(router.FlagsHeader))
	}))
	defer backend.Close()
	canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "flags="+r.Header.Get(router.FlagsHeader))
	}))
	defer canary.Close()
	certFile, keyFile := writeCert(t)

	for _, noResume := range []bool{false, true} {
		name := "tickets"
		if noResume {
			name = "no-resume"
		}
		t.Run(name, func(t *testing.T) {
			c := config{
				host: "hello.localhost", backend: backend.Listener.Addr().String(),
				canary: canary.Listener.Addr().String(), canaryWeight: 10, reqLog: true, flags: "new-ui:100",
			}
			addr := startServer(t, c, certFile, keyFile, noResume)

			// HTTP/2, as h2load speaks it.
			h2 := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
			defer h2.CloseIdleConnections()
			resp := get(t, h2, addr)
			if resp.ProtoMajor != 2 || resp.TLS.Version != tls.VersionTLS13 {
				t.Fatalf("got %s over TLS %x, want HTTP/2 over TLS 1.3", resp.Proto, resp.TLS.Version)
			}
			if body := readAll(t, resp); body != "flags=new-ui" {
				t.Fatalf("body %q: the backend did not get the flag", body)
			}
			var cookies []string
			for _, ck := range resp.Cookies() {
				cookies = append(cookies, ck.Name)
			}
			if got := strings.Join(cookies, ","); got != router.BucketCookie+","+router.UIDCookie {
				t.Fatalf("cookies %q, want the split's bucket and the flags' user id", got)
			}

			// HTTP/1.1 with a new connection per request, as wrk's
			// handshake modes: the second one resumes only with tickets.
			cache := tls.NewLRUClientSessionCache(4)
			var resumed []bool
			for range 2 {
				h1 := &http.Transport{
					TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ClientSessionCache: cache},
					TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{},
				}
				resp := get(t, h1, addr)
				readAll(t, resp)
				if resp.ProtoMajor != 1 {
					t.Fatalf("got %s, want HTTP/1.1", resp.Proto)
				}
				resumed = append(resumed, resp.TLS.DidResume)
				h1.CloseIdleConnections()
			}
			if want := !noResume; resumed[0] || resumed[1] != want {
				t.Fatalf("resumed %v, want [false %v]", resumed, want)
			}
		})
	}
}

// startServer serves c's route on a loopback TLS listener until the test ends.
func startServer(t *testing.T, c config, certFile, keyFile string, noResume bool) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rt := router.New(router.Options{Logger: logger})
	route, err := c.route()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Set(route); err != nil {
		t.Fatal(err)
	}
	go readRequestLog(ctx, rt, logger)
	cfg, err := tlsConfig(certFile, keyFile, noResume)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, tls.NewListener(ln, cfg), rt, logger) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func get(t *testing.T, rt http.RoundTripper, addr string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "hello.localhost"
	resp, err := (&http.Client{Transport: rt, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return resp
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeCert writes a self-signed ECDSA P-256 certificate and its key, like
// bench/router.sh's openssl command, and returns the two file names.
func writeCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "hello.localhost"},
		DNSNames:     []string{"hello.localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
