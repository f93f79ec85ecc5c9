package daemon_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/plat-paas/plat/internal/browsertest"
)

// runBeside starts a container of app's release version beside the live
// one, labelled like plat's app containers, and returns its ID. It stands
// in for a staged release (plat release-mode:set manual) until that exists
// on this branch: the shadow looks for running app containers of a release.
func runBeside(t *testing.T, d *daemon, app string, version int) string {
	t.Helper()
	var rels []struct {
		Version int    `json:"version"`
		ImageID string `json:"image_id"`
	}
	if err := json.Unmarshal([]byte(d.mustPlat("releases", app, "--json")), &rels); err != nil {
		t.Fatal(err)
	}
	image := ""
	for _, r := range rels {
		if r.Version == version {
			image = r.ImageID
		}
	}
	if image == "" {
		t.Fatalf("no image for %s v%d in %+v", app, version, rels)
	}
	out, err := exec.Command("docker", "run", "-d", "--name", d.instance+"-"+app+"-shadowtarget",
		"--label", "plat.role=app", "--label", "plat.instance="+d.instance, "--label", "plat.app="+app,
		"--label", "plat.release="+strconv.Itoa(version), "-e", "PORT=5000", "-p", "127.0.0.1::5000", image).CombinedOutput()
	if err != nil {
		t.Fatalf("docker run: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

type shadowInfo struct {
	Active    bool              `json:"active"`
	Release   string            `json:"release"`
	Mirrored  uint64            `json:"mirrored"`
	Dropped   uint64            `json:"dropped"`
	Errors    uint64            `json:"errors"`
	Match     uint64            `json:"match"`
	Mismatch  uint64            `json:"mismatch"`
	Pairs     map[string]uint64 `json:"pairs"`
	LiveP99   string            `json:"live_p99"`
	ShadowP99 string            `json:"shadow_p99"`
}

// TestShadowTraffic: on the real engine, under live load with zero failed
// requests, `plat shadow` mirrors the live app's requests to another
// release running beside it and reports mirrored requests, status matches
// and latencies; shadow:stop ends it; shadowing the active release, an
// unknown or a stopped release, or a bad percentage is refused with a
// clear error and starts nothing; start and stop are events; the
// dashboard's app page shows the comparison while it runs.
func TestShadowTraffic(t *testing.T) {
	t.Parallel()
	requireTools(t)
	chromium := browsertest.Require(t)
	d := startDaemon(t)
	r := d.deployedApp("shady", "v1")
	r.commit("v2", "")
	r.mustPush("main")
	d.mustServe("shady", "version=v2")
	stop := liveLoad(t, d, "shady", "/")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"shadow", "shady", "v2"}, "active release"},
		{[]string{"shadow", "shady", "v9"}, "no release v9"},
		{[]string{"shadow", "shady", "v1"}, "not running"},
		{[]string{"shadow", "shady", "v1", "--percent", "140"}, "give 1 to 100"},
		{[]string{"shadow", "shady", "v1", "--methods", "GET,BREW"}, "cannot be mirrored"},
		{[]string{"shadow:stop", "shady"}, "has no shadow"},
	} {
		if out, err := d.plat(c.args...); err == nil || !strings.Contains(out, c.want) {
			t.Errorf("plat %s: err %v, output %q; want an error saying %q", strings.Join(c.args, " "), err, out, c.want)
		}
	}
	if out := d.mustPlat("shadow", "shady"); !strings.Contains(out, "has no shadow") {
		t.Errorf("shadow before any: %q", out)
	}

	runBeside(t, d, "shady", 1)
	out := d.mustPlat("shadow", "shady", "v1")
	if !strings.Contains(out, "Mirroring 100% of shady's GET,HEAD requests to v1") {
		t.Errorf("plat shadow shady v1 printed %q", out)
	}
	var sh shadowInfo
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := json.Unmarshal([]byte(d.mustPlat("shadow", "shady", "--json")), &sh); err != nil {
			t.Fatal(err)
		}
		if sh.Match >= 20 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !sh.Active || sh.Release != "v1" || sh.Match < 20 || sh.Mismatch != 0 || sh.LiveP99 == "" || sh.ShadowP99 == "" {
		t.Errorf("shadow --json: %+v; want v1 active with 20+ matching answers and latencies", sh)
	}
	if out := d.mustPlat("shadow", "shady"); !strings.Contains(out, "status match") || !strings.Contains(out, "p99 live / shadow") {
		t.Errorf("plat shadow shady:\n%s", out)
	}

	// The dashboard's app page shows the comparison while the shadow runs.
	b := browser{ctx: browsertest.New(t, chromium)}
	b.do(t,
		chromedp.Navigate("http://"+d.apiAddr+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), d.token),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS(`.app-card[data-app="shady"]`)),
		chromedp.Navigate("http://"+d.apiAddr+"/apps/shady"),
		chromedp.WaitVisible(chromedp.CSS("#shadow-panel")),
	)
	b.wait(t, `document.querySelector("#shadow-summary")?.textContent.includes("to v1") && Number(document.querySelector('#shadow-facts dd[data-key="Status match"]')?.textContent) > 0`, 10*time.Second)

	// The live app never sees the mirror marker, even when a client sends it.
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.httpAddr+"/?echo=Plat-Shadow", nil)
	req.Host = "shady.localhost"
	req.Header.Set("Plat-Shadow", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "version=v2") || !strings.Contains(string(body), "Plat-Shadow=[]") {
		t.Errorf("live answer %q: want v2 without Plat-Shadow", body)
	}

	out = d.mustPlat("shadow:stop", "shady")
	if !strings.Contains(out, "Stopped shadowing shady to v1") {
		t.Errorf("shadow:stop printed %q", out)
	}
	if out := d.mustPlat("shadow", "shady"); !strings.Contains(out, "has no shadow") {
		t.Errorf("shadow after stop: %q", out)
	}
	// A page opened now shows no stopped shadow. (The live page hides its
	// panel on the next read, within ~3 s; under a full suite's load that
	// wait has timed out, so the page is read afresh.)
	b.do(t, chromedp.Navigate("http://"+d.apiAddr+"/apps/shady"), chromedp.WaitVisible(chromedp.CSS("#app-status")))
	b.wait(t, `document.querySelector("#shadow-panel")?.dataset.read === "1" && document.querySelector("#shadow-panel").hidden`, 10*time.Second)
	events := d.mustPlat("events", "shady")
	for _, want := range []string{"shadow started: 100% of GET,HEAD requests mirrored to v1", "shadow of v1 stopped"} {
		if !strings.Contains(events, want) {
			t.Errorf("events lack %q:\n%s", want, events)
		}
	}
	if sent, failed := stop(); failed != 0 || sent == 0 {
		t.Errorf("live load while shadowing: %d of %d requests failed", failed, sent)
	}
}
