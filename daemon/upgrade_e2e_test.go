package daemon_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/plat-paas/plat/bench/load"
)

// The daemon's own restarts under load: an upgrade (SIGHUP, `plat daemon
// upgrade`) fails no request, a killed worker refuses no connection, a
// graceful stop lets what runs finish, and a push during an upgrade either
// lands or is refused whole.

// nextVersion is the version string of the binary an upgrade swaps in.
const nextVersion = "v-upgraded-i11"

var (
	nextOnce sync.Once
	nextBin  string
	nextErr  error
)

// nextPlatBin builds plat again with another version string: the "new
// release" an upgrade puts in place.
func nextPlatBin(t *testing.T) string {
	t.Helper()
	nextOnce.Do(func() {
		nextBin = filepath.Join(binDir, "plat-next")
		args := []string{"build", "-o", nextBin, "-ldflags", "-X github.com/plat-paas/plat/cli.Version=" + nextVersion}
		if raceEnabled {
			args = append(args, "-race")
		}
		if out, err := exec.Command("go", append(args, "github.com/plat-paas/plat/cmd/plat")...).CombinedOutput(); err != nil {
			nextErr = fmt.Errorf("build the next plat: %v\n%s", err, out)
		}
	})
	if nextErr != nil {
		t.Fatal(nextErr)
	}
	return nextBin
}

// installBinary puts a copy of src at dst the way install.sh does: a new
// file renamed over the old one, which a running process keeps using.
func installBinary(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".new", b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dst+".new", dst); err != nil {
		t.Fatal(err)
	}
}

// loads is load running against a daemon: router clients that keep their
// connections, router clients that open one per request, and API clients.
type loads struct {
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	inFlight atomic.Int64
	results  map[string]*load.Result
}

// loadClients is the number of router clients of each kind.
const loadClients = 8

func startLoad(t *testing.T, d *daemon, app string) *loads {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &loads{cancel: cancel, results: map[string]*load.Result{}}
	run := func(name string, opts load.Options) {
		r := new(load.Result)
		l.results[name] = r
		opts.InFlight = &l.inFlight
		opts.Timeout = 30 * time.Second
		l.wg.Go(func() { *r = load.Run(ctx, opts) })
	}
	run("router keep-alive", load.Options{Target: d.httpAddr, Host: app + ".localhost", Concurrency: loadClients, KeepAlive: true})
	run("router new connection", load.Options{Target: d.httpAddr, Host: app + ".localhost", Concurrency: loadClients})
	run("API", load.Options{Target: d.apiAddr, Path: "/api/apps/" + app, Concurrency: 2, KeepAlive: true,
		Header: http.Header{"Authorization": {"Bearer " + d.token}}})
	t.Cleanup(l.stop)
	return l
}

// stop ends the load and returns the results by kind of client.
func (l *loads) stop() {
	l.cancel()
	l.wg.Wait()
}

func (l *loads) report(t *testing.T) (failed, refused int) {
	t.Helper()
	l.stop()
	for name, r := range l.results {
		t.Logf("RESULT %s: %s; failures: %s", name, r, r.Kinds())
		failed += r.Failed()
		refused += r.Refused
		if r.Requests == 0 {
			t.Errorf("%s: no request was sent", name)
		}
	}
	return failed, refused
}

// readyCount counts the workers that became ready so far.
func (d *daemon) readyCount() int { return strings.Count(d.log.String(), `msg="plat daemon ready"`) }

