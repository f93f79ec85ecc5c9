package daemon_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type event struct {
	Kind    string `json:"kind"`
	Release int    `json:"release"`
	Message string `json:"message"`
}

// events reads app's events through the API, newest last.
func (d *daemon) events(app string) []event {
	d.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.apiAddr+"/api/apps/"+app+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	var evs []event
	if err := json.NewDecoder(resp.Body).Decode(&evs); err != nil || resp.StatusCode != http.StatusOK {
		d.t.Fatalf("GET events: %d %v", resp.StatusCode, err)
	}
	return evs
}

func (d *daemon) hasEvent(app, kind, contains string) bool {
	for _, e := range d.events(app) {
		if e.Kind == kind && strings.Contains(e.Message, contains) {
			return true
		}
	}
	return false
}

// images lists the IDs of the images this daemon built.
func (d *daemon) images() []string {
	d.t.Helper()
	out, err := exec.Command("docker", "images", "-q", "--no-trunc", "--filter", "label=plat.instance="+d.instance).Output()
	if err != nil {
		d.t.Fatal(err)
	}
	return strings.Fields(string(out))
}

func dockerInspect(t *testing.T, format, id string) string {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "--format", format, id).CombinedOutput()
	if err != nil {
		t.Fatalf("docker inspect %s: %v\n%s", id, err, out)
	}
	return strings.TrimSpace(string(out))
}

// serves reports whether app answers 200 with want in the body.
func (d *daemon) serves(app, want string) bool {
	code, body, err := d.get(app, "/")
	return err == nil && code == http.StatusOK && strings.Contains(body, want)
}

// TestContainerKilledIsRerouted crashes, kills and removes the live
// container: it runs again (restarted by its policy, started or recreated
// by plat), possibly on a new host port, the router follows it, and each
// fault is an event of the app.
func TestContainerKilledIsRerouted(t *testing.T) {
	d := startDaemon(t)
	d.deployedApp("phoenix", "one")
	ids := d.containers("phoenix")
	if len(ids) != 1 {
		t.Fatalf("containers %v", ids)
	}
	const portFmt = `{{range $p, $b := .NetworkSettings.Ports}}{{range $b}}{{.HostPort}}{{end}}{{end}}`
	oldPort := dockerInspect(t, portFmt, ids[0])

	// A crash: the app's process dies (here SIGKILL from the host, as the
	// OOM killer would); the engine's restart policy restarts it.
	pid, _ := strconv.Atoi(dockerInspect(t, "{{.State.Pid}}", ids[0]))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the app's process %d: %v", pid, err)
	}
	waitFor(t, 60*time.Second, "the crashed container to be restarted and served", func() bool {
		return dockerInspect(t, "{{.RestartCount}}", ids[0]) == "1" && d.serves("phoenix", "version=one")
	})
	t.Logf("after the crash: host port %s → %s", oldPort, dockerInspect(t, portFmt, ids[0]))
	waitFor(t, 10*time.Second, "crashed and restarted events", func() bool {
		return d.hasEvent("phoenix", "crashed", "exited with code 137") && d.hasEvent("phoenix", "restarted", "runs again")
	})

	// `docker kill` is a manual stop to the engine: no restart policy
	// applies, so plat starts the active release's container itself.
	startedAt := dockerInspect(t, "{{.State.StartedAt}}", ids[0])
	if out, err := exec.Command("docker", "kill", ids[0]).CombinedOutput(); err != nil {
		t.Fatalf("docker kill: %v\n%s", err, out)
	}
	waitFor(t, 60*time.Second, "the killed container to be started again and served", func() bool {
		return dockerInspect(t, "{{.State.StartedAt}}", ids[0]) != startedAt && d.serves("phoenix", "version=one")
	})
	t.Logf("after docker kill: host port %s", dockerInspect(t, portFmt, ids[0]))
	if got := d.containers("phoenix"); strings.Join(got, ",") != ids[0] {
		t.Errorf("containers after the kills: %v, want the same one %s", got, ids[0])
	}
	waitFor(t, 10*time.Second, "the event of plat's own restart", func() bool {
		return d.hasEvent("phoenix", "restarted", "stopped outside plat")
	})

	// Removed by hand: plat recreates the active release's container.
	if out, err := exec.Command("docker", "rm", "-f", ids[0]).CombinedOutput(); err != nil {
		t.Fatalf("docker rm: %v\n%s", err, out)
	}
	waitFor(t, 90*time.Second, "a new container to be served", func() bool {
		got := d.containers("phoenix")
		return len(got) == 1 && got[0] != ids[0] && d.serves("phoenix", "version=one")
	})
	waitFor(t, 10*time.Second, "the recreated event", func() bool { return d.hasEvent("phoenix", "recreated", "missing") })
	d.assertReleases("phoenix", "v1 push active")
}

