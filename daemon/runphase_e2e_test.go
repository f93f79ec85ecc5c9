package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// before fails unless a occurs in s, and before b.
func before(t *testing.T, s, a, b string) {
	t.Helper()
	i, j := strings.Index(s, a), strings.Index(s, b)
	if i < 0 || j < 0 || i > j {
		t.Fatalf("want %q (at %d) before %q (at %d) in:\n%s", a, i, b, j, s)
	}
}

// TestReleasePhase pushes an app whose image has a shell and whose
// Procfile has a release command: it runs once per push and per config
// change, through /bin/sh with the release's config, before the new
// replica starts; it does not run for a rollback; when it fails the push
// is rejected with its output and exit code and the old release serves on.
func TestReleasePhase(t *testing.T) {
	requireTools(t)
	requireBusyboxImage(t)
	d := startDaemon(t)
	d.createApp("relph")
	r := d.newRepo("relph")
	r.write("Dockerfile", "FROM "+busyboxImage+"\nCOPY app /app\nCOPY mode /mode\nCOPY version /version\nCMD [\"/app\"]\n")
	// Shell syntax ($VAR, &&, ;) works: the image has /bin/sh.
	r.write("Procfile", "# the release phase\nrelease: echo \"migrating to $(cat /version) with greeting=$GREETING\" && echo done >&2\n")
	r.commit("one", "")
	out := r.mustPush("main")
	d.mustServe("relph", "version=one")
	before(t, out, "-----> Running release command: echo", "migrating to one with greeting=")
	before(t, out, "migrating to one with greeting=", "Release command succeeded")
	before(t, out, "Release command succeeded", "Starting ")
	if !regexp.MustCompile(`Timings: build \S+, release \S+, start `).MatchString(out) {
		t.Errorf("the timings line does not time the release phase:\n%s", out)
	}
	// Ordering as recorded: the release command before the replica's health.
	var kinds []string
	for _, e := range d.events("relph") {
		if e.Release == 1 {
			kinds = append(kinds, e.Kind)
		}
	}
	before(t, strings.Join(kinds, ","), "release command", "healthy")

	// plat run in an image with a shell: -i pipes stdin in; with a
	// terminal (script(1) gives the CLI one) the command gets a tty.
	cmd := exec.Command(platBin, "run", "relph", "-i", "--", "/bin/sh", "-c", "read x; echo got $x from stdin")
	cmd.Env, cmd.Stdin = d.env(), strings.NewReader("piped\n")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "got piped from stdin") {
		t.Errorf("plat run -i: %v\n%s", err, out)
	}
	cmd = exec.Command("script", "-qec", platBin+" run relph -- /bin/sh -c 'test -t 0 && test -t 1 && echo has-a-tty; exit 4'", "/dev/null")
	cmd.Env = d.env()
	ttyOut, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 4 || !strings.Contains(string(ttyOut), "has-a-tty") {
		t.Errorf("plat run in a terminal: %v, want exit code 4 and a tty\n%s", err, ttyOut)
	}

	// A config change runs it with the new config.
	out = d.mustPlat("config:set", "relph", "GREETING=hello")
	if !strings.Contains(out, "migrating to one with greeting=hello") {
		t.Errorf("config change: no release command output:\n%s", out)
	}
	d.mustServe("relph", "greeting=hello")

	// A rollback does not run it.
	out = d.mustPlat("rollback", "relph")
	if strings.Contains(out, "Running release command") {
		t.Errorf("the rollback ran the release command:\n%s", out)
	}
	d.mustServe("relph", "version=one")
	containers := d.containers("relph")

	// A failing release command rejects the push; nothing changes.
	r.write("Procfile", "release: echo migration failed half-way; exit 3\n")
	r.commit("two", "")
	out, err = r.push("main")
	if err == nil {
		t.Fatalf("the push with a failing release command was accepted:\n%s", out)
	}
	for _, want := range []string{"migration failed half-way", "exit code 3", "Push rejected", "still serving its previous release"} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Starting ") {
		t.Errorf("a replica was started after the release command failed:\n%s", out)
	}
	d.mustServe("relph", "version=one")
	d.assertReleases("relph", "v1 push superseded", "v2 config superseded", "v3 rollback active", "v4 push failed")
	if got := d.containers("relph"); strings.Join(got, ",") != strings.Join(containers, ",") {
		t.Errorf("containers changed: %v, want %v", got, containers)
	}
	if n := d.oneOffContainers(); n != 0 {
		t.Errorf("%d one-off containers left", n)
	}

	// deploy:cancel stops a running release command; it is listed by ps
	// as "release" meanwhile.
	r.write("Procfile", "release: echo long migration; sleep 120\n")
	r.commit("three", "")
	pushed := make(chan string, 1)
	go func() { out, _ := r.push("main"); pushed <- out }()
	waitFor(t, 60*time.Second, "the release command in plat ps", func() bool {
		return strings.Contains(d.mustPlat("ps", "relph"), "release")
	})
	d.mustPlat("deploy:cancel", "relph")
	select {
	case out = <-pushed:
	case <-time.After(60 * time.Second):
		t.Fatal("the push did not end after deploy:cancel")
	}
	if !strings.Contains(out, "cancelled by") || !strings.Contains(out, "during the release command") {
		t.Errorf("push output after deploy:cancel:\n%s", out)
	}
	d.mustServe("relph", "version=one")
	waitFor(t, 30*time.Second, "the release command's container to be removed", func() bool { return d.oneOffContainers() == 0 })
}

