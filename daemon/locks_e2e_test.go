package daemon_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// platWithin runs the CLI like d.plat, killing it after timeout: a command
// that waits behind a lock fails the test instead of hanging it.
func (d *daemon) platWithin(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, platBin, args...)
	cmd.Env = d.env()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("plat %s still running after %s", strings.Join(args, " "), timeout)
	}
	return string(out), err
}

func (d *daemon) mustPlatWithin(timeout time.Duration, args ...string) string {
	d.t.Helper()
	out, err := d.platWithin(timeout, args...)
	if err != nil {
		d.t.Fatalf("plat %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// stallPush plays a git client that asks for app's refs, starts a push
// (its commands and the first bytes of a pack) and then sends nothing
// more, keeping the connection open. It returns a func that drops it.
func (d *daemon) stallPush(app string) (drop func()) {
	d.t.Helper()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("git:"+d.token))
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.apiAddr+"/git/"+app+".git/info/refs?service=git-receive-pack", nil)
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		d.t.Fatalf("info/refs: %v %v", resp, err)
	}
	resp.Body.Close()

	conn, err := net.Dial("tcp", d.apiAddr)
	if err != nil {
		d.t.Fatal(err)
	}
	zero, sha := strings.Repeat("0", 40), strings.Repeat("ab", 20)
	cmd := zero + " " + sha + " refs/heads/main\x00report-status side-band-64k\n"
	body := fmt.Sprintf("%04x%s0000PACK\x00\x00\x00\x02\x00\x00\x00\x05", len(cmd)+4, cmd)
	fmt.Fprintf(conn, "POST /git/%s.git/git-receive-pack HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\n"+
		"Content-Type: application/x-git-receive-pack-request\r\nContent-Length: 1000000\r\n\r\n%s", app, d.apiAddr, auth, body)
	d.t.Cleanup(func() { conn.Close() })
	return func() { conn.Close() }
}

// TestStalledPushBlocksNothing: a push whose client stops in the middle of
// its body holds no lock: meanwhile the app's config changes (a deploy),
// a crashed replica is recovered, and the app sleeps and wakes. On the main
// before this change the deploy lock was taken after the first pkt-line
// and config:set waited forever.
func TestStalledPushBlocksNothing(t *testing.T) {
	d := startDaemon(t)
	const app = "stalled"
	d.deployedApp(app, "one")
	drop := d.stallPush(app)
	defer drop()
	time.Sleep(500 * time.Millisecond) // the daemon reads the partial body

	out := d.mustPlatWithin(60*time.Second, "config:set", app, "GREETING=hi")
	if strings.Contains(out, "waiting") {
		t.Errorf("config:set waited for another deploy:\n%s", out)
	}
	d.mustServe(app, "greeting=hi")

	ids := d.containers(app)
	pid, _ := strconv.Atoi(dockerInspect(t, "{{.State.Pid}}", ids[0]))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the app's process: %v", err)
	}
	waitFor(t, 60*time.Second, "the crashed replica to be recovered", func() bool {
		return d.hasEvent(app, "restarted", "runs again") && d.serves(app, "greeting=hi")
	})

	d.mustPlatWithin(60*time.Second, "scale", app, "--min", "0", "--idle", "1s")
	waitFor(t, 30*time.Second, "the app to sleep", func() bool { return d.appState(app).Status == "sleeping" })
	start := time.Now()
	d.mustServe(app, "greeting=hi")
	t.Logf("woke in %s with a push stalled", time.Since(start).Round(time.Millisecond))
}

// TestStalledPushIdleTimeout: a push body that stops coming is dropped
// after --push-idle-timeout and logged; a push then works.
func TestStalledPushIdleTimeout(t *testing.T) {
	d := startDaemon(t, "--push-idle-timeout", "1s")
	const app = "idle"
	r := d.deployedApp(app, "one")
	d.stallPush(app)
	waitFor(t, 15*time.Second, "the stalled push to be dropped", func() bool {
		return strings.Contains(d.log.String(), "push refused: the client stopped sending")
	})
	r.commit("two", "")
	r.mustPush("main")
	d.mustServe(app, "version=two")
}

