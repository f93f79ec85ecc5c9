package daemon_test

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plat-paas/plat/internal/pebbletest"
)

// TestACMEDomainsWithPebble runs the real daemon against a real ACME
// server (pebble, in this test) for a public base domain: HTTP-01 is
// validated on the daemon's HTTP listener; apps, custom domains added with
// `plat domains:add` and plat.<domain> get certificates; other names get
// none and cause no order.
func TestACMEDomainsWithPebble(t *testing.T) {
	t.Parallel() // its own daemon, ports and engine instance
	requireTools(t)
	httpPort := pebbletest.FreePort(t)
	p := pebbletest.Start(t, httpPort)
	rootsFile := filepath.Join(t.TempDir(), "acme-server.pem")
	if err := os.WriteFile(rootsFile, p.ServerPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	httpsAddr := freePort(t)
	httpAddr := "127.0.0.1:" + strconv.Itoa(httpPort)
	d := startDaemon(t, "--http", httpAddr, "--https", httpsAddr, "--domain", "example.com",
		"--acme-ca", p.DirURL, "--acme-ca-roots", rootsFile, "--acme-email", "ops@example.com")
	d.httpAddr = httpAddr

	d.createApp("web")
	r := d.newRepo("web")
	r.commit("acme-one", "")
	r.mustPush("main")

	handshake := func(host string) error {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Minute}, "tcp", httpsAddr,
			&tls.Config{ServerName: host, RootCAs: p.Roots})
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := handshake("web.example.com"); err != nil {
		t.Fatalf("handshake for the deployed app: %v", err)
	}
	client := httpsClient(httpsAddr, p.Roots)
	resp, err := client.Get("https://web.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "acme-one") {
		t.Errorf("https://web.example.com/ = %d %q", resp.StatusCode, body)
	}
	orders := p.Orders()

	if err := handshake("stranger.example.com"); err == nil {
		t.Error("handshake for a name of no app succeeded")
	}
	time.Sleep(200 * time.Millisecond)
	if n := p.Orders(); n != orders {
		t.Errorf("a name of no app caused %d ACME order(s)", n-orders)
	}

	d.mustPlat("domains:add", "web", "www.custom-shop.org")
	if err := handshake("www.custom-shop.org"); err != nil {
		t.Fatalf("handshake for the custom domain: %v", err)
	}
	if n := p.Orders(); n != orders+1 {
		t.Errorf("%d orders after domains:add, want %d", n, orders+1)
	}

	// The API over HTTPS at plat.example.com, with a public certificate.
	req, _ := http.NewRequest(http.MethodGet, "https://plat.example.com/api/apps", nil)
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatalf("API over HTTPS: %v", err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"web"`) {
		t.Errorf("GET https://plat.example.com/api/apps = %d %q", resp.StatusCode, body)
	}
}
