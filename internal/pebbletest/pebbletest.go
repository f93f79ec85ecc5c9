// Package pebbletest runs letsencrypt's pebble ACME server inside a Go
// test, with challtestsrv as its DNS: every name resolves to 127.0.0.1, so
// pebble's HTTP-01 validation connects to the HTTP listener under test.
package pebbletest

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"

	"github.com/letsencrypt/challtestsrv"
	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// newOrderPath is pebble's new-order endpoint (wfe.newOrderPath).
const newOrderPath = "/order-plz"

// CA is a running pebble.
type CA struct {
	// DirURL is the ACME directory.
	DirURL string
	// Roots holds pebble's issuing root: what certificates it issues chain to.
	Roots *x509.CertPool
	// ServerPEM is the certificate of the ACME server's own HTTPS, to trust
	// when talking to DirURL.
	ServerPEM []byte
	orders    atomic.Int64
}

// Orders returns how many new-order requests pebble received.
func (p *CA) Orders() int64 { return p.orders.Load() }

// ServerRoots returns a pool trusting the ACME server's HTTPS.
func (p *CA) ServerRoots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.ServerPEM)
	return pool
}

// Start runs pebble until the test ends; it validates HTTP-01 challenges
// on port httpPort of 127.0.0.1.
func Start(t testing.TB, httpPort int) *CA {
	t.Helper()
	// Process-wide on purpose (t.Setenv would forbid parallel tests); only
	// pebble reads them, when it starts.
	_ = os.Setenv("PEBBLE_VA_NOSLEEP", "1")
	_ = os.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	logger := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		logger = log.New(testWriter{t}, "pebble ", 0)
	}

	dnsAddr := freeAddr(t)
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

	p := &CA{Roots: x509.NewCertPool()}
	p.Roots.AddCert(authority.GetRootCert(0).Cert)
	handler := front.Handler()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == newOrderPath {
			p.orders.Add(1)
		}
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.ServerPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	p.DirURL = srv.URL + "/dir"
	return p
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
