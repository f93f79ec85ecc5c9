package cli

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// browserScript makes a $BROWSER that records the URL it was given.
func browserScript(t *testing.T) (cmd, record string) {
	t.Helper()
	dir := t.TempDir()
	record = filepath.Join(dir, "opened")
	cmd = filepath.Join(dir, "browser")
	if err := os.WriteFile(cmd, []byte("#!/bin/sh\nprintf '%s' \"$1\" >"+record+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return cmd, record
}

func TestOpen(t *testing.T) {
	newFake(t, nil)
	runOK(t, []string{"open", "web", "--print"}, "http://web.plat.test\n")
	runOK(t, []string{"open", "web", "--json"}, `"url": "http://web.plat.test"`)

	browser, record := browserScript(t)
	t.Setenv("BROWSER", browser)
	runOK(t, []string{"open", "web"}, "Opened web in your browser")
	if b, _ := os.ReadFile(record); string(b) != "http://web.plat.test" {
		t.Fatalf("the browser got %q", b)
	}

	t.Setenv("BROWSER", "")
	t.Setenv("PATH", t.TempDir()) // no xdg-open, no open
	runOK(t, []string{"open", "web"}, "No browser launcher found", "http://web.plat.test")

	if _, errOut, code := run("open", "nope"); code != 1 || !strings.Contains(errOut, "no app named") {
		t.Fatalf("open nope: exit %d %q", code, errOut)
	}
	if _, _, code := run("open"); code != 2 {
		t.Fatalf("open without an app: exit %d, want 2", code)
	}
}

func TestDashboardOpensLoginLink(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"POST /api/login-links": canned(201, `{"path":"/login/once?n=abc123","expires_at":"2025-01-02T15:05:05Z"}`),
	})
	out := runOK(t, []string{"dashboard", "--print"}, f.URL+"/login/once?n=abc123\n")
	if strings.Contains(out, testToken) {
		t.Fatalf("the token is in the link: %q", out)
	}
	browser, record := browserScript(t)
	t.Setenv("BROWSER", browser)
	runOK(t, []string{"dashboard"}, "Opened the dashboard")
	if b, _ := os.ReadFile(record); string(b) != f.URL+"/login/once?n=abc123" {
		t.Fatalf("the browser got %q", b)
	}
	if reqs := f.requests(); reqs[len(reqs)-1] != "POST /api/login-links" {
		t.Fatalf("requests: %q", reqs)
	}

	newFake(t, map[string]http.HandlerFunc{
		"POST /api/login-links": canned(201, `{"path":"http://evil.example/"}`),
	})
	if _, errOut, code := run("dashboard", "--print"); code != 1 || !strings.Contains(errOut, "unexpected answer") {
		t.Fatalf("a link off the daemon's origin: exit %d %q", code, errOut)
	}
}
