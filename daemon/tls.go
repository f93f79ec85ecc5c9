package daemon

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/router"
)

// HTTPS defaults and where its state lives in the data dir.
const (
	DefaultHTTPSAddr = ":443"
	localCADir       = "ca"
	certsDir         = "certs"
)

// apiHost is the host name that reaches the API through the HTTPS listener.
func (c Config) apiHost() string { return deploy.APIHostLabel + "." + c.Domain }

// newTLS builds the certificate manager: certificates only for hosts the
// router serves and for the API host.
func newTLS(cfg Config, rt *router.Router, ca *router.LocalCA, httpAddr, httpsAddr net.Addr) (*router.TLS, error) {
	var roots *x509.CertPool
	if cfg.ACMERootsFile != "" {
		pem, err := os.ReadFile(cfg.ACMERootsFile)
		if err != nil {
			return nil, fmt.Errorf("read --acme-ca-roots: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--acme-ca-roots %s holds no PEM certificate", cfg.ACMERootsFile)
		}
	}
	_, httpsPort, _ := net.SplitHostPort(httpsAddr.String())
	apiHost := cfg.apiHost()
	return router.NewTLS(router.TLSOptions{
		StorageDir: filepath.Join(cfg.DataDir, certsDir),
		LocalCA:    ca,
		Allow: func(_ context.Context, host string) error {
			if host == apiHost || rt.Serves(host) {
				return nil
			}
			return fmt.Errorf("%w: %s is not a host of any app", router.ErrNoCertificate, host)
		},
		ACMECA:    cfg.ACMECA,
		ACMEEmail: cfg.ACMEEmail,
		ACMERoots: roots,
		HTTPAddr:  httpAddr.String(),
		HTTPSPort: httpsPort,
	})
}

// byHost sends requests for the API host to api, all others to apps.
func byHost(apiHost string, api, apps http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if strings.EqualFold(strings.TrimSuffix(host, "."), apiHost) {
			api.ServeHTTP(w, r)
			return
		}
		apps.ServeHTTP(w, r)
	})
}

// getCA serves the local CA's root certificate, for `plat ca`.
func (s *server) getCA(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(s.localCA.RootPEM())
}
