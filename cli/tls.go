package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// dialTimeout bounds connecting to the daemon.
const dialTimeout = 10 * time.Second

// newTransport returns the HTTP transport the CLI uses to reach the daemon.
// caFile, when set, is a PEM root trusted besides the system's (plat's local
// CA, printed by `plat ca`). Names under .localhost are dialled on loopback,
// as RFC 6761 asks and browsers do, so https://plat.localhost:8443 works
// without an /etc/hosts entry.
func newTransport(caFile string) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("reading the CA file: %v", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the CA file %s holds no PEM certificate (get one with `plat ca`)", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, loopbackIfLocalhost(addr))
	}
	return tr, nil
}

// loopbackIfLocalhost maps "x.localhost:port" to "127.0.0.1:port".
func loopbackIfLocalhost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}
