package daemon_test

import (
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// previewPS is an item of `plat previews --json`.
type previewPS struct {
	Branch, Label, App, URL, Status string
	Release                         int
	LastPush                        time.Time `json:"last_push"`
}

func (d *daemon) previews(app string) []previewPS {
	d.t.Helper()
	var ps []previewPS
	if err := json.Unmarshal([]byte(d.mustPlat("previews", app, "--json")), &ps); err != nil {
		d.t.Fatal(err)
	}
	return ps
}

// leftovers lists what the engine still holds of the app record name:
// containers (by label), images (by tag) and networks (by name).
func (d *daemon) leftovers(name string) []string {
	d.t.Helper()
	var out []string
	for _, args := range [][]string{
		{"ps", "-aq", "--filter", "label=plat.instance=" + d.instance, "--filter", "label=plat.app=" + name},
		{"images", "-q", d.instance + "/" + name},
		{"network", "ls", "-q", "--filter", "label=plat.instance=" + d.instance, "--filter", "name=" + d.instance + "-" + name},
	} {
		b, err := exec.Command("docker", args...).Output()
		if err != nil {
			d.t.Fatalf("docker %v: %v", args, err)
		}
		for _, id := range strings.Fields(string(b)) {
			out = append(out, args[0]+" "+id)
		}
	}
	return out
}

// TestBranchPreviews pushes branches beside a production app under load:
// each runs at <slug>.<app>.localhost with the app's config and its
// preview-only values, updates on the next push, is refused with a reason
// when its label is reserved, taken or over the cap, survives a daemon
// restart, sleeps when idle and wakes on its host, and leaves nothing in
// the engine once its branch (or the app) is deleted; production's answers
// never change and no request to it fails. On main before previews any
// branch but main was refused.
func TestBranchPreviews(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--max-previews", "2", "--preview-idle", "4s")
	const app = "shop"
	r := d.deployedApp(app, "prod1")
	d.mustPlat("config:set", app, "GREETING=hello")
	d.mustServe(app, "version=prod1 greeting=hello")
	stop := underLoad(d, app)

	// A branch that is not a DNS label is slugged; the push says where.
	const branch, label = "feature/Login_Page", "feature-login-page"
	host := label + "." + app
	r.git("checkout", "-q", "-b", branch)
	r.commit("pv1", "")
	started := time.Now()
	if out := r.mustPush(branch); !strings.Contains(out, "http://"+host+".localhost") {
		t.Errorf("the push does not say the preview's URL:\n%s", out)
	}
	d.mustServe(host, "version=pv1 greeting=hello") // inherits the app's config
	t.Logf("first push of a preview to served: %s", time.Since(started).Round(time.Millisecond))
	d.mustServe(app, "version=prod1 greeting=hello")

	// A preview-only value, taken at the next push, which updates it.
	d.mustPlat("config:set", app, "--preview", "GREETING=preview")
	r.commit("pv2", "")
	started = time.Now()
	r.mustPush(branch)
	d.mustServe(host, "version=pv2 greeting=preview")
	t.Logf("update push of a preview to served: %s", time.Since(started).Round(time.Millisecond))
	d.mustServe(app, "version=prod1 greeting=hello")
	if got := d.mustPlat("config", app); strings.Contains(got, "preview") {
		t.Errorf("the preview-only value leaked into the app's config:\n%s", got)
	}
	if got := d.mustPlat("config", app, "--preview"); got != "GREETING=preview\n" {
		t.Errorf("plat config --preview: %q", got)
	}

	ps := d.previews(app)
	if len(ps) != 1 || ps[0].Branch != branch || ps[0].Label != label || ps[0].Release != 2 ||
		ps[0].URL != "http://"+host+".localhost:"+portOf(d.httpAddr)+"/" || ps[0].LastPush.IsZero() ||
		(ps[0].Status != "running" && ps[0].Status != "sleeping") {
		t.Errorf("plat previews: %+v", ps)
	}
	if out := d.mustPlat("previews", app); !strings.Contains(out, branch) || !strings.Contains(out, "v2") {
		t.Errorf("plat previews:\n%s", out)
	}
	if out := d.mustPlat("apps"); strings.Contains(out, label) {
		t.Errorf("plat apps lists the preview as an app:\n%s", out)
	}
	// Its own logs and releases.
	if code, _, err := d.get(host, "/?print=preview-marker"); err != nil || code != http.StatusOK {
		t.Fatalf("GET preview: %d %v", code, err)
	}
	waitFor(t, 10*time.Second, "the preview's log line", func() bool {
		out, _ := d.plat("logs", app, "--preview", branch)
		return strings.Contains(out, "preview-marker")
	})
	if out := d.mustPlat("logs", app); strings.Contains(out, "preview-marker") {
		t.Errorf("the preview's output is in the app's logs:\n%s", out)
	}
	if out := d.mustPlat("releases", app, "--preview", label); !strings.Contains(out, "v2") {
		t.Errorf("plat releases --preview:\n%s", out)
	}

	// Refusals: a reserved label, a slug another branch has, the cap.
	refused := func(b, want string) {
		t.Helper()
		r.git("checkout", "-q", "-B", b)
		out, err := r.push(b)
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("push of %s: err %v, want a refusal saying %q:\n%s", b, err, want, out)
		}
	}
	refused("v2", `"v2" is reserved`)
	refused("www", `"www" is reserved`)
	refused("Feature/login-page", "both make the host label")
	// A first push that fails leaves no preview behind.
	r.git("checkout", "-q", "-B", "broken")
	r.git("rm", "-q", "Dockerfile")
	r.commit("broken1", "")
	if out, err := r.push("broken"); err == nil || !strings.Contains(out, "The preview was not created") {
		t.Errorf("push of a branch that cannot build: err %v\n%s", err, out)
	}
	if left := d.leftovers(app + "_broken"); len(left) > 0 {
		t.Errorf("the failed preview left %v", left)
	}
	if ps := d.previews(app); len(ps) != 1 {
		t.Errorf("after a failed first push: %+v, want only %s", ps, branch)
	}
	r.git("checkout", "-q", "-B", "other", branch)
	r.commit("other1", "")
	r.mustPush("other")
	d.mustServe("other."+app, "version=other1")
	refused("third", "already has 2 previews (feature/Login_Page, other)")
	if ps := d.previews(app); len(ps) != 2 {
		t.Errorf("after the refusals: %d previews, want 2: %+v", len(ps), ps)
	}

	// Deleting the branch deletes the preview, and everything of it.
	name := app + "_" + label
	if len(d.leftovers(name)) == 0 {
		t.Fatal("no containers, images or networks found for the preview: the check below proves nothing")
	}
	started = time.Now()
	if out := r.mustPush(":" + branch); !strings.Contains(out, "Preview of "+branch+" deleted") {
		t.Errorf("branch deletion output:\n%s", out)
	}
	t.Logf("branch deletion (preview destroyed): %s", time.Since(started).Round(time.Millisecond))
	checkLoad(t, "production while previews were pushed, updated and deleted", stop())
	if n, m := d.eventCount(app, "preview"), d.eventCount(app, "preview-deleted"); n != 3 || m != 1 {
		t.Errorf("the app's timeline has %d preview and %d preview-deleted events, want 3 and 1: %+v", n, m, d.events(app))
	}
	d.mustServe(app, "version=prod1 greeting=hello")
	gone := func(when string) {
		t.Helper()
		if left := d.leftovers(name); len(left) > 0 {
			t.Errorf("%s: the deleted preview left %v", when, left)
		}
		if code, body, err := d.get(host, "/"); err != nil || code == http.StatusOK || strings.Contains(body, "version=") {
			t.Errorf("%s: the deleted preview's host answers %d %q %v", when, code, body, err)
		}
	}
	gone("after the deletion")

	// A restart brings back the other preview, not the deleted one.
	d.restart(syscall.SIGTERM)
	gone("after a daemon restart")
	d.mustServe("other."+app, "version=other1")
	if ps := d.previews(app); len(ps) != 1 || ps[0].Branch != "other" {
		t.Errorf("after a restart: %+v", ps)
	}

	// Idle, it sleeps (production does not); a request wakes it.
	waitFor(t, 30*time.Second, "the idle preview to sleep", func() bool { return d.previews(app)[0].Status == "sleeping" })
	if got := d.appState(app).Status; got != "running" {
		t.Errorf("production is %q after the preview slept", got)
	}
	started = time.Now()
	d.mustServe("other."+app, "version=other1")
	t.Logf("first request to the sleeping preview answered after %s", time.Since(started).Round(time.Millisecond))

	// Destroying the app removes its previews.
	d.mustPlat("apps:destroy", app, "--confirm", app)
	if left := d.leftovers(app + "_other"); len(left) > 0 {
		t.Errorf("apps:destroy left the preview's %v", left)
	}
}

