package router

import (
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/plat-paas/plat/internal/pebbletest"
)

// TestACMEWithPebble obtains real certificates from a real ACME server
// (pebble) with HTTP-01 validated against the router's HTTP listener.
func TestACMEWithPebble(t *testing.T) {
	if testing.Short() {
		t.Skip("ACME round trips in -short mode")
	}
	r, _, _ := newTestRouter(t)
	_, b := newBackendServer(t, textHandler("served by myapp"))
	mustSet(t, r, Route{App: "myapp", Hosts: []string{"myapp.example.com"}, Backends: []*Backend{b}})

	// Pebble must know the router's HTTP port before it starts.
	httpPort := pebbletest.FreePort(t)
	p := pebbletest.Start(t, httpPort)
	f := startTLSFrontOn(t, r, TLSOptions{ACMECA: p.DirURL, ACMEEmail: "ops@example.com", ACMERoots: p.ServerRoots()}, "127.0.0.1:"+strconv.Itoa(httpPort))

	// A deployed app's host gets a certificate that chains to pebble's root.
	cert, err := f.handshake("myapp.example.com", p.Roots)
	if err != nil {
		t.Fatalf("TLS handshake for myapp.example.com: %v", err)
	}
	if cert.Subject.CommonName != "myapp.example.com" && (len(cert.DNSNames) == 0 || cert.DNSNames[0] != "myapp.example.com") {
		t.Errorf("certificate is for %v", cert.DNSNames)
	}
	resp, err := f.client(p.Roots, true).Get("https://myapp.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "served by myapp" || resp.Proto != "HTTP/2.0" {
		t.Errorf("GET https://myapp.example.com/ = %d %s %q", resp.StatusCode, resp.Proto, body)
	}
	ordersAfterApp := p.Orders()
	if ordersAfterApp != 1 {
		t.Errorf("%d ACME orders for one host, want 1", ordersAfterApp)
	}

	// A host of no app: failed handshake, and pebble sees no order.
	if _, err := f.handshake("stranger.example.com", p.Roots); err == nil {
		t.Error("handshake for a host of no app succeeded")
	}
	time.Sleep(200 * time.Millisecond) // an order, if one were started, would be sent by now
	if n := p.Orders(); n != ordersAfterApp {
		t.Errorf("a host of no app caused %d ACME order(s)", n-ordersAfterApp)
	}

	// A custom domain added to the app's route gets its own certificate.
	route, _ := r.Lookup("myapp.example.com")
	mustSet(t, r, Route{App: "myapp", Hosts: append(route.Hosts, "www.custom-domain.org"), Backends: route.Backends})
	if _, err := f.handshake("www.custom-domain.org", p.Roots); err != nil {
		t.Fatalf("TLS handshake for the custom domain: %v", err)
	}
	if n := p.Orders(); n != ordersAfterApp+1 {
		t.Errorf("%d orders after the custom domain, want %d", n, ordersAfterApp+1)
	}
}