// TestUpgradeUnderLoad replaces the binary and upgrades twice under load,
// by SIGHUP and by `plat daemon upgrade`: no request fails, a slow request
// in flight finishes on the old worker, the new worker runs the new
// binary, the supervisor keeps its PID, and `plat logs -f` follows on
// across both. On main, the daemon had no upgrade: SIGHUP killed it.
func TestUpgradeUnderLoad(t *testing.T) {
	requireTools(t)
	next := nextPlatBin(t)
	bin := filepath.Join(t.TempDir(), "plat")
	installBinary(t, platBin, bin)
	d := startDaemonFrom(t, bin)
	d.deployedApp("up", "one")
	super, firstWorker := d.cmd.Process.Pid, d.workerPID()

	follow := exec.Command(platBin, "logs", "up", "-f")
	follow.Env = d.env()
	var followed lockedBuffer
	follow.Stdout, follow.Stderr = &followed, &followed
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { follow.Process.Kill(); follow.Wait() })
	printLine := func(line string) {
		t.Helper()
		if code, _, err := d.get("up", "/?print="+url.QueryEscape(line)); err != nil || code != 200 {
			t.Fatalf("GET ?print: %d %v", code, err)
		}
		for deadline := time.Now().Add(20 * time.Second); !strings.Contains(followed.String(), line); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("`plat logs -f` did not show %q; it printed:\n%s", line, followed.String())
			}
		}
	}
	waitFor(t, 20*time.Second, "`plat logs -f` to stream", func() bool { return strings.Contains(followed.String(), "testapp") })
	printLine("before the upgrades")

	l := startLoad(t, d, "up")
	time.Sleep(time.Second)

	// 1. The new binary in place, then SIGHUP, with a slow request running.
	slow := make(chan string, 1)
	go func() {
		code, body, err := d.get("up", "/?sleep=1500ms")
		slow <- fmt.Sprintf("%d %v %v", code, strings.Contains(body, "version=one"), err)
	}()
	time.Sleep(300 * time.Millisecond)
	installBinary(t, next, bin)
	ready := d.readyCount()
	began := time.Now()
	if err := syscall.Kill(super, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the new binary's worker to serve", func() bool {
		return d.readyCount() > ready && strings.Contains(d.log.String(), "version="+nextVersion)
	})
	t.Logf("SIGHUP → the new worker serves: %s", time.Since(began).Round(time.Millisecond))
	if got := <-slow; got != "200 true <nil>" {
		t.Errorf("the slow request in flight during the upgrade: %s, want 200 from v1", got)
	}
	secondWorker := d.workerPID()
	if secondWorker == firstWorker {
		t.Errorf("the worker is still %d after the upgrade", firstWorker)
	}
	time.Sleep(500 * time.Millisecond)

	// 2. The first binary back, with `plat daemon upgrade`.
	installBinary(t, platBin, bin)
	out, err := exec.Command(bin, "daemon", "upgrade", "--data", d.data).CombinedOutput()
	if err != nil {
		t.Fatalf("plat daemon upgrade: %v\n%s", err, out)
	}
	t.Logf("plat daemon upgrade:\n%s", out)
	if !strings.Contains(string(out), "upgraded: version "+nextVersion+" → ") || strings.Contains(string(out), "→ "+nextVersion) {
		t.Errorf("plat daemon upgrade said:\n%s\nwant an upgrade from %s to the first binary", out, nextVersion)
	}
	time.Sleep(500 * time.Millisecond)

	failed, _ := l.report(t)
	if failed != 0 {
		t.Errorf("%d requests failed across two upgrades, want 0", failed)
	}
	if d.cmd.ProcessState != nil || syscall.Kill(super, 0) != nil {
		t.Errorf("the supervisor (pid %d) is gone", super)
	}
	if w := d.workerPID(); w == firstWorker || w == secondWorker {
		t.Errorf("worker %d after the second upgrade, want a new one", w)
	}
	d.mustServe("up", "version=one")
	d.assertReleases("up", "v1 push active")

	// The follower reconnected after each hand-over and resumed where it
	// was: the new line once, the old one not again.
	printLine("after the upgrades")
	for _, line := range []string{"before the upgrades", "testapp"} {
		if n := strings.Count(followed.String(), line); n != 1 {
			t.Errorf("%q shown %d times by `plat logs -f`, want once:\n%s", line, n, followed.String())
		}
	}
	if n := strings.Count(followed.String(), "before the upgrades"); n != 1 {
		t.Errorf("a line printed before the upgrades shown %d times by `plat logs -f`:\n%s", n, followed.String())
	}
	if follow.ProcessState != nil {
		t.Errorf("plat logs -f exited: %s", followed.String())
	}
}