func portOf(addr string) string {
	_, port, _ := strings.Cut(addr, ":")
	return port
}

// TestPreviewHTTPS serves a preview over HTTPS with a local-CA certificate,
// which its host gets only once the preview exists; the push gives the
// https URL. On main before previews the branch push was refused.
func TestPreviewHTTPS(t *testing.T) {
	t.Parallel()
	httpsAddr := freePort(t)
	d := startDaemon(t, "--https", httpsAddr)
	d.createApp("web")
	r := d.newRepo("web")
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(d.mustPlat("ca"))) {
		t.Fatal("plat ca printed no certificate")
	}
	client := httpsClient(httpsAddr, roots)
	const url = "https://feature-x.web.localhost/"
	if resp, err := client.Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("%s got a certificate before the preview existed", url)
	}
	r.git("checkout", "-q", "-b", "feature-x")
	r.commit("tls-preview", "")
	_, port, _ := strings.Cut(httpsAddr, ":")
	if out := r.mustPush("feature-x"); !strings.Contains(out, "https://feature-x.web.localhost:"+port+"/") {
		t.Errorf("the push does not give the preview's https URL:\n%s", out)
	}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "version=tls-preview") {
		t.Errorf("%s = %d %q", url, resp.StatusCode, body)
	}
	r.mustPush(":feature-x")
	if resp, err := client.Get(url); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(body), "version=") {
			t.Errorf("after the deletion %s = %d %q", url, resp.StatusCode, body)
		}
	}
}