// TestProcfileWithoutShell pushes the FROM-scratch test app (no shell):
// Procfile commands are split into arguments and run directly, web:
// replaces the image's CMD, and an unknown process type rejects the push.
func TestProcfileWithoutShell(t *testing.T) {
	d := startDaemon(t)
	d.createApp("noshell")
	r := d.newRepo("noshell")
	r.write("Procfile", "web: /app serve \"from-procfile\"\nrelease: /app args 'two words' \"and three words\" x\n")
	r.commit("one", "")
	out := r.mustPush("main")
	if !strings.Contains(out, "[two words][and three words][x]") {
		t.Errorf("release command not split into arguments:\n%s", out)
	}
	d.mustServe("noshell", "web=from-procfile")

	r.write("Procfile", "web: /app\nworker: /app args jobs\n")
	r.commit("two", "")
	out, err := r.push("main")
	if err == nil || !strings.Contains(out, `unknown process type "worker"`) {
		t.Fatalf("push with an unknown process type: err %v\n%s", err, out)
	}
	d.mustServe("noshell", "web=from-procfile")
}

// TestPlatRun runs one-off commands with `plat run`: output and exit code
// pass through, the release's config is there, run.N is listed by `plat
// ps` while it runs, Ctrl-C stops and removes it, --release picks an older
// release, and an app never deployed gets a clear error.
func TestPlatRun(t *testing.T) {
	d := startDaemon(t)
	r := d.deployedApp("oneoff", "one")
	d.mustPlat("config:set", "oneoff", "GREETING=from-config")

	out, err := d.plat("run", "oneoff", "--", "/app", "exit", "5", "the", "task", "ran")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 5 {
		t.Fatalf("plat run exit: %v, want exit code 5\n%s", err, out)
	}
	for _, want := range []string{"the task ran greeting=from-config", "testapp: exiting with 5"} {
		if !strings.Contains(out, want) {
			t.Errorf("plat run output lacks %q:\n%s", want, out)
		}
	}
	out = d.mustPlat("run", "oneoff", "--", "/app", "args", "a b", "c")
	if !strings.Contains(out, "[a b][c]") {
		t.Errorf("arguments not passed as given:\n%s", out)
	}
	// v1 ran without the config var.
	out, _ = d.plat("run", "oneoff", "--release", "v1", "--", "/app", "exit", "0")
	if !strings.Contains(out, "greeting=\n") && !strings.HasSuffix(strings.TrimSpace(out), "greeting=") {
		t.Errorf("--release v1 ran with the wrong config:\n%s", out)
	}

	// run.1 is listed while it runs; Ctrl-C stops it.
	cmd := exec.Command(platBin, "run", "oneoff", "--", "/app", "sleep", "60s")
	cmd.Env = d.env()
	var buf lockedBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "run.1 in plat ps", func() bool {
		return strings.Contains(d.mustPlat("ps", "oneoff"), "run.1")
	})
	var reps []struct {
		Label string `json:"label"`
		State string `json:"state"`
	}
	if err := json.Unmarshal([]byte(d.mustPlat("ps", "oneoff", "--json")), &reps); err != nil {
		t.Fatal(err)
	}
	if len(reps) != 2 || reps[0].Label != "web.1" || reps[1].Label != "run.1" || reps[1].State != "running" {
		t.Errorf("plat ps --json: %+v", reps)
	}
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if !errors.As(err, &exit) || exit.ExitCode() != 130 {
			t.Errorf("plat run after Ctrl-C: %v, want exit code 130\n%s", err, buf.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("plat run did not end after Ctrl-C")
	}
	waitFor(t, 30*time.Second, "the one-off container to be removed", func() bool { return d.oneOffContainers() == 0 })
	if strings.Contains(d.mustPlat("ps", "oneoff"), "run.1") {
		t.Error("run.1 still listed after it ended")
	}
	d.mustServe("oneoff", "version=one")
	_ = r

	// Never deployed; no command; no such release.
	d.createApp("fresh")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "fresh", "--", "/app"}, "fresh has never been deployed"},
		{[]string{"run", "oneoff", "--release", "v9", "--", "/app"}, "has no release v9"},
		{[]string{"run", "oneoff"}, "give the command to run after --"},
	} {
		out, err := d.plat(c.args...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("plat %s: err %v, want an error with %q:\n%s", strings.Join(c.args, " "), err, c.want, out)
		}
	}
}

