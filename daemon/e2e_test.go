package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type release struct {
	Version     int               `json:"version"`
	Cause       string            `json:"cause"`
	Status      string            `json:"status"`
	Reason      string            `json:"reason"`
	ImageID     string            `json:"image_id"`
	GitSHA      string            `json:"git_sha"`
	ConfigKeys  []string          `json:"config_keys"`
	Env         map[string]string `json:"env"` // must stay empty: values only through the config endpoint
	ContainerID string            `json:"container_id"`
}

// releases reads app's releases through `plat releases --json`, oldest first.
func (d *daemon) releases(app string) []release {
	d.t.Helper()
	out := d.mustPlat("releases", app, "--json")
	var rs []release
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		d.t.Fatalf("releases --json: %v\n%s", err, out)
	}
	// The CLI lists newest first; sort oldest first.
	for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
		rs[i], rs[j] = rs[j], rs[i]
	}
	if len(rs) > 1 && rs[0].Version > rs[1].Version {
		for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
			rs[i], rs[j] = rs[j], rs[i]
		}
	}
	return rs
}

func (d *daemon) assertReleases(app string, want ...string) []release {
	d.t.Helper()
	rs := d.releases(app)
	var got []string
	active := 0
	for _, r := range rs {
		got = append(got, fmt.Sprintf("v%d %s %s", r.Version, r.Cause, r.Status))
		if r.Status == "active" {
			active++
		}
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		d.t.Fatalf("releases of %s:\n got %v\nwant %v", app, got, want)
	}
	if active > 1 {
		d.t.Fatalf("%d active releases", active)
	}
	return rs
}

