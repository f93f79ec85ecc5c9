package router

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// DefaultACMECA is the ACME directory used when TLSOptions.ACMECA is empty.
const DefaultACMECA = certmagic.LetsEncryptProductionCA

// ErrNoCertificate: a TLS handshake named a host that gets no certificate.
var ErrNoCertificate = errors.New("no certificate for this host")

// localSuffixes are names no public CA issues certificates for (RFC 2606,
// RFC 6761, RFC 6762, RFC 8375 and common private TLDs).
var localSuffixes = []string{".localhost", ".test", ".local", ".internal", ".invalid", ".example", ".home.arpa", ".lan"}

// IsLocalName reports whether host is a name that no public CA can issue a
// certificate for (localhost, *.test, *.internal, IP addresses ...), so
// plat's local CA signs it instead of an ACME CA.
func IsLocalName(host string) bool {
	host = normalizeHost(host)
	if host == "localhost" || net.ParseIP(host) != nil || !strings.Contains(host, ".") {
		return true
	}
	for _, s := range localSuffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return !certmagic.SubjectQualifiesForPublicCert(host)
}

// TLSOptions configure NewTLS.
type TLSOptions struct {
	// StorageDir holds certificates, keys and the ACME account
	// (certmagic.FileStorage).
	StorageDir string
	// LocalCA signs certificates for local names (IsLocalName).
	LocalCA *LocalCA
	// Allow decides whether host may get a certificate: it is certmagic's
	// on-demand DecisionFunc, so a host it refuses triggers no ACME order.
	// nil refuses every host.
	Allow func(ctx context.Context, host string) error

	ACMECA    string         // ACME directory URL; "" → DefaultACMECA
	ACMEEmail string         // account contact; may be empty
	ACMERoots *x509.CertPool // roots trusted for the ACME server's own HTTPS; nil → system roots
	// HTTPAddr is the router's HTTP listener, where ACME HTTP-01 challenges
	// arrive ("127.0.0.1:8080", ":80"). certmagic finds it taken and lets
	// HTTPHandler answer the challenges.
	HTTPAddr string
	// HTTPSPort is the public HTTPS port, used in redirects; "" or "443"
	// means the default port.
	HTTPSPort string
}

// TLS obtains and serves certificates on demand: from an ACME CA for
// public names, from the local CA for local ones. Both go through
// certmagic, which caches, stores and renews them.
type TLS struct {
	acme, local *certmagic.Config
	issuer      *certmagic.ACMEIssuer
	caches      []*certmagic.Cache
	httpsPort   string
}

// NewTLS builds the certificate manager. It contacts no CA: certificates
// are obtained during the first handshake for each allowed host.
func NewTLS(opts TLSOptions) (*TLS, error) {
	if opts.StorageDir == "" || opts.LocalCA == nil {
		return nil, errors.New("tls: storage dir and local CA are required")
	}
	allow := opts.Allow
	if allow == nil {
		allow = func(context.Context, string) error { return ErrNoCertificate }
	}
	storage := &certmagic.FileStorage{Path: opts.StorageDir}
	logger := certmagicLogger()
	t := &TLS{httpsPort: opts.HTTPSPort}
	if t.httpsPort == "443" {
		t.httpsPort = ""
	}
	newConfig := func() *certmagic.Config {
		var cfg *certmagic.Config
		cache := certmagic.NewCache(certmagic.CacheOptions{
			Logger:           logger,
			GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return cfg, nil },
		})
		t.caches = append(t.caches, cache)
		cfg = certmagic.New(cache, certmagic.Config{
			Storage:  storage,
			Logger:   logger,
			OnDemand: &certmagic.OnDemandConfig{DecisionFunc: allow},
		})
		return cfg
	}

	t.local = newConfig()
	t.local.Issuers = []certmagic.Issuer{opts.LocalCA}

	t.acme = newConfig()
	ca := opts.ACMECA
	if ca == "" {
		ca = DefaultACMECA
	}
	host, port, err := net.SplitHostPort(opts.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("tls: HTTP address %q: %w", opts.HTTPAddr, err)
	}
	altPort := 0
	if _, err := fmt.Sscan(port, &altPort); err != nil {
		return nil, fmt.Errorf("tls: HTTP port %q: %w", port, err)
	}
	t.issuer = certmagic.NewACMEIssuer(t.acme, certmagic.ACMEIssuer{
		CA:                      ca,
		Email:                   opts.ACMEEmail,
		Agreed:                  true,
		TrustedRoots:            opts.ACMERoots,
		ListenHost:              host,
		AltHTTPPort:             altPort,
		DisableTLSALPNChallenge: true, // HTTP-01 only: the HTTP listener answers it
		Logger:                  logger,
	})
	t.acme.Issuers = []certmagic.Issuer{t.issuer}
	return t, nil
}

// Stop ends certmagic's background maintenance.
func (t *TLS) Stop() {
	for _, c := range t.caches {
		c.Stop()
	}
}

// TLSConfig is the server configuration for the HTTPS listener: HTTP/2 and
// HTTP/1.1, TLS 1.2 or later, a certificate chosen by SNI.
func (t *TLS) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: t.GetCertificate,
	}
}

// GetCertificate returns the certificate for the handshake's server name,
// obtaining it first if the name is allowed and has none yet.
func (t *TLS) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if hello.ServerName == "" {
		return nil, fmt.Errorf("%w: the client sent no server name (SNI)", ErrNoCertificate)
	}
	if IsLocalName(hello.ServerName) {
		return t.local.GetCertificate(hello)
	}
	return t.acme.GetCertificate(hello)
}

// HTTPHandler wraps the handler of the plain-HTTP listener: it answers ACME
// HTTP-01 challenges, and redirects requests for hosts that secure(host)
// accepts to HTTPS with 308 (method and body kept). Other requests go to
// next, which answers 404 for unknown hosts.
func (t *TLS) HTTPHandler(next http.Handler, secure func(host string) bool) http.Handler {
	return t.issuer.HTTPChallengeHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := normalizeHost(r.Host)
		if host == "" || certmagic.LooksLikeHTTPChallenge(r) || !secure(host) {
			next.ServeHTTP(w, r)
			return
		}
		target := "https://" + host
		if t.httpsPort != "" {
			target += ":" + t.httpsPort
		}
		http.Redirect(w, r, target+r.URL.RequestURI(), http.StatusPermanentRedirect)
	}))
}

// Serves reports whether the router has a route for host (any app).
func (r *Router) Serves(host string) bool {
	_, ok := r.table.Load().hosts[normalizeHost(host)]
	return ok
}

// certmagicLogger logs certmagic's warnings and errors (failed orders,
// renewals) to stderr; its info messages would repeat every handshake's
// story.
func certmagicLogger() *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(os.Stderr), zap.WarnLevel))
}
