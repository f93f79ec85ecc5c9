package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoopbackIfLocalhost(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plat.localhost:8443", "127.0.0.1:8443"},
		{"PLAT.LocalHost.:443", "127.0.0.1:443"},
		{"localhost:80", "127.0.0.1:80"},
		{"plat.example.com:443", "plat.example.com:443"},
		{"localhost.example.com:443", "localhost.example.com:443"},
		{"[::1]:443", "[::1]:443"},
		{"no-port", "no-port"},
	} {
		if got := loopbackIfLocalhost(tc.in); got != tc.want {
			t.Errorf("loopbackIfLocalhost(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNewTransportCAFile(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, file, err string }{
		{"no CA file", "", ""},
		{"missing file", filepath.Join(dir, "nope.pem"), "reading the CA file"},
		{"not PEM", notPEM, "holds no PEM certificate"},
	} {
		_, err := newTransport(tc.file)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
		}
	}
}
