package router

import (
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/challtestsrv"
	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// pebbleCA is letsencrypt's pebble ACME server running in the test, with
// challtestsrv as its DNS: every name resolves to 127.0.0.1, so pebble's
// HTTP-01 validation connects to the router's HTTP listener.
type pebbleCA struct {
	dirURL string
	roots  *x509.CertPool // pebble's issuing root: what app certificates chain to
	tlsCA  *x509.CertPool // trusts the ACME server's own HTTPS
	orders atomic.Int64   // new-order requests received
}

// pebbleNewOrderPath is pebble's new-order endpoint (wfe.newOrderPath).
const pebbleNewOrderPath = "/order-plz"

// startPebble starts pebble validating HTTP-01 on httpPort of 127.0.0.1.
func startPebble(t *testing.T, httpPort int) *pebbleCA {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	logger := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		logger = log.New(testWriter{t}, "pebble ", 0)
	}

	dnsAddr := freeLoopbackAddr(t)
	dns, err := challtestsrv.New(challtestsrv.Config{DNSAddrs: []string{dnsAddr}, Log: logger})
	if err != nil {
		t.Fatal(err)
	}
	dns.SetDefaultDNSIPv4("127.0.0.1")
	dns.SetDefaultDNSIPv6("")
	dns.Run()
	t.Cleanup(dns.Shutdown)

	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{
		"default": {Description: "default", ValidityPeriod: 0},
	})
	validator := va.New(logger, httpPort, 0, false, dnsAddr, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 1, 1)

	p := &pebbleCA{roots: x509.NewCertPool(), tlsCA: x509.NewCertPool()}
	p.roots.AddCert(authority.GetRootCert(0).Cert)
	handler := front.Handler()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == pebbleNewOrderPath {
			p.orders.Add(1)
		}
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.tlsCA.AddCert(srv.Certificate())
	p.dirURL = srv.URL + "/dir"
	return p
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestACMEWithPebble obtains real certificates from a real ACME server
// (pebble) with HTTP-01 validated against the router's HTTP listener.
func TestACMEWithPebble(t *testing.T) {
	if testing.Short() {
		t.Skip("ACME round trips in -short mode")
	}
	r, _, _ := newTestRouter(t)
	_, b := newBackendServer(t, textHandler("served by myapp"))
	mustSet(t, r, Route{App: "myapp", Hosts: []string{"myapp.example.com"}, Backends: []*Backend{b}})

	// The router's HTTP port must be known before pebble starts: reserve it.
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpPort := httpLn.Addr().(*net.TCPAddr).Port
	httpLn.Close()
	p := startPebble(t, httpPort)
	f := startTLSFrontOn(t, r, TLSOptions{ACMECA: p.dirURL, ACMEEmail: "ops@example.com", ACMERoots: p.tlsCA}, "127.0.0.1:"+strconv.Itoa(httpPort))

	// A deployed app's host gets a certificate that chains to pebble's root.
	cert, err := f.handshake("myapp.example.com", p.roots)
	if err != nil {
		t.Fatalf("TLS handshake for myapp.example.com: %v", err)
	}
	if cert.Subject.CommonName != "myapp.example.com" && (len(cert.DNSNames) == 0 || cert.DNSNames[0] != "myapp.example.com") {
		t.Errorf("certificate is for %v", cert.DNSNames)
	}
	resp, err := f.client(p.roots, true).Get("https://myapp.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "served by myapp" || resp.Proto != "HTTP/2.0" {
		t.Errorf("GET https://myapp.example.com/ = %d %s %q", resp.StatusCode, resp.Proto, body)
	}
	ordersAfterApp := p.orders.Load()
	if ordersAfterApp != 1 {
		t.Errorf("%d ACME orders for one host, want 1", ordersAfterApp)
	}

	// A host of no app: failed handshake, and pebble sees no order.
	if _, err := f.handshake("stranger.example.com", p.roots); err == nil {
		t.Error("handshake for a host of no app succeeded")
	}
	time.Sleep(200 * time.Millisecond) // an order, if one were started, would be sent by now
	if n := p.orders.Load(); n != ordersAfterApp {
		t.Errorf("a host of no app caused %d ACME order(s)", n-ordersAfterApp)
	}

	// A custom domain added to the app's route gets its own certificate.
	route, _ := r.Lookup("myapp.example.com")
	mustSet(t, r, Route{App: "myapp", Hosts: append(route.Hosts, "www.custom-domain.org"), Backends: route.Backends})
	if _, err := f.handshake("www.custom-domain.org", p.roots); err != nil {
		t.Fatalf("TLS handshake for the custom domain: %v", err)
	}
	if n := p.orders.Load(); n != ordersAfterApp+1 {
		t.Errorf("%d orders after the custom domain, want %d", n, ordersAfterApp+1)
	}
}
