package router

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
)

// Validity of the local CA's certificates. Leaves are short-lived, so a
// leaked one is useless soon; certmagic renews them on its own schedule.
const (
	LocalRootValidity = 10 * 365 * 24 * time.Hour
	LocalLeafValidity = 7 * 24 * time.Hour
	localRootFile     = "root.pem"
	localKeyFile      = "root.key"
	// localIssuerKey, with the root's fingerprint after it, names where
	// certmagic keeps the leaves: a new root never serves an old one's.
	localIssuerKey = "plat-local-ca"
)

// localCADomains are the names a local CA root may certify, as its name
// constraints (a constraint covers the name and every name under it):
// localhost and the local suffixes IsLocalName sends to the local CA. A
// browser that trusts the root then trusts it for nothing else, even if its
// key leaks from the data dir.
func localCADomains() []string {
	out := []string{"localhost"}
	for _, s := range localSuffixes {
		if d := strings.TrimPrefix(s, "."); !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// inLocalCADomains reports whether host is one of localCADomains or under one.
func inLocalCADomains(host string) bool {
	host = normalizeHost(host)
	for _, d := range localCADomains() {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// LocalCA is a private certificate authority kept in a directory: one ECDSA
// root that signs leaf certificates for names no public CA issues for
// (myapp.localhost). It implements certmagic.Issuer, so certmagic handles
// on-demand issuance, storage and renewal exactly as for ACME.
type LocalCA struct {
	root      *x509.Certificate
	rootPEM   []byte
	key       *ecdsa.PrivateKey
	issuerKey string
}

func newLocalCA(root *x509.Certificate, rootPEM []byte, key *ecdsa.PrivateKey) *LocalCA {
	sum := sha256.Sum256(root.Raw)
	return &LocalCA{root: root, rootPEM: rootPEM, key: key, issuerKey: localIssuerKey + "-" + hex.EncodeToString(sum[:8])}
}

var _ certmagic.Issuer = (*LocalCA)(nil)

// LoadOrCreateLocalCA loads the root from dir, or creates and saves one
// (root.pem, and root.key with mode 0600) when dir has none. A new root is
// name-constrained to localCADomains; a root saved by an older plat is kept
// as it is (see Constrained): replacing it would break every client that
// trusts it, and would not take the old root out of their trust stores.
func LoadOrCreateLocalCA(dir string) (*LocalCA, error) {
	certPath, keyPath := filepath.Join(dir, localRootFile), filepath.Join(dir, localKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, os.ErrNotExist) {
		return createLocalCA(dir, certPath, keyPath)
	}
	if err != nil {
		return nil, fmt.Errorf("read local CA root: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read local CA key: %w", err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("local CA in %s: root.pem or root.key is not PEM", dir)
	}
	root, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse local CA root: %w", err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse local CA key: %w", err)
	}
	return newLocalCA(root, certPEM, key), nil
}

func createLocalCA(dir, certPath, keyPath string) (*LocalCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate local CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "plat local CA", Organization: []string{"plat"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(LocalRootValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		// Critical, as RFC 5280 asks: a client that cannot check the
		// constraints must refuse the root rather than trust it for all.
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         localCADomains(),
		// The CA signs no IP addresses; exclude them all.
		ExcludedIPRanges: []*net.IPNet{
			{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
			{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)},
		},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create local CA root: %w", err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse local CA root: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode local CA key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create local CA dir: %w", err)
	}
	// Key first: a root without its key would be unusable on the next start.
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, fmt.Errorf("save local CA key: %w", err)
	}
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("save local CA root: %w", err)
	}
	return newLocalCA(root, certPEM, key), nil
}

// Constrained reports whether the root carries name constraints; roots
// created before plat added them do not.
func (ca *LocalCA) Constrained() bool { return len(ca.root.PermittedDNSDomains) > 0 }

// RootPEM returns the root certificate, PEM-encoded: what a user trusts.
func (ca *LocalCA) RootPEM() []byte { return ca.rootPEM }

// Root returns the root certificate.
func (ca *LocalCA) Root() *x509.Certificate { return ca.root }

// IssuerKey implements certmagic.Issuer.
func (ca *LocalCA) IssuerKey() string { return ca.issuerKey }

// Issue implements certmagic.Issuer: it signs a leaf for the CSR's names.
func (ca *LocalCA) Issue(_ context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("local CA: bad CSR signature: %w", err)
	}
	if len(csr.DNSNames) == 0 {
		return nil, errors.New("local CA: CSR names no host")
	}
	for _, n := range csr.DNSNames {
		if !inLocalCADomains(n) {
			return nil, fmt.Errorf("local CA: %s is not a local name (it signs only for %s and names under them)", n, strings.Join(localCADomains(), ", "))
		}
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: csr.DNSNames[0]},
		DNSNames:     csr.DNSNames,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(LocalLeafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.root, csr.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("local CA: sign %v: %w", csr.DNSNames, err)
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.rootPEM...)
	return &certmagic.IssuedCertificate{Certificate: chain}, nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // never happens on Linux
	}
	return n
}
