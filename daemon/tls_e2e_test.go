package daemon_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// getHost fetches path through the router's HTTP listener with Host host.
func (d *daemon) getHost(host, path string) (int, string) {
	d.t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+d.httpAddr+path, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

type domainsJSON struct {
	App     string   `json:"app"`
	Default string   `json:"default"`
	Domains []string `json:"domains"`
}

// TestCustomDomains adds, lists and removes custom domains through the CLI
// and checks the router follows at once and after a restart.
func TestCustomDomains(t *testing.T) {
	t.Parallel() // its own daemon, ports and engine instance
	d := startDaemon(t)
	d.createApp("shop")
	d.createApp("blog")
	r := d.newRepo("shop")
	r.commit("one", "")
	r.mustPush("main")
	d.mustServe("shop", "one")

	if code, _ := d.getHost("www.example.com", "/"); code != http.StatusNotFound {
		t.Fatalf("before domains:add, www.example.com answered %d, want 404", code)
	}
	out := d.mustPlat("domains:add", "shop", "WWW.Example.com")
	if !strings.Contains(out, "www.example.com") || !strings.Contains(out, "custom") {
		t.Errorf("domains:add output:\n%s", out)
	}
	if code, body := d.getHost("www.example.com", "/"); code != http.StatusOK || !strings.Contains(body, "one") {
		t.Fatalf("after domains:add, www.example.com answered %d %q; want the app", code, body)
	}
	d.mustServe("shop", "one") // the default host still works

	// A domain belongs to one app.
	out, err := d.plat("domains:add", "blog", "www.example.com")
	if err == nil || !strings.Contains(out, "already belongs to app shop") {
		t.Errorf("adding shop's domain to blog: err %v, output %q; want a refusal naming shop", err, out)
	}
	status, _ := d.apiCall(http.MethodPost, "/api/apps/blog/domains", `{"domain":"www.example.com"}`)
	if status != http.StatusConflict {
		t.Errorf("API status for a taken domain %d, want 409", status)
	}

	// Invalid names are refused with the reason.
	for _, tc := range []struct{ host, why string }{
		{"not a host", "not a valid host name"},
		{"bad-.example.com", "not a valid host name"},
		{"example", "not a full host name"},
		{"10.0.0.1", "IP address"},
		{"*.example.com", "wildcard"},
		{"blog.localhost", "reserved"},
		{"plat.localhost", "reserved"},
	} {
		out, err := d.plat("domains:add", "shop", tc.host)
		if err == nil || !strings.Contains(out, tc.why) {
			t.Errorf("domains:add shop %q: err %v, output %q; want an error saying %q", tc.host, err, out, tc.why)
		}
	}

	var got domainsJSON
	if err := json.Unmarshal([]byte(d.mustPlat("domains", "shop", "--json")), &got); err != nil {
		t.Fatal(err)
	}
	if got.Default != "shop.localhost" || strings.Join(got.Domains, ",") != "www.example.com" {
		t.Errorf("domains --json = %+v", got)
	}

	// Custom domains are routed again after a restart (reconcile).
	d.restart(syscall.SIGTERM)
	if code, body := d.getHost("www.example.com", "/"); code != http.StatusOK || !strings.Contains(body, "one") {
		t.Fatalf("after restart, www.example.com answered %d %q", code, body)
	}

	d.mustPlat("domains:remove", "shop", "www.example.com")
	if code, _ := d.getHost("www.example.com", "/"); code != http.StatusNotFound {
		t.Errorf("after domains:remove, www.example.com answered %d, want 404", code)
	}
	d.mustServe("shop", "one")
	// Freed, it can go to another app; blog has no release yet: 503.
	d.mustPlat("domains:add", "blog", "www.example.com")
	if code, _ := d.getHost("www.example.com", "/"); code != http.StatusServiceUnavailable {
		t.Errorf("www.example.com on undeployed blog answered %d, want 503", code)
	}
}

// apiCall sends an authenticated API request and returns status and body.
func (d *daemon) apiCall(method, path, body string) (int, string) {
	d.t.Helper()
	req, err := http.NewRequest(method, "http://"+d.apiAddr+path, strings.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHTTPSLocalCA: with the default base domain (localhost) the daemon
// serves apps, custom local domains and its own API over HTTPS with
// certificates from its local CA, whose root `plat ca` prints.
func TestHTTPSLocalCA(t *testing.T) {
	t.Parallel() // its own daemon, ports and engine instance
	httpsAddr := freePort(t)
	d := startDaemon(t, "--https", httpsAddr)
	d.createApp("web")
	r := d.newRepo("web")
	r.commit("tls-one", "")
	out := r.mustPush("main")
	_, port, _ := net.SplitHostPort(httpsAddr)
	if !strings.Contains(out, "https://web.localhost:"+port) {
		t.Errorf("push output does not give the https URL:\n%s", out)
	}

	rootPEM := d.mustPlat("ca")
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(rootPEM)) {
		t.Fatalf("plat ca printed no certificate:\n%s", rootPEM)
	}
	client := httpsClient(httpsAddr, roots)

	get := func(url string) (*http.Response, string) {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("https://web.localhost/")
	if resp.StatusCode != 200 || !strings.Contains(body, "tls-one") || resp.Proto != "HTTP/2.0" {
		t.Errorf("https://web.localhost/ = %d %s %q; want 200 over HTTP/2 from the app", resp.StatusCode, resp.Proto, body)
	}

	// A host of no app gets no certificate.
	if _, err := client.Get("https://nobody.localhost/"); err == nil {
		t.Error("https://nobody.localhost/ succeeded; want a failed handshake")
	}

	// A custom local domain gets a certificate as soon as it is added.
	d.mustPlat("domains:add", "web", "web.shop.test")
	if resp, body := get("https://web.shop.test/"); resp.StatusCode != 200 || !strings.Contains(body, "tls-one") {
		t.Errorf("https://web.shop.test/ = %d %q", resp.StatusCode, body)
	}

	// Plain HTTP redirects app hosts to HTTPS.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.httpAddr+"/x?y=1", nil)
	req.Host = "web.localhost"
	hresp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	hresp.Body.Close()
	if want := "https://web.localhost:" + port + "/x?y=1"; hresp.StatusCode != http.StatusPermanentRedirect || hresp.Header.Get("Location") != want {
		t.Errorf("HTTP GET = %d Location %q; want 308 to %s", hresp.StatusCode, hresp.Header.Get("Location"), want)
	}

	// The API over HTTPS at plat.localhost: the CLI logs in with the CA file.
	caFile := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(caFile, []byte(rootPEM), 0o644); err != nil {
		t.Fatal(err)
	}
	apiURL := "https://plat.localhost:" + port
	cmd := d.platCmd("login", apiURL, "--token", d.token, "--ca-file", caFile)
	cmd.Env = withoutEnv(cmd.Env, "PLAT_URL", "PLAT_TOKEN")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("plat login %s: %v\n%s", apiURL, err, out)
	}
	cmd = d.platCmd("apps")
	cmd.Env = withoutEnv(cmd.Env, "PLAT_URL", "PLAT_TOKEN")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "web") {
		t.Errorf("plat apps over HTTPS: %v\n%s", err, out)
	}
	// git pushes over HTTPS too: git:remote points git at the https URL
	// and the CA file, and the token travels only inside TLS.
	r.commit("tls-two", "")
	// GIT_SSL_CAINFO (set on some machines) would override git's config.
	httpsEnv := withoutEnv(d.env(), "PLAT_URL", "PLAT_TOKEN", "GIT_SSL_CAINFO")
	for _, args := range [][]string{{platBin, "git:remote", "web"}, {"git", "push", "platform", "main"}} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir, cmd.Env = r.dir, httpsEnv
		out, err := cmd.CombinedOutput()
		if err != nil {
			cfg, _ := os.ReadFile(filepath.Join(d.home, ".config", "plat", "config.json"))
			t.Fatalf("%s: %v\n%s\ngit config:\n%s\nplat config:\n%s", strings.Join(args, " "), err, out, r.git("config", "--list", "--show-origin"), cfg)
		}
		if args[0] == "git" && !strings.Contains(string(out), "remote: -----> Switched traffic to v2") {
			t.Errorf("push over HTTPS output:\n%s", out)
		}
	}
	if remote := r.git("remote", "get-url", "platform"); !strings.HasPrefix(remote, apiURL+"/git/") {
		t.Errorf("git remote is %q, want it under %s", remote, apiURL)
	}
	if resp, body := get("https://web.localhost/"); resp.StatusCode != 200 || !strings.Contains(body, "tls-two") {
		t.Errorf("after the HTTPS push https://web.localhost/ = %d %q", resp.StatusCode, body)
	}

	// Without the CA the CLI refuses the connection.
	cmd = d.platCmd("apps")
	cmd.Env = append(withoutEnv(cmd.Env, "PLAT_URL", "PLAT_TOKEN"), "PLAT_CONFIG="+filepath.Join(t.TempDir(), "none.json"), "PLAT_URL="+apiURL, "PLAT_TOKEN="+d.token)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "certificate") {
		t.Errorf("plat apps over HTTPS without the CA: err %v, output %q; want a certificate error", err, out)
	}
	// Unauthenticated requests stay refused over HTTPS too.
	if resp, _ := get(apiURL + "/api/apps"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unauthenticated GET /api/apps over HTTPS = %d, want 401", resp.StatusCode)
	}

	// The root is kept across restarts: certificates stay trusted.
	d.restart(syscall.SIGTERM)
	if again := d.mustPlat("ca"); again != rootPEM {
		t.Error("the local CA root changed across a restart")
	}
	if resp, _ := get("https://web.localhost/"); resp.StatusCode != 200 {
		t.Errorf("after restart https://web.localhost/ = %d", resp.StatusCode)
	}
}

// httpsClient trusts roots and dials addr whatever the URL's host.
func httpsClient(addr string, roots *x509.CertPool) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	return &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, addr)
			},
		},
	}
}

func withoutEnv(env []string, keys ...string) []string {
	var out []string
	for _, kv := range env {
		keep := true
		for _, k := range keys {
			if strings.HasPrefix(kv, k+"=") {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

// platCmd is the CLI command for args with the test's environment.
func (d *daemon) platCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(platBin, args...)
	cmd.Env = d.env()
	return cmd
}