// TestWakeDuringBuild: a sleeping app wakes (and serves its release)
// while a push of it builds; the push then deploys.
func TestWakeDuringBuild(t *testing.T) {
	requireTools(t)
	requireBusyboxImage(t)
	d := startDaemon(t)
	const app = "wakebuild"
	r := d.deployedApp(app, "one")
	d.mustPlat("scale", app, "--min", "0", "--idle", "1s")
	waitFor(t, 30*time.Second, "the app to sleep", func() bool { return d.appState(app).Status == "sleeping" })

	marker := "building-" + d.instance
	r.write("Dockerfile", "FROM "+busyboxImage+"\nRUN sleep 20 && echo "+marker+"\nCOPY app /app\nCOPY version /version\nCMD [\"/app\"]\n")
	r.commit("two", "")
	pushed := make(chan string, 1)
	go func() { out, _ := r.push("main"); pushed <- out }()
	waitFor(t, 60*time.Second, "the build's RUN step", func() bool { return buildRunning(marker) })

	start := time.Now()
	d.mustServe(app, "version=one")
	took := time.Since(start)
	if !buildRunning(marker) {
		t.Errorf("the build ended before the wake answered (%s): the test proves nothing", took)
	}
	t.Logf("woke in %s while a push of the app was building", took.Round(time.Millisecond))
	if out := <-pushed; !strings.Contains(out, "is live") {
		t.Fatalf("the push after the wake failed:\n%s", out)
	}
	d.mustServe(app, "version=two")
}

// slowDeployApp deploys v1 of app, then makes its health check slow
// (deadline 5m) so a deploy of an unhealthy commit stays in its health
// check until it is cancelled.
func (d *daemon) slowDeployApp(app string) *repo {
	d.t.Helper()
	r := d.deployedApp(app, "one")
	d.mustPlat("health:set", app, "--deadline", "5m")
	r.commit("two", "unhealthy")
	return r
}