// TestRestart replaces every replica with new containers of the same
// release while a load loop runs: no request fails, no release is made,
// and the restart is an event.
func TestRestart(t *testing.T) {
	d := startDaemon(t)
	d.deployedApp("again", "one")
	old := d.containers("again")

	ctx, cancel := context.WithCancel(context.Background())
	var ok, failed atomic.Int64
	var failures sync.Map
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				code, body, err := d.get("again", "/")
				if err != nil || code != http.StatusOK || !strings.Contains(body, "version=one") {
					failed.Add(1)
					failures.Store(time.Now().String(), []any{code, body, err})
					continue
				}
				ok.Add(1)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	out := d.mustPlat("restart", "again")
	time.Sleep(300 * time.Millisecond)
	cancel()
	wg.Wait()
	t.Logf("restart under load: %d requests ok, %d failed", ok.Load(), failed.Load())
	if failed.Load() > 0 {
		failures.Range(func(k, v any) bool { t.Errorf("failed request at %s: %v", k, v); return true })
	}
	if ok.Load() == 0 {
		t.Error("no request went through")
	}
	if !strings.Contains(out, "Restarted again") {
		t.Errorf("plat restart output:\n%s", out)
	}
	now := d.containers("again")
	if len(now) != 1 || now[0] == old[0] {
		t.Errorf("containers %v after the restart, were %v: want one new one", now, old)
	}
	d.assertReleases("again", "v1 push active")
	if !d.hasEvent("again", "restarted", "plat restart") {
		t.Error("no restarted event")
	}
	d.mustServe("again", "version=one")

	d.createApp("never")
	if out, err := d.plat("restart", "never"); err == nil || !strings.Contains(out, "never been deployed") {
		t.Errorf("restart of an app never deployed: %v\n%s", err, out)
	}
}

// oneOffContainers counts this daemon's one-off containers.
func (d *daemon) oneOffContainers() int {
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=plat.role=run", "--filter", "label=plat.instance="+d.instance).Output()
	if err != nil {
		d.t.Fatal(err)
	}
	return len(bytes.Fields(out))
}