// TestPushDeployConfigRollback walks the life of an app: pushes, a failing
// health check, a broken build, a crashing app, a config change and
// rollbacks; after every failure the previous release keeps serving.
func TestPushDeployConfigRollback(t *testing.T) {
	d := startDaemon(t)
	d.createApp("shop")
	r := d.newRepo("shop")

	r.commit("one", "")
	out := r.mustPush("main")
	for _, want := range []string{"remote: -----> Building shop v1", "remote: -----> Switched traffic to v1", "is live at http://shop.localhost"} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	d.mustServe("shop", "version=one")
	v1 := d.containers("shop")
	if code, _, err := d.get("shop", "/?print=line-for-the-log"); err != nil || code != http.StatusOK {
		t.Fatalf("GET ?print: %d %v", code, err)
	}
	if out := d.mustPlat("logs", "shop", "-n", "10"); !strings.Contains(out, "line-for-the-log") {
		t.Errorf("plat logs lacks the line the app printed:\n%s", out)
	}

	r.commit("two", "")
	out = r.mustPush("main")
	if !strings.Contains(out, " CACHED") {
		t.Errorf("second build reused no layer:\n%s", out)
	}
	d.mustServe("shop", "version=two")
	if now := d.containers("shop"); len(now) != 1 || now[0] == v1[0] {
		t.Errorf("after v2: containers %v, v1 was %v; want only v2's", now, v1)
	}
	d.assertReleases("shop", "v1 push superseded", "v2 push active")

	t.Run("failing health check is rejected and v2 keeps serving", func(t *testing.T) {
		d.mustPlat("health:set", "shop", "--deadline", "3s")
		r.commit("three", "unhealthy")
		out, err := r.push("main")
		if err == nil || !strings.Contains(out, "health check failed") || !strings.Contains(out, "answered 500") {
			t.Fatalf("push of an unhealthy app: err %v\n%s", err, out)
		}
		d.mustServe("shop", "version=two")
		d.assertReleases("shop", "v1 push superseded", "v2 push active", "v3 push failed")
	})

	t.Run("crashing app is rejected with its last output", func(t *testing.T) {
		r.commit("four", "crash")
		out, err := r.push("main")
		if err == nil || !strings.Contains(out, "exited with code 3") || !strings.Contains(out, "boom: testapp crashed on purpose") {
			t.Fatalf("push of a crashing app: err %v\n%s", err, out)
		}
		d.mustServe("shop", "version=two")
	})

	t.Run("broken Dockerfile is rejected with the build error", func(t *testing.T) {
		r.write("Dockerfile", "FROM scratch\nCOPY does-not-exist /x\n")
		r.commit("five", "")
		out, err := r.push("main")
		if err == nil || !strings.Contains(out, "build failed") || !strings.Contains(out, "does-not-exist") {
			t.Fatalf("push of a broken Dockerfile: err %v\n%s", err, out)
		}
		d.mustServe("shop", "version=two")
	})

	t.Run("repository without a Dockerfile is rejected", func(t *testing.T) {
		r.git("rm", "-q", "Dockerfile")
		r.commit("six", "")
		out, err := r.push("main")
		if err == nil || !strings.Contains(out, "no Dockerfile") {
			t.Fatalf("push without Dockerfile: err %v\n%s", err, out)
		}
		r.git("reset", "-q", "--hard", "HEAD~2") // back to the commit of v4
		d.mustServe("shop", "version=two")
	})

	// Other branches deploy previews (TestBranchPreviews); tags, and
	// more than one branch per push, are refused before any build.
	t.Run("push of a tag or of two branches is refused", func(t *testing.T) {
		out, err := r.push("HEAD:refs/tags/v9")
		if err == nil || !strings.Contains(out, "only branches deploy") {
			t.Fatalf("push of a tag: err %v\n%s", err, out)
		}
		out, err = r.push("HEAD:refs/heads/a", "HEAD:refs/heads/b")
		if err == nil || !strings.Contains(out, "push one branch at a time") {
			t.Fatalf("push of two branches: err %v\n%s", err, out)
		}
	})

	t.Run("config:set makes a release the app sees, without a build", func(t *testing.T) {
		out := d.mustPlat("config:set", "shop", "GREETING=hi")
		if strings.Contains(out, "Building") {
			t.Errorf("config:set rebuilt:\n%s", out)
		}
		d.mustServe("shop", "version=two greeting=hi")
		rs := d.releases("shop")
		last := rs[len(rs)-1]
		if last.Cause != "config" || last.Status != "active" || !slices.Contains(last.ConfigKeys, "GREETING") || last.Env != nil || last.ImageID != rs[1].ImageID {
			t.Fatalf("config release: %+v (v2 image %s)", last, rs[1].ImageID)
		}
		if out, err := d.plat("config:set", "shop", "1BAD=x"); err == nil {
			t.Errorf("invalid key accepted:\n%s", out)
		}
	})

	t.Run("rollback brings back the previous image and config", func(t *testing.T) {
		before := d.imageCount(t)
		out := d.mustPlat("rollback", "shop")
		if strings.Contains(out, "Building") {
			t.Errorf("rollback rebuilt:\n%s", out)
		}
		d.mustServe("shop", "version=two greeting=\n")
		rs := d.releases("shop")
		last := rs[len(rs)-1]
		if last.Cause != "rollback" || last.Status != "active" || last.Reason != "rollback to v2" {
			t.Fatalf("rollback release: %+v", last)
		}
		if after := d.imageCount(t); after != before {
			t.Errorf("rollback changed the number of images: %d → %d", before, after)
		}
		// Back to the config release by number: image and GREETING return.
		cfgVersion := rs[len(rs)-2].Version
		d.mustPlat("rollback", "shop", fmt.Sprintf("v%d", cfgVersion))
		d.mustServe("shop", "version=two greeting=hi")
		if out, err := d.plat("config", "shop"); err != nil || !strings.Contains(out, "GREETING=hi") {
			t.Errorf("config after rollback: %v\n%s", err, out)
		}
	})

	t.Run("rollback to a failed or unknown release is refused", func(t *testing.T) {
		for v, want := range map[string]string{"v3": "never went live", "v99": "no release v99"} {
			out, err := d.plat("rollback", "shop", v)
			if err == nil || !strings.Contains(out, want) {
				t.Errorf("rollback %s: err %v, want %q in\n%s", v, err, want, out)
			}
		}
		d.mustServe("shop", "version=two greeting=hi")
	})

	t.Run("exactly one container and one active release", func(t *testing.T) {
		if cs := d.containers("shop"); len(cs) != 1 {
			t.Errorf("containers of shop: %v", cs)
		}
		active := 0
		for _, r := range d.releases("shop") {
			if r.Status == "active" {
				active++
			}
		}
		if active != 1 {
			t.Errorf("%d active releases", active)
		}
	})

	t.Run("destroy removes containers and images", func(t *testing.T) {
		if out, err := d.plat("apps:destroy", "shop"); err == nil {
			t.Fatalf("destroy without --confirm succeeded:\n%s", out)
		}
		d.mustPlat("apps:destroy", "shop", "--confirm", "shop")
		if cs := d.containers("shop"); len(cs) != 0 {
			t.Errorf("containers left: %v", cs)
		}
		if code, _, _ := d.get("shop", "/"); code != http.StatusNotFound {
			t.Errorf("destroyed app answered %d, want 404", code)
		}
		imgs, _ := exec.Command("docker", "images", "-q", "--filter", "reference="+d.instance+"/shop").Output()
		if len(strings.Fields(string(imgs))) != 0 {
			t.Errorf("images left: %s", imgs)
		}
	})
}

