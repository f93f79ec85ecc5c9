package daemon

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestParseGitCommand(t *testing.T) {
	tests := []struct {
		line, app, err string
	}{
		{"git-receive-pack '/myapp'", "myapp", ""},
		{"git-receive-pack 'myapp'", "myapp", ""},
		{"git-receive-pack 'myapp.git'", "myapp", ""},
		{"git-receive-pack '/myapp.git/'", "myapp", ""},
		{`git-receive-pack "/myapp"`, "myapp", ""},
		{"git-receive-pack /myapp", "myapp", ""},
		{"git receive-pack '/myapp'", "myapp", ""},
		{"git-upload-pack '/myapp'", "", "only receives pushes"},
		{"git upload-pack '/myapp'", "", "only receives pushes"},
		{"git-upload-archive '/myapp'", "", "only receives pushes"},
		{"sh -c 'id'", "", "runs no commands"},
		{"", "", "no command"},
		{"git-receive-pack", "", "one repository"},
		{"git-receive-pack 'a' 'b'", "", "one repository"},
		{"git-receive-pack '/a/b'", "", "not an app"},
		{"git-receive-pack '~/myapp'", "", "not an app"},
		{"git-receive-pack '/'", "", "not an app"},
		{"git-receive-pack '/myapp", "", "unterminated quote"},
	}
	for _, tt := range tests {
		app, err := parseGitCommand(tt.line)
		if app != tt.app || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("parseGitCommand(%q) = %q, %v; want %q, %q", tt.line, app, err, tt.app, tt.err)
		}
	}
}

func authorizedKey(t *testing.T, k any) string {
	t.Helper()
	pk, err := ssh.NewPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))
}

func TestParsePublicKey(t *testing.T) {
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ed := authorizedKey(t, edPub)
	rsaSmall, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(edPriv)
	pk, _ := ssh.NewPublicKey(edPub)
	cert := &ssh.Certificate{Key: pk, CertType: ssh.UserCert, ValidPrincipals: []string{"plat"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, signer); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, text, err string
	}{
		{"ed25519 with comment", ed + " me@laptop\n", ""},
		{"ed25519 alone", ed, ""},
		{"empty", "  \n", "no public key given"},
		{"private key", "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n", "private key"},
		{"garbage", "hello world", "cannot parse"},
		{"dsa", "ssh-dss AAAAB3NzaC1kc3MAAACBAP== x", "DSA keys"},
		{"short rsa", authorizedKey(t, &rsaSmall.PublicKey), "fewer than 2048"},
		{"certificate", strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert))), "not supported"},
		{"options", `command="ls" ` + ed, "options are not supported"},
		{"two keys", ed + "\n" + ed + "\n", "more than one key"},
		{"huge", ed + " " + strings.Repeat("x", maxPublicKeyBytes), "larger than"},
	}
	for _, tt := range tests {
		_, _, err := parsePublicKey(tt.text)
		if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s: parsePublicKey = %v, want %q", tt.name, err, tt.err)
		}
	}
}