// TestPreviewBackupRestore restores a preview on a new host: its image is
// rebuilt from its branch's commit in its app's repository (a preview has
// no repository of its own). Before, the backup warned that the preview had
// no repository and the restored preview never came back.
func TestPreviewBackupRestore(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.createApp("web")
	r := d.newRepo("web")
	r.git("checkout", "-q", "-b", "feat")
	r.commit("f1", "")
	r.mustPush("feat")
	d.mustServe("feat.web", "version=f1")

	file := filepath.Join(t.TempDir(), "plat-backup.tar.gz")
	if out, err := platDaemon(t, "backup", file, "--data", d.data); err != nil || strings.Contains(out, "no git repository") {
		t.Fatalf("plat daemon backup: %v\n%s", err, out)
	}
	d.stop(syscall.SIGTERM)
	d.cleanupDocker()
	if err := os.RemoveAll(d.data); err != nil {
		t.Fatal(err)
	}
	if out, err := platDaemon(t, "restore", file, "--data", d.data); err != nil {
		t.Fatalf("plat daemon restore: %v\n%s", err, out)
	}
	d.start()
	waitFor(t, 2*time.Minute, "the preview to be rebuilt", func() bool {
		code, body, err := d.get("feat.web", "/")
		return err == nil && code == http.StatusOK && strings.Contains(body, "version=f1")
	})
	if ps := d.previews("web"); len(ps) != 1 || ps[0].Branch != "feat" || ps[0].Release != 1 {
		t.Errorf("after the restore: %+v", ps)
	}
}