// TestWorkerKilledUnderLoad kills the worker with SIGKILL under load: the
// supervisor starts a new one on the same sockets at once, no connection
// is refused, and no more requests fail than were in flight at the kill.
// On main, killing the daemon refused every connection until a restart.
func TestWorkerKilledUnderLoad(t *testing.T) {
	d := startDaemon(t)
	d.deployedApp("crash", "one")
	before := d.containers("crash")
	l := startLoad(t, d, "crash")
	time.Sleep(time.Second)

	worker, ready := d.workerPID(), d.readyCount()
	inFlight := l.inFlight.Load()
	began := time.Now()
	if err := syscall.Kill(worker, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "a new worker to serve", func() bool { return d.readyCount() > ready })
	t.Logf("kill -9 → a new worker serves: %s (%d requests were in flight)", time.Since(began).Round(time.Millisecond), inFlight)
	time.Sleep(time.Second)

	failed, refused := l.report(t)
	if refused != 0 {
		t.Errorf("%d connections refused, want 0: the supervisor holds the sockets", refused)
	}
	if int64(failed) > inFlight {
		t.Errorf("%d requests failed, more than the %d in flight at the kill", failed, inFlight)
	}
	d.mustServe("crash", "version=one")
	if after := d.containers("crash"); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("containers %v after the worker's crash, want the same %v", after, before)
	}
	d.assertReleases("crash", "v1 push active")
}

// rawResult is what one hand-made HTTP/1.1 request got.
type rawResult struct {
	status, connection string
	body               string
	err                error
}