// busyboxImage makes (once per test process: concurrent runs must not
// remove each other's) a tiny base image from the host's
// busybox-static, so a test build can RUN something without pulling.
var busyboxImage = fmt.Sprintf("plat-test-busybox:%d", os.Getpid())

var (
	busyboxOnce    sync.Once
	busyboxCreated bool // made by this test process, so TestMain removes it
)

func requireBusyboxImage(t *testing.T) {
	t.Helper()
	busyboxOnce.Do(func() {
		if exec.Command("docker", "image", "inspect", busyboxImage).Run() == nil {
			return
		}
		bin, err := os.ReadFile("/bin/busybox")
		if err != nil {
			t.Fatalf("busybox-static is needed (apt-get install busybox-static): %v", err)
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
		tw.WriteHeader(&tar.Header{Name: "bin/busybox", Mode: 0o755, Size: int64(len(bin))})
		tw.Write(bin)
		tw.WriteHeader(&tar.Header{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "busybox"})
		tw.WriteHeader(&tar.Header{Name: "bin/sleep", Typeflag: tar.TypeSymlink, Linkname: "busybox"})
		tw.Close()
		cmd := exec.Command("docker", "import", "-", busyboxImage)
		cmd.Stdin = &buf
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docker import: %v\n%s", err, out)
		}
		busyboxCreated = true
	})
	if exec.Command("docker", "image", "inspect", busyboxImage).Run() != nil {
		t.Fatal("no busybox base image")
	}
}

// TestDaemonKilledDuringBuild SIGKILLs the daemon while a build runs: after
// a restart the old release serves, the interrupted one is failed, and no
// container or image of it is left.
func TestDaemonKilledDuringBuild(t *testing.T) {
	requireTools(t)
	requireBusyboxImage(t)
	d := startDaemon(t)
	r := d.deployedApp("kbuild", "one")
	before, images := d.containers("kbuild"), d.images()

	marker := "building-" + d.instance
	r.write("Dockerfile", "FROM "+busyboxImage+"\nRUN sleep 30 && echo "+marker+"\nCOPY app /app\nCOPY version /version\nCMD [\"/app\"]\n")
	r.commit("two", "")
	pushErr := make(chan error, 1)
	go func() { _, err := r.push("main"); pushErr <- err }()
	waitFor(t, 60*time.Second, "the build's RUN step", func() bool { return buildRunning(marker) })
	d.stop(syscall.SIGKILL)
	if err := <-pushErr; err == nil {
		t.Errorf("the push succeeded although the daemon died during its build")
	}
	d.start()
	d.mustServe("kbuild", "version=one")
	d.assertReleases("kbuild", "v1 push active", "v2 push failed")
	if after := d.containers("kbuild"); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("containers %v, want %v", after, before)
	}
	// The engine may finish the orphaned build step after the client is
	// gone; what must not stay is a tagged image of the failed release.
	waitFor(t, 60*time.Second, "no image of the killed build", func() bool {
		return strings.Join(d.images(), ",") == strings.Join(images, ",")
	})
}

