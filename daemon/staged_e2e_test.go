package daemon_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plat-paas/plat/bench/load"
)

// mustServeHost asserts host answers 200 with a body containing want.
func (d *daemon) mustServeHost(host, want string) {
	d.t.Helper()
	if code, body := d.getHost(host, "/"); code != http.StatusOK || !strings.Contains(body, want) {
		d.t.Fatalf("GET %s: %d %q; want 200 with %q", host, code, body, want)
	}
}

// mustNotServeHost asserts the router has no route for host (404).
func (d *daemon) mustNotServeHost(host string) {
	d.t.Helper()
	if code, body := d.getHost(host, "/"); code != http.StatusNotFound {
		d.t.Fatalf("GET %s: %d %q; want 404 (no route)", host, code, body)
	}
}

// releaseStatus returns the STATUS column of vN in `plat releases`.
func (d *daemon) releaseStatus(app string, v int) string {
	d.t.Helper()
	for _, line := range strings.Split(d.mustPlat("releases", app), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == fmt.Sprintf("v%d", v) {
			return f[2]
		}
	}
	return ""
}

// TestStagedReleases: in manual release mode a push or config change runs
// at vN.web.localhost while production keeps its release, under a steady
// load on the production host that must see no failed request; promote,
// unstage, the refusals of bad input and a daemon restart.
func TestStagedReleases(t *testing.T) {
	t.Parallel() // its own daemon, ports and engine instance
	d := startDaemon(t)
	_, httpPort, _ := net.SplitHostPort(d.httpAddr)
	const app = "web"
	r := d.deployedApp(app, "one")
	d.mustPlat("health:set", app, "--deadline", "3s", "--interval", "100ms")

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	loaded := make(chan load.Result, 1)
	go func() {
		loaded <- load.Run(ctx, load.Options{Target: d.httpAddr, Host: app + ".localhost", Concurrency: 8, KeepAlive: true})
	}()

	if out := d.mustPlat("release-mode:set", app, "manual"); !strings.Contains(out, "manual") {
		t.Errorf("release-mode:set said %q", out)
	}
	if out := d.mustPlat("release-mode", app); !strings.Contains(out, "release mode manual") {
		t.Errorf("release-mode said %q", out)
	}

	// A push stages v2: production stays on v1.
	r.commit("two", "")
	out := r.mustPush("main")
	if want := "v2 is staged at http://v2.web.localhost:" + httpPort + "/ (plat promote web v2 to release it)"; !strings.Contains(out, want) {
		t.Errorf("push output does not end with %q:\n%s", want, out)
	}
	d.mustServe(app, "version=one")
	d.mustServeHost("v2.web.localhost", "version=two")
	d.mustServeHost("v1.web.localhost", "version=one")
	if got := d.releaseStatus(app, 2); got != "staged" {
		t.Errorf("v2 is %q in plat releases; want staged", got)
	}
	if out := d.mustPlat("releases", app); !strings.Contains(out, "http://v2.web.localhost:"+httpPort+"/") {
		t.Errorf("plat releases does not give v2's preview URL:\n%s", out)
	}
	if out := d.mustPlat("apps:info", app); !strings.Contains(out, "staged:") || !strings.Contains(out, "v2 at http://v2.web.localhost") {
		t.Errorf("apps:info does not show the staged release:\n%s", out)
	}

	// config:set stages too, on the staged code, and stops v2.
	if out := d.mustPlat("config:set", app, "GREETING=hi"); !strings.Contains(out, "v3 is staged at http://v3.web.localhost:"+httpPort+"/") {
		t.Errorf("config:set in manual mode said:\n%s", out)
	}
	if _, body, _ := d.get(app, "/"); !strings.Contains(body, "version=one") || strings.Contains(body, "greeting=hi") {
		t.Errorf("production serves %q after config:set in manual mode; want v1 with its old config", body)
	}
	d.mustServeHost("v3.web.localhost", "version=two greeting=hi")
	d.mustNotServeHost("v2.web.localhost")
	if got := d.releaseStatus(app, 2); got != "unstaged" {
		t.Errorf("v2 is %q after v3 was staged; want unstaged", got)
	}

	// A failing push leaves the staged v3 as it is.
	r.commit("bad", "unhealthy")
	if out, err := r.push("main"); err == nil {
		t.Errorf("an unhealthy push succeeded:\n%s", out)
	}
	r.git("reset", "-q", "--hard", "HEAD~1")
	d.mustServeHost("v3.web.localhost", "version=two greeting=hi")

	// Staging v5 stops v3 and its containers.
	r.commit("five", "")
	r.mustPush("main")
	d.mustServeHost("v5.web.localhost", "version=five greeting=hi")
	d.mustNotServeHost("v3.web.localhost")
	if n := len(d.containers(app)); n != 2 {
		t.Errorf("%d containers after staging v5; want 2 (v1 and v5)", n)
	}

	// Bad input: a clear error, nothing changes.
	for _, c := range []struct{ v, want string }{
		{"v99", "has no release v99"},
		{"v1", "already the active release"},
		{"v3", "was unstaged"},
		{"v4", "failed"},
	} {
		out, err := d.plat("promote", app, c.v)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("promote %s: err %v, output %q; want an error with %q", c.v, err, out, c.want)
		}
	}
	d.mustServe(app, "version=one")
	d.mustServeHost("v5.web.localhost", "version=five")

	// Promote: production serves v5, through its staged replica.
	out = d.mustPlat("promote", app, "v5")
	if !strings.Contains(out, "from its running staged replica") || !strings.Contains(out, "promoted web v5") {
		t.Errorf("promote output:\n%s", out)
	}
	d.mustServe(app, "version=five greeting=hi")
	d.mustServeHost("v5.web.localhost", "version=five")
	d.mustNotServeHost("v1.web.localhost")
	if out, err := d.plat("promote", app, "v1"); err == nil || !strings.Contains(out, "plat rollback web v1") {
		t.Errorf("promote of the superseded v1: err %v, output %q", err, out)
	}

	stop()
	res := <-loaded
	t.Logf("RESULT production host under staging, previews and promotion: %s", res)
	if res.OK == 0 {
		t.Error("no request of the load succeeded")
	}
	if err := res.Check(); err != nil {
		t.Errorf("production host: %v", err)
	}

	// A staged release survives a daemon restart.
	r.commit("six", "")
	r.mustPush("main")
	d.restart(syscall.SIGTERM)
	d.mustServe(app, "version=five")
	d.mustServeHost("v6.web.localhost", "version=six")
	d.mustServeHost("v5.web.localhost", "version=five")

	// Rollback stays immediate and leaves the staged v6 alone.
	d.mustPlat("rollback", app, "v1")
	d.mustServe(app, "version=one")
	d.mustServeHost("v6.web.localhost", "version=six")

	// Unstage stops it.
	if out := d.mustPlat("releases:unstage", app, "v6"); !strings.Contains(out, "Unstaged web v6") {
		t.Errorf("unstage said %q", out)
	}
	d.mustNotServeHost("v6.web.localhost")
	if got := d.releaseStatus(app, 6); got != "unstaged" {
		t.Errorf("v6 is %q after unstage; want unstaged", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(d.containers(app)) != 1 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(d.containers(app)); n != 1 {
		t.Errorf("%d containers after unstage; want 1", n)
	}
	d.mustServe(app, "version=one")
}

// TestStagedPreviewHTTPS: a staged release's preview host and the active
// release's answer over HTTPS with certificates of the local CA, and the
// push gives the https URL.
func TestStagedPreviewHTTPS(t *testing.T) {
	t.Parallel() // its own daemon, ports and engine instance
	httpsAddr := freePort(t)
	d := startDaemon(t, "--https", httpsAddr)
	_, port, _ := net.SplitHostPort(httpsAddr)
	d.createApp("web")
	d.mustPlat("release-mode:set", "web", "manual")
	r := d.newRepo("web")
	r.commit("one", "")
	if out := r.mustPush("main"); !strings.Contains(out, "v1 is staged at https://v1.web.localhost:"+port+"/") {
		t.Errorf("push output does not give the https preview URL:\n%s", out)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(d.mustPlat("ca"))) {
		t.Fatal("plat ca printed no certificate")
	}
	client := httpsClient(httpsAddr, roots)
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("https://v1.web.localhost/"); code != http.StatusOK || !strings.Contains(body, "version=one") {
		t.Errorf("https://v1.web.localhost/ = %d %q; want the staged v1", code, body)
	}
	d.mustPlat("promote", "web", "v1")
	if code, body := get("https://web.localhost/"); code != http.StatusOK || !strings.Contains(body, "version=one") {
		t.Errorf("https://web.localhost/ = %d %q after the promotion", code, body)
	}
	if code, body := get("https://v1.web.localhost/"); code != http.StatusOK || !strings.Contains(body, "version=one") {
		t.Errorf("https://v1.web.localhost/ = %d %q; the active release answers at its own host", code, body)
	}
	if _, err := client.Get("https://v9.web.localhost/"); err == nil {
		t.Error("https://v9.web.localhost/ (no such release) succeeded; want a failed handshake")
	}
}

// TestStagedSleepsAndWakes: a staged release stops its container after the
// app's idle period without requests to its preview host, and the next
// request there starts it again and is answered.
func TestStagedSleepsAndWakes(t *testing.T) {
	t.Parallel() // its own daemon, ports and engine instance
	d := startDaemon(t)
	const app = "nap"
	r := d.deployedApp(app, "one")
	d.mustPlat("release-mode:set", app, "manual")
	d.mustPlat("scale", app, "--min", "0", "--idle", "1s")
	r.commit("two", "")
	r.mustPush("main")
	// The push returns about a second after v2 is staged, more under load:
	// v2 may have slept already and this request woken it. Only a sleep
	// after it counts.
	d.mustServeHost("v2.nap.localhost", "version=two")
	const slept, woke = "staged v2 had no requests", "staged v2 serving its preview host"
	sleeps := d.countEvents(app, "sleeping", slept)
	waitFor(t, 30*time.Second, "the staged v2 to sleep", func() bool {
		return d.countEvents(app, "sleeping", slept) > sleeps
	})
	running, _ := exec.Command("docker", "ps", "-q", "--filter", "label=plat.instance="+d.instance, "--filter", "label=plat.release=2").Output()
	if len(strings.TrimSpace(string(running))) != 0 {
		t.Errorf("the staged v2 sleeps but its container still runs")
	}
	wakes := d.countEvents(app, "woke", woke)
	d.mustServeHost("v2.nap.localhost", "version=two")
	if d.countEvents(app, "woke", woke) <= wakes {
		t.Error("no wake event of the staged v2")
	}
	if got := d.releaseStatus(app, 2); got != "staged" {
		t.Errorf("v2 is %q after its sleep; want staged", got)
	}
}

// countEvents counts app's events of kind whose message contains text.
func (d *daemon) countEvents(app, kind, text string) int {
	d.t.Helper()
	n := 0
	for _, e := range d.events(app) {
		if e.Kind == kind && strings.Contains(e.Message, text) {
			n++
		}
	}
	return n
}

// Promoting the release a shadow mirrors to ends the shadow first: once
// live, the release would otherwise get each live request twice.
func TestPromoteEndsItsShadow(t *testing.T) {
	t.Parallel() // its own daemon, ports and engine instance
	d := startDaemon(t)
	const app = "shp"
	r := d.deployedApp(app, "one")
	d.mustPlat("release-mode:set", app, "manual")
	r.commit("two", "")
	r.mustPush("main")
	d.mustServeHost("v2.shp.localhost", "version=two")
	d.mustPlat("shadow", app, "v2")
	if out := d.mustPlat("shadow", app); strings.Contains(out, "has no shadow") {
		t.Fatalf("no shadow of the staged v2: %q", out)
	}
	d.mustPlat("promote", app, "v2")
	d.mustServe(app, "version=two")
	if out := d.mustPlat("shadow", app); !strings.Contains(out, "has no shadow") {
		t.Errorf("the shadow of v2 still runs after v2 was promoted: %q", out)
	}
	if !strings.Contains(d.mustPlat("events", app), "stopped: it is being promoted") {
		t.Error("no event says the shadow stopped for the promotion")
	}
}