// rawGet sends GET path on conn and reads the response.
func rawGet(conn net.Conn, br *bufio.Reader, host, path string) rawResult {
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host); err != nil {
		return rawResult{err: err}
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return rawResult{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	r := rawResult{status: resp.Status, connection: resp.Header.Get("Connection"), body: string(b), err: err}
	if resp.Close { // ReadResponse takes "Connection: close" out of the header
		r.connection = "close"
	}
	return r
}

// TestGracefulStopUnderLoad stops the daemon with SIGTERM under load:
// requests in flight finish (their responses say Connection: close), an
// idle keep-alive connection is closed cleanly (EOF, not a reset), and the
// app keeps running for the next daemon, which adopts it.
func TestGracefulStopUnderLoad(t *testing.T) {
	d := startDaemon(t)
	d.deployedApp("grace", "one")
	before := d.containers("grace")

	idle, err := net.Dial("tcp", d.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idleBR := bufio.NewReader(idle)
	if r := rawGet(idle, idleBR, "grace.localhost", "/"); r.err != nil || r.status != "200 OK" {
		t.Fatalf("first request on the keep-alive connection: %+v", r)
	}

	l := startLoad(t, d, "grace")
	const slowN = 4
	slow := make(chan rawResult, slowN)
	for range slowN {
		go func() {
			c, err := net.Dial("tcp", d.httpAddr)
			if err != nil {
				slow <- rawResult{err: err}
				return
			}
			defer c.Close()
			slow <- rawGet(c, bufio.NewReader(c), "grace.localhost", "/?sleep=2s")
		}()
	}
	time.Sleep(500 * time.Millisecond)
	began := time.Now()
	idleClosed := make(chan error, 1)
	go func() {
		_, err := idleBR.ReadByte()
		idleClosed <- err
	}()
	l.cancel() // no new requests from now on; those in flight finish and count
	d.stop(syscall.SIGTERM)
	took := time.Since(began)
	l.report(t)
	for name, r := range l.results {
		// A connection still in the listen backlog when the socket closes
		// is reset by the kernel; no request a worker took may fail.
		if r.EOF+r.Status5xx+r.Timeout > 0 {
			t.Errorf("%s: requests in flight at SIGTERM failed: %s", name, r.Kinds())
		}
	}
	for range slowN {
		r := <-slow
		if r.err != nil || r.status != "200 OK" || !strings.Contains(r.body, "version=one") {
			t.Errorf("a request in flight at SIGTERM: %+v, want 200 from the app", r)
		} else if r.connection != "close" {
			t.Errorf("a response finished during the stop said Connection: %q, want close", r.connection)
		}
	}
	select {
	case err := <-idleClosed:
		if !errors.Is(err, io.EOF) {
			t.Errorf("the idle keep-alive connection ended with %v, want a clean close (EOF)", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the idle keep-alive connection was not closed by the stop")
	}
	t.Logf("SIGTERM → the daemon exited after %s", took.Round(time.Millisecond))
	for _, id := range before {
		if state := dockerInspect(t, "{{.State.Running}}", id); state != "true" {
			t.Errorf("app container %s running=%s after the daemon stopped, want it left running", id, state)
		}
	}
	d.start()
	d.mustServe("grace", "version=one")
	if after := d.containers("grace"); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("containers %v after the restart, want the adopted %v", after, before)
	}
}

// TestPushDuringUpgrade upgrades while pushes build: one that finishes
// within --upgrade-timeout lands on the old worker before it hands over,
// one that does not is cancelled with a message to push again, a push
// that starts during the hand-over is refused with one, and the release
// history stays whole: one active release, none left deploying.
func TestPushDuringUpgrade(t *testing.T) {
	requireTools(t)
	requireBusyboxImage(t)
	// Long enough for a 2 s build on a loaded machine.
	d := startDaemon(t, "--upgrade-timeout", "90s")
	r := d.deployedApp("pushup", "one")

	upgrade := func() int {
		ready := d.readyCount()
		if err := syscall.Kill(d.cmd.Process.Pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		return ready
	}
	slowPush := func(version string, sleep int) chan string {
		marker := fmt.Sprintf("building-%s-%s", d.instance, version)
		r.write("Dockerfile", fmt.Sprintf("FROM %s\nRUN sleep %d && echo %s\nCOPY app /app\nCOPY version /version\nCMD [\"/app\"]\n", busyboxImage, sleep, marker))
		r.commit(version, "")
		done := make(chan string, 1)
		go func() {
			out, err := r.push("main")
			done <- fmt.Sprintf("err=%v\n%s", err, out)
		}()
		waitFor(t, 60*time.Second, "the build's RUN step", func() bool { return buildRunning(marker) })
		return done
	}

	// A push that finishes within the bound.
	done := slowPush("two", 2)
	ready := upgrade()
	out := <-done
	if !strings.HasPrefix(out, "err=<nil>") {
		t.Fatalf("the push during the upgrade failed:\n%s", out)
	}
	waitFor(t, 60*time.Second, "the new worker", func() bool { return d.readyCount() > ready })
	d.mustServe("pushup", "version=two")
	d.assertReleases("pushup", "v1 push superseded", "v2 push active")

	// A push that does not: cancelled at the bound; meanwhile another push
	// is refused at once.
	d.extra = []string{"--upgrade-timeout", "6s"}
	d.restart(syscall.SIGTERM)
	done = slowPush("three", 120)
	ready = upgrade()
	waitFor(t, 10*time.Second, "the hand-over to start", func() bool {
		return strings.Count(d.log.String(), "upgrade: handing over") == 2
	})
	other := d.newRepo("pushup")
	other.commit("four", "")
	if out, err := other.push("main"); err == nil || !strings.Contains(out, "being upgraded") {
		t.Errorf("a push during the hand-over: err %v, output:\n%s\nwant it refused with a message", err, out)
	}
	out = <-done
	if strings.HasPrefix(out, "err=<nil>") || !strings.Contains(out, "being upgraded") {
		t.Errorf("the push outlasting the upgrade timeout:\n%s\nwant it rejected with a message saying why", out)
	}
	waitFor(t, 60*time.Second, "the new worker", func() bool { return d.readyCount() > ready })
	d.mustServe("pushup", "version=two")
	rs := d.releases("pushup")
	active := 0
	for _, rel := range rs {
		switch rel.Status {
		case "active":
			active++
			if rel.Version != 2 {
				t.Errorf("v%d active, want v2", rel.Version)
			}
		case "deploying":
			t.Errorf("v%d left deploying", rel.Version)
		}
	}
	if active != 1 {
		t.Errorf("%d active releases: %+v", active, rs)
	}
	main, err := exec.Command("git", "--git-dir", filepath.Join(d.data, "repos", "pushup.git"), "rev-parse", "refs/heads/main").CombinedOutput()
	if want := r.git("rev-parse", "HEAD~1"); err != nil || string(main) != want {
		t.Errorf("main on the daemon is %q (%v), want v2's commit %q (the cancelled push must not move it)", main, err, want)
	}
}