// buildRunning reports whether a build's RUN step whose command contains
// marker runs: the classic builder's as a container, BuildKit's as a
// process the engine starts without one (so the step must not be a lone
// command that the shell replaces itself with: "sleep 30 && echo MARKER").
func buildRunning(marker string) bool {
	out, _ := exec.Command("docker", "ps", "--no-trunc", "--filter", "ancestor="+busyboxImage, "--format", "{{.Command}}").Output()
	if strings.Contains(string(out), marker) {
		return true
	}
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range cmdlines {
		b, _ := os.ReadFile(f)
		if strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), marker) {
			return true
		}
	}
	return false
}

// TestDaemonKilledAfterSwitch SIGKILLs the daemon after it switched to the
// new release but while it still drains the old one: after a restart the
// new release serves, the old container is gone.
func TestDaemonKilledAfterSwitch(t *testing.T) {
	d := startDaemon(t)
	r := d.deployedApp("kswitch", "one")

	// A slow request keeps the old version draining after the switch.
	slow := make(chan int, 1)
	go func() { code, _, _ := d.get("kswitch", "/?sleep=4s"); slow <- code }()
	time.Sleep(200 * time.Millisecond)
	r.commit("two", "")
	pushErr := make(chan error, 1)
	go func() { _, err := r.push("main"); pushErr <- err }()
	waitFor(t, 60*time.Second, "the switch", func() bool {
		return strings.Contains(d.log.String(), `msg="deploy switched" app=kswitch release=2`)
	})
	d.stop(syscall.SIGKILL)
	<-pushErr
	<-slow // the router died with the daemon; the request's fate is not the point here
	d.start()
	d.mustServe("kswitch", "version=two")
	d.assertReleases("kswitch", "v1 push superseded", "v2 push active")
	if got := d.containers("kswitch"); len(got) != 1 {
		t.Errorf("containers after restart: %v, want only v2's", got)
	}
	if imgs := d.images(); len(imgs) != 2 {
		t.Errorf("images %v, want v1's and v2's (both within retention)", imgs)
	}
}

// TestEngineRestart restarts the Docker Engine under a running daemon: the
// app comes back and is served without a manual step. It stops every
// container on the machine for a while, so it runs only when
// PLAT_TEST_ENGINE_RESTART=1 (.ci/run sets it; CI has the machine alone).
func TestEngineRestart(t *testing.T) {
	if os.Getenv("PLAT_TEST_ENGINE_RESTART") != "1" {
		t.Skip("restarts dockerd; set PLAT_TEST_ENGINE_RESTART=1 on a machine of its own")
	}
	d := startDaemon(t)
	r := d.deployedApp("engine", "one")

	restartDockerd(t)
	waitFor(t, 90*time.Second, "the app to be served after the engine restart", func() bool { return d.serves("engine", "version=one") })
	if got := d.containers("engine"); len(got) != 1 {
		t.Errorf("containers after the engine restart: %v", got)
	}
	// The daemon still deploys.
	r.commit("two", "")
	r.mustPush("main")
	d.mustServe("engine", "version=two")
}

// restartDockerd stops dockerd with SIGTERM and starts it again the way
// .ci/run does (no systemd on these machines).
func restartDockerd(t *testing.T) {
	t.Helper()
	out, err := exec.Command("pidof", "dockerd").Output()
	if err != nil {
		t.Fatalf("pidof dockerd: %v", err)
	}
	pid := strings.Fields(string(out))[0]
	if out, err := exec.Command("kill", "-TERM", pid).CombinedOutput(); err != nil {
		t.Fatalf("kill dockerd: %v\n%s", err, out)
	}
	waitFor(t, 60*time.Second, "dockerd to exit", func() bool { return exec.Command("kill", "-0", pid).Run() != nil })
	logf, err := os.OpenFile(os.TempDir()+"/plat-test-dockerd.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dockerd")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives the test
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	go cmd.Wait()
	waitFor(t, 60*time.Second, "docker info", func() bool { return exec.Command("docker", "info").Run() == nil })
}