// imageCount counts the daemon's images (and their layers).
func (d *daemon) imageCount(t *testing.T) int {
	out, err := exec.Command("docker", "images", "-qa", "--filter", "label=plat.instance="+d.instance).Output()
	if err != nil {
		t.Fatal(err)
	}
	return len(strings.Fields(string(out)))
}

// TestBadInputAndAuth covers names, unknown apps and tokens.
func TestBadInputAndAuth(t *testing.T) {
	d := startDaemon(t)
	for _, name := range []string{"Bad", "-x", "a_b", "x-", strings.Repeat("a", 64), "plat"} {
		if out, err := d.plat("apps:create", name); err == nil {
			t.Errorf("apps:create %q succeeded:\n%s", name, out)
		}
	}
	d.createApp("dup")
	if out, err := d.plat("apps:create", "dup"); err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("duplicate app: %v\n%s", err, out)
	}
	if out, err := d.plat("apps:info", "nope"); err == nil || !strings.Contains(out, `no app named "nope"`) {
		t.Errorf("unknown app: %v\n%s", err, out)
	}

	// API: no token and a wrong token get 401 and nothing else.
	for _, auth := range []string{"", "Bearer wrong", "Basic cGxhdDp3cm9uZw=="} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+d.apiAddr+"/api/apps", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("auth %q: status %d, want 401", auth, resp.StatusCode)
		}
	}

	// git: a wrong token is refused; an unknown app is refused.
	r := d.newRepo("dup")
	r.commit("one", "")
	r.git("config", "credential.helper", "")
	r.git("remote", "set-url", "platform", "http://plat:wrong@"+d.apiAddr+"/git/dup.git")
	if out, err := r.push("main"); err == nil || !strings.Contains(out, "Authentication failed") {
		t.Errorf("push with a wrong token: %v\n%s", err, out)
	}
	r.git("remote", "set-url", "platform", "http://plat:"+d.token+"@"+d.apiAddr+"/git/nope.git")
	if out, err := r.push("main"); err == nil || !strings.Contains(out, "not found") {
		t.Errorf("push to an unknown app: %v\n%s", err, out)
	}
}

