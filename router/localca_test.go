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
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// issueFor has ca sign a leaf for names through Issue, as certmagic does.
func issueFor(t *testing.T, ca *LocalCA, names ...string) (*x509.Certificate, error) {
	t.Helper()
	certPEM, _, err := issueWithKey(t, ca, names...)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(certPEM)
	return x509.ParseCertificate(b.Bytes)
}

// issueWithKey has ca sign a leaf for names through Issue with a new
// P-256 key and returns the chain (PEM) and the key.
func issueWithKey(t *testing.T, ca *LocalCA, names ...string) ([]byte, *ecdsa.PrivateKey, error) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	issued, err := ca.Issue(context.Background(), csr)
	if err != nil {
		return nil, nil, err
	}
	return issued.Certificate, key, nil
}

// forge signs a leaf with the CA's key directly, as someone holding a
// leaked root.key could, bypassing Issue's checks.
func forge(t *testing.T, ca *LocalCA, dns []string, ips []net.IP) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: "forged"},
		DNSNames: dns, IPAddresses: ips,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.root, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func verify(ca *LocalCA, leaf *x509.Certificate, name string) error {
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root())
	_, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots})
	return err
}

// TestLocalCANameConstraints: a client that trusts the root accepts its
// leaves for local names only, even leaves signed with a leaked key.
func TestLocalCANameConstraints(t *testing.T) {
	ca, err := LoadOrCreateLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Constrained() || !ca.Root().PermittedDNSDomainsCritical {
		t.Fatalf("new root: constrained %v, critical %v; want both", ca.Constrained(), ca.Root().PermittedDNSDomainsCritical)
	}
	for _, name := range []string{"localhost", "app.localhost", "a.b.localhost", "shop.test", "db.internal", "printer.local", "nas.home.arpa", "box.lan", "x.example", "x.invalid"} {
		leaf, err := issueFor(t, ca, name)
		if err != nil {
			t.Errorf("Issue(%s): %v", name, err)
			continue
		}
		if err := verify(ca, leaf, name); err != nil {
			t.Errorf("leaf for %s does not verify: %v", name, err)
		}
	}
	for _, name := range []string{"www.google.com", "localhost.evil.com", "evillocalhost", "test.com", "example.com", "localhost.local.evil.org"} {
		if _, err := issueFor(t, ca, "app.localhost", name); err == nil || !strings.Contains(err.Error(), "not a local name") {
			t.Errorf("Issue(app.localhost, %s) = %v; want a refusal", name, err)
		}
		leaf := forge(t, ca, []string{name}, nil)
		var invalid x509.CertificateInvalidError
		if err := verify(ca, leaf, name); !errors.As(err, &invalid) || invalid.Reason != x509.CANotAuthorizedForThisName {
			t.Errorf("forged leaf for %s: Verify = %v; want CANotAuthorizedForThisName", name, err)
		}
	}
	leaf := forge(t, ca, []string{"app.localhost"}, []net.IP{net.ParseIP("203.0.113.7")})
	if err := verify(ca, leaf, "203.0.113.7"); err == nil {
		t.Error("a forged leaf for an IP address verifies; want it refused")
	}
}

// TestLocalCAKeepsOldRoot: a root saved before constraints existed is
// loaded as it is (clients trust it), reported as unconstrained, and keeps
// signing; each root has its own issuer key, so leaves of a replaced root
// are never served again.
func TestLocalCAKeepsOldRoot(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: "plat local CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	oldPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, localRootFile), oldPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, localKeyFile), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	old, err := LoadOrCreateLocalCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if old.Constrained() || string(old.RootPEM()) != string(oldPEM) {
		t.Fatalf("old root: constrained %v, same PEM %v; want it kept as it was", old.Constrained(), string(old.RootPEM()) == string(oldPEM))
	}
	if leaf, err := issueFor(t, old, "app.localhost"); err != nil || verify(old, leaf, "app.localhost") != nil {
		t.Fatalf("old root does not sign app.localhost: %v", err)
	}
	again, _ := LoadOrCreateLocalCA(dir)
	fresh, _ := LoadOrCreateLocalCA(t.TempDir())
	if old.IssuerKey() != again.IssuerKey() || old.IssuerKey() == fresh.IssuerKey() || !strings.HasPrefix(fresh.IssuerKey(), "plat-local-ca-") {
		t.Errorf("issuer keys: old %s, reloaded %s, new root %s; want stable per root and distinct between roots", old.IssuerKey(), again.IssuerKey(), fresh.IssuerKey())
	}
}
