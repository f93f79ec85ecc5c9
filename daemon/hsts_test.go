package daemon_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/plat-paas/plat/internal/pebbletest"
)

// TestHSTSOverTLS: over real TLS, the API and dashboard at plat.<domain>
// send Strict-Transport-Security; an app sends it only after `plat
// hsts:set NAME on`, only on its hosts with a public (ACME) certificate,
// with the max-age asked for; apps:info shows the setting; it survives a
// daemon restart and `off` removes it. Bad settings get 400.
func TestHSTSOverTLS(t *testing.T) {
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
		"--acme-ca", p.DirURL, "--acme-ca-roots", rootsFile)
	d.httpAddr = httpAddr
	d.createApp("web")
	r := d.newRepo("web")
	r.commit("v1", "")
	r.mustPush("main")
	d.mustPlat("domains:add", "web", "web.shop.test") // a local name: the local CA signs it

	roots := p.Roots.Clone()
	if !roots.AppendCertsFromPEM([]byte(d.mustPlat("ca"))) {
		t.Fatal("plat ca printed no certificate")
	}
	client := httpsClient(httpsAddr, roots)
	sts := func(url string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+d.token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", url, resp.StatusCode)
		}
		return resp.Header.Get("Strict-Transport-Security")
	}
	check := func(when, url, want string) {
		t.Helper()
		if got := sts(url); got != want {
			t.Errorf("%s: %s sent Strict-Transport-Security %q, want %q", when, url, got, want)
		}
	}

	check("the API over HTTPS", "https://plat.example.com/api/whoami", "max-age=31536000")
	if resp, err := http.Get("http://" + d.apiAddr + "/api/whoami"); err != nil || resp.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("the API over plain HTTP sent HSTS (or failed: %v)", err)
	}
	check("before opting in", "https://web.example.com/", "")

	out := d.mustPlat("hsts:set", "web", "on")
	if !strings.Contains(out, "web HSTS: on (max-age=31536000") {
		t.Errorf("hsts:set printed %q", out)
	}
	check("after hsts:set on", "https://web.example.com/", "max-age=31536000")
	check("a local name (local CA)", "https://web.shop.test/", "")
	if info := d.mustPlat("apps:info", "web"); !strings.Contains(info, "hsts:") || !strings.Contains(info, "on (max-age=31536000") {
		t.Errorf("apps:info does not show HSTS:\n%s", info)
	}

	d.mustPlat("hsts:set", "web", "on", "--max-age", "180d")
	d.restart(syscall.SIGTERM)
	check("after --max-age 180d and a restart", "https://web.example.com/", "max-age=15552000")

	for _, body := range []string{`{"enabled":true,"max_age":0}`, `{"enabled":true,"max_age":999999999}`, `{}`} {
		if code, msg := d.apiCall(http.MethodPut, "/api/apps/web/hsts", body); code != http.StatusBadRequest {
			t.Errorf("PUT hsts %s: %d %s; want 400", body, code, msg)
		}
	}
	d.mustPlat("hsts:set", "web", "off")
	check("after hsts:set off", "https://web.example.com/", "")
}