// TestRestartKeepsServing restarts the daemon (cleanly and with SIGKILL in
// the middle of a deploy): the app is served by the same container after.
func TestRestartKeepsServing(t *testing.T) {
	d := startDaemon(t)
	r := d.deployedApp("keep", "one")
	before := d.containers("keep")

	d.restart(syscall.SIGTERM)
	d.mustServe("keep", "version=one")
	if after := d.containers("keep"); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("containers changed across a restart: %v → %v", before, after)
	}

	// A stopped container of the active release is started again.
	if out, err := exec.Command("docker", "stop", "-t", "1", before[0]).CombinedOutput(); err != nil {
		t.Fatalf("docker stop: %v\n%s", err, out)
	}
	d.restart(syscall.SIGTERM)
	d.mustServe("keep", "version=one")
	if after := d.containers("keep"); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("the stopped container was replaced, not started: %v → %v", before, after)
	}

	// SIGKILL while the next version is in its health check.
	d.mustPlat("health:set", "keep", "--deadline", "60s")
	r.commit("two", "slowstart")
	pushErr := make(chan error, 1)
	go func() { _, err := r.push("main"); pushErr <- err }()
	waitFor(t, 60*time.Second, "the v2 container's health check", func() bool { return len(d.containers("keep")) == 2 })
	d.stop(syscall.SIGKILL)
	if err := <-pushErr; err == nil {
		t.Errorf("the push succeeded although the daemon died during its health check")
	}
	d.start()
	d.mustServe("keep", "version=one")
	if after := d.containers("keep"); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("after SIGKILL and restart: containers %v, want only %v", after, before)
	}
	d.assertReleases("keep", "v1 push active", "v2 push failed")
	// The branch was not updated, so pushing the same commit deploys it.
	head := strings.TrimSpace(r.git("rev-parse", "HEAD"))
	remote, _ := exec.Command("git", "--git-dir", filepath.Join(d.data, "repos", "keep.git"), "rev-parse", "main").Output()
	if strings.TrimSpace(string(remote)) == head {
		t.Errorf("main moved to the killed push's commit %s", head)
	}
}

// TestConcurrentPushes pushes two different commits at once: one deploys,
// the other waits, then is refused because main moved; never two active.
func TestConcurrentPushes(t *testing.T) {
	d := startDaemon(t)
	d.createApp("race")
	a, b := d.newRepo("race"), d.newRepo("race")
	a.commit("from-a", "")
	b.commit("from-b", "")
	var wg sync.WaitGroup
	outs, errs := make([]string, 2), make([]error, 2)
	for i, r := range []*repo{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); outs[i], errs[i] = r.push("main") }()
	}
	wg.Wait()
	okCount := 0
	winner := ""
	for i, err := range errs {
		if err == nil {
			okCount++
			winner = []string{"from-a", "from-b"}[i]
		} else if !strings.Contains(outs[i], "main moved while this push waited") && !strings.Contains(outs[i], "fetch first") && !strings.Contains(outs[i], "non-fast-forward") {
			t.Errorf("losing push said:\n%s", outs[i])
		}
	}
	if okCount != 1 {
		t.Fatalf("%d pushes succeeded, want 1:\n%s\n---\n%s", okCount, outs[0], outs[1])
	}
	d.mustServe("race", "version="+winner)
	rs := d.releases("race")
	active := 0
	for _, r := range rs {
		if r.Status == "active" {
			active++
		}
	}
	if active != 1 || len(d.containers("race")) != 1 {
		t.Fatalf("releases %+v, containers %v", rs, d.containers("race"))
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestImageRetention keeps the images of the newest releases only; a
// rollback to a release whose image is gone says so.
func TestImageRetention(t *testing.T) {
	d := startDaemon(t, "--retain", "2")
	d.createApp("keep2")
	r := d.newRepo("keep2")
	for _, v := range []string{"one", "two", "three"} {
		r.commit(v, "")
		r.mustPush("main")
	}
	d.mustServe("keep2", "version=three")
	rs := d.releases("keep2")
	for _, rel := range rs {
		err := exec.Command("docker", "image", "inspect", rel.ImageID).Run()
		if kept := rel.Version >= 2; kept != (err == nil) {
			t.Errorf("v%d image present=%v, want %v", rel.Version, err == nil, kept)
		}
	}
	if out, err := d.plat("rollback", "keep2", "v1"); err == nil || !strings.Contains(out, "image of v1 was removed") {
		t.Errorf("rollback to a pruned release: %v\n%s", err, out)
	}
	d.mustPlat("rollback", "keep2", "v2")
	d.mustServe("keep2", "version=two")
}