// waitHealthCheck waits until the app's running deploy of version v
// waits for its health check.
func (d *daemon) waitHealthCheck(app string, v int) {
	d.t.Helper()
	waitFor(d.t, 60*time.Second, fmt.Sprintf("v%d's health check", v), func() bool {
		var p struct {
			Version int      `json:"version"`
			Running bool     `json:"running"`
			Lines   []string `json:"lines"`
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+d.apiAddr+"/api/apps/"+app+"/deploy", nil)
		req.Header.Set("Authorization", "Bearer "+d.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || jsonDecode(resp, &p) != nil {
			return false
		}
		return p.Version == v && p.Running && strings.Contains(strings.Join(p.Lines, "\n"), "Waiting for")
	})
}

// releaseReason returns the status and reason of app's release v.
func (d *daemon) releaseReason(app string, v int) (string, string) {
	for _, r := range d.releases(app) {
		if r.Version == v {
			return r.Status, r.Reason
		}
	}
	return "", ""
}

// TestDeployCancel: `plat deploy:cancel` stops a push and a config change
// in their health checks: each is rejected with who cancelled it, its
// release fails with that reason, its container is removed, and the
// previous release keeps serving.
func TestDeployCancel(t *testing.T) {
	d := startDaemon(t)
	const app = "cancelme"
	r := d.slowDeployApp(app)
	if out, err := d.plat("deploy:cancel", app); err == nil || !strings.Contains(out, "nothing to cancel") {
		t.Errorf("deploy:cancel with no deploy running: %v\n%s", err, out)
	}

	pushed := make(chan string, 1)
	go func() { out, _ := r.push("main"); pushed <- out }()
	d.waitHealthCheck(app, 2)
	start := time.Now()
	out := d.mustPlatWithin(60*time.Second, "deploy:cancel", app)
	if !strings.Contains(out, "Cancelled v2 (push of") {
		t.Errorf("deploy:cancel said:\n%s", out)
	}
	pushOut := <-pushed
	t.Logf("push cancelled in %s", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(pushOut, "Push rejected: cancelled by admin") || !strings.Contains(pushOut, "[remote rejected]") {
		t.Errorf("the cancelled push said:\n%s", pushOut)
	}
	if status, reason := d.releaseReason(app, 2); status != "failed" || !strings.Contains(reason, "cancelled by admin during the start and health check") {
		t.Errorf("v2 is %s (%q), want failed, cancelled by admin", status, reason)
	}
	d.mustServe(app, "version=one")
	waitFor(t, 30*time.Second, "only v1's container", func() bool { return len(d.containers(app)) == 1 })

	// A config change waiting for a health check that never answers in time.
	d.mustPlat("health:set", app, "--path", "/?sleep=10m", "--timeout", "50s")
	cfgOut := make(chan string, 1)
	go func() { out, _ := d.platWithin(2*time.Minute, "config:set", app, "GREETING=never"); cfgOut <- out }()
	d.waitHealthCheck(app, 3)
	d.mustPlatWithin(60*time.Second, "deploy:cancel", app)
	if out := <-cfgOut; !strings.Contains(out, "cancelled by admin") {
		t.Errorf("the cancelled config:set said:\n%s", out)
	}
	if status, reason := d.releaseReason(app, 3); status != "failed" || !strings.Contains(reason, "cancelled by admin") {
		t.Errorf("v3 is %s (%q), want failed, cancelled by admin", status, reason)
	}
	d.mustServe(app, "version=one greeting=\n")
	d.assertReleases(app, "v1 push active", "v2 push failed", "v3 config failed")
}

// TestClientGoneCancelsDeploy: a pusher's Ctrl-C (its connection closes)
// cancels the push in its health check, and so does a Ctrl-C of
// `plat config:set`; the previous release keeps serving and main stays.
func TestClientGoneCancelsDeploy(t *testing.T) {
	d := startDaemon(t)
	const app = "ctrlc"
	r := d.slowDeployApp(app)
	head := strings.TrimSpace(r.git("rev-parse", "HEAD~1"))

	cmd := exec.Command("git", "push", "platform", "main")
	cmd.Dir, cmd.Env = r.dir, d.env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C signals the whole group
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.waitHealthCheck(app, 2)
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	cmd.Wait()
	waitFor(t, 30*time.Second, "v2 to fail", func() bool {
		status, reason := d.releaseReason(app, 2)
		return status == "failed" && strings.Contains(reason, "cancelled: the client disconnected")
	})
	d.mustServe(app, "version=one")
	waitFor(t, 30*time.Second, "only v1's container", func() bool { return len(d.containers(app)) == 1 })
	if main, _ := exec.Command("git", "--git-dir", d.data+"/repos/"+app+".git", "rev-parse", "refs/heads/main").Output(); strings.TrimSpace(string(main)) != head {
		t.Errorf("main moved to %q after the cancelled push, want %s", main, head)
	}

	d.mustPlat("health:set", app, "--path", "/?sleep=10m", "--timeout", "50s")
	cfg := exec.Command(platBin, "config:set", app, "GREETING=never")
	cfg.Env = d.env()
	if err := cfg.Start(); err != nil {
		t.Fatal(err)
	}
	d.waitHealthCheck(app, 3)
	cfg.Process.Signal(os.Interrupt)
	cfg.Wait()
	waitFor(t, 30*time.Second, "v3 to fail", func() bool {
		status, reason := d.releaseReason(app, 3)
		return status == "failed" && strings.Contains(reason, "cancelled: the client disconnected")
	})
	d.mustServe(app, "version=one greeting=\n")
}

// TestPushSizeLimits: a push whose body is over --max-push-size, or whose
// source is over --max-source-size, is rejected with the limit and the
// flag named in the pusher's output; nothing is deployed.
func TestPushSizeLimits(t *testing.T) {
	// The test app's binary is ~8 MiB (~4.5 MiB packed).
	d := startDaemon(t, "--max-push-size", "8MiB", "--max-source-size", "12MiB")
	const app = "big"
	r := d.deployedApp(app, "one")

	random := make([]byte, 10<<20)
	rand.Read(random)
	r.write("blob", string(random))
	r.commit("two", "")
	out, err := r.push("main")
	if err == nil || !strings.Contains(out, "push is larger than this daemon's limit of 8 MiB") || !strings.Contains(out, "--max-push-size") {
		t.Errorf("a push over the limit: %v\n%s", err, out)
	}
	if !strings.Contains(d.log.String(), "push refused: too large") {
		t.Errorf("the daemon did not log the refused push")
	}

	r.git("reset", "-q", "--hard", "HEAD~1")
	r.write("zeros", strings.Repeat("\x00", 16<<20)) // packs small, unpacks big
	r.commit("three", "")
	out, err = r.push("main")
	if err == nil || !strings.Contains(out, "source of the pushed commit is larger than this daemon's limit of 12 MiB") {
		t.Errorf("a source over the limit: %v\n%s", err, out)
	}
	d.mustServe(app, "version=one")
	d.assertReleases(app, "v1 push active", "v2 push failed")
}

func jsonDecode(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}

// TestShutdownCancelsDeploys: SIGTERM during a deploy's health check
// cancels the deploy and waits for it (its release records why) before
// the store closes; the daemon exits at once instead of after its shutdown
// timeout, and serves the previous release when it starts again. Before,
// the handler was left running while the store closed, and the release
// stayed "deploying" until the next start marked it interrupted.
func TestShutdownCancelsDeploys(t *testing.T) {
	d := startDaemon(t)
	const app = "sigterm"
	r := d.slowDeployApp(app)
	pushed := make(chan string, 1)
	go func() { out, _ := r.push("main"); pushed <- out }()
	d.waitHealthCheck(app, 2)
	start := time.Now()
	d.stop(syscall.SIGTERM)
	took := time.Since(start)
	if out := <-pushed; !strings.Contains(out, "cancelled: the plat daemon is stopping") {
		t.Errorf("the push cut by the shutdown said:\n%s", out)
	}
	if took > 8*time.Second {
		t.Errorf("the daemon took %s to stop", took)
	}
	d.start()
	if status, reason := d.releaseReason(app, 2); status != "failed" || !strings.Contains(reason, "cancelled: the plat daemon is stopping") {
		t.Errorf("v2 is %s (%q), want failed: cancelled, the daemon is stopping", status, reason)
	}
	d.mustServe(app, "version=one")
}
