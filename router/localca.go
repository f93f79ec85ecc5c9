package router

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
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
	localIssuerKey    = "plat-local-ca"
)

// LocalCA is a private certificate authority kept in a directory: one ECDSA
// root that signs leaf certificates for names no public CA issues for
// (myapp.localhost). It implements certmagic.Issuer, so certmagic handles
// on-demand issuance, storage and renewal exactly as for ACME.
type LocalCA struct {
	root    *x509.Certificate
	rootPEM []byte
	key     *ecdsa.PrivateKey
}

var _ certmagic.Issuer = (*LocalCA)(nil)

// LoadOrCreateLocalCA loads the root from dir, or creates and saves one
// (root.pem, and root.key with mode 0600) when dir has none.
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
	return &LocalCA{root: root, rootPEM: certPEM, key: key}, nil
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
	return &LocalCA{root: root, rootPEM: certPEM, key: key}, nil
}

// RootPEM returns the root certificate, PEM-encoded: what a user trusts.
func (ca *LocalCA) RootPEM() []byte { return ca.rootPEM }

// Root returns the root certificate.
func (ca *LocalCA) Root() *x509.Certificate { return ca.root }

// IssuerKey implements certmagic.Issuer.
func (ca *LocalCA) IssuerKey() string { return localIssuerKey }

// Issue implements certmagic.Issuer: it signs a leaf for the CSR's names.
func (ca *LocalCA) Issue(_ context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("local CA: bad CSR signature: %w", err)
	}
	if len(csr.DNSNames) == 0 {
		return nil, errors.New("local CA: CSR names no host")
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
