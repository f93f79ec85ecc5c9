package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The integration tests run the real plat binary against the real Docker
// Engine and push with the real git client. Under CI=true a missing engine
// or git fails the tests; elsewhere they are skipped.

var (
	buildOnce           sync.Once
	platBin, testappBin string
	buildErr            error
	binDir              string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if busyboxCreated {
		exec.Command("docker", "rmi", busyboxImage).Run()
	}
	os.Exit(code)
}

// requireTools fails (CI) or skips the test when Docker or git is missing.
func requireTools(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test (-short)")
	}
	var missing []string
	if _, err := exec.LookPath("git"); err != nil {
		missing = append(missing, "git")
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		missing = append(missing, "a running Docker Engine ("+strings.TrimSpace(string(out))+")")
	}
	if len(missing) > 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("integration test needs %s; under CI=true it may not skip", strings.Join(missing, " and "))
		}
		t.Skipf("needs %s", strings.Join(missing, " and "))
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "plat-e2e-bin-")
		if buildErr != nil {
			return
		}
		platBin = filepath.Join(binDir, "plat")
		testappBin = filepath.Join(binDir, "testapp")
		args := []string{"build", "-o", platBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		if out, err := exec.Command("go", append(args, "github.com/plat-paas/plat/cmd/plat")...).CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build plat: %v\n%s", err, out)
			return
		}
		cmd := exec.Command("go", "build", "-o", testappBin, "github.com/plat-paas/plat/internal/testapp")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build testapp: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// daemon is one `plat daemon` process with its own data dir and ports.
type daemon struct {
	t        *testing.T
	data     string
	apiAddr  string
	httpAddr string
	extra    []string
	cmd      *exec.Cmd
	log      *lockedBuffer
	token    string
	instance string // the daemon's name on the engine, unique per test
	bin      string // the plat binary the daemon runs; platBin when empty
	home     string // HOME and config for CLI and git
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startDaemon starts a daemon on a fresh data dir and creates a token.
func startDaemon(t *testing.T, extra ...string) *daemon {
	t.Helper()
	return startDaemonFrom(t, "", extra...)
}

// startDaemonFrom is startDaemon running the daemon from the binary bin
// (platBin when empty), which a test may replace to upgrade it.
func startDaemonFrom(t *testing.T, bin string, extra ...string) *daemon {
	t.Helper()
	requireTools(t)
	d := &daemon{
		t: t, data: t.TempDir(), home: t.TempDir(), bin: bin,
		apiAddr: freePort(t), httpAddr: freePort(t), extra: extra,
		instance: fmt.Sprintf("plat-test-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6),
	}
	d.start()
	out, err := exec.Command(platBin, "daemon", "token", "--data", d.data).CombinedOutput()
	if err != nil {
		t.Fatalf("plat daemon token: %v\n%s", err, out)
	}
	d.token = strings.TrimSpace(string(out))
	t.Cleanup(func() {
		d.stop(syscall.SIGTERM)
		d.cleanupDocker()
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log.String())
		}
	})
	return d
}

func (d *daemon) start() {
	d.t.Helper()
	// No standby unless a test asks (--standby in extra wins, as the last
	// flag): tests count an app's containers after a deploy.
	args := append([]string{"daemon", "--data", d.data, "--api", d.apiAddr, "--http", d.httpAddr, "--drain-timeout", "5s", "--instance", d.instance, "--https", "", "--ssh", "", "--standby", "0"}, d.extra...)
	bin := d.bin
	if bin == "" {
		bin = platBin
	}
	d.cmd = exec.Command(bin, args...)
	if d.log == nil {
		d.log = &lockedBuffer{}
	}
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	// Its own process group: stop(SIGKILL) kills the supervisor and its
	// worker together, as a hard crash of the whole daemon would.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	ready := d.readyCount()
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		// Its own ready line: a parallel test's daemon may have taken a
		// port freePort handed out, and answer there.
		if d.readyCount() > ready {
			return
		}
		if d.cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.t.Fatalf("daemon did not start:\n%s", d.log.String())
}

// stop signals the daemon (its supervisor) and waits for it to exit;
// SIGKILL kills the supervisor and the worker at once.
func (d *daemon) stop(sig syscall.Signal) {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	if sig == syscall.SIGKILL {
		syscall.Kill(-d.cmd.Process.Pid, sig)
	} else {
		d.cmd.Process.Signal(sig)
	}
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	d.cmd = nil
}

// workerPID returns the PID of the worker that serves: the last one that
// said it was ready.
func (d *daemon) workerPID() int {
	d.t.Helper()
	log := d.log.String()
	i := strings.LastIndex(log, `msg="plat daemon ready"`)
	if i < 0 {
		d.t.Fatal("no worker is ready")
	}
	line, _, _ := strings.Cut(log[i:], "\n")
	_, pid, ok := strings.Cut(line, " pid=")
	var n int
	if _, err := fmt.Sscan(pid, &n); !ok || err != nil {
		d.t.Fatalf("no pid in %q", line)
	}
	return n
}

func (d *daemon) restart(sig syscall.Signal) {
	d.stop(sig)
	d.start()
}

// cleanupDocker removes what the test's apps left in the engine.
func (d *daemon) cleanupDocker() {
	ids, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=plat.instance="+d.instance).Output()
	if f := strings.Fields(string(ids)); len(f) > 0 {
		exec.Command("docker", append([]string{"rm", "-f"}, f...)...).Run()
	}
	imgs, _ := exec.Command("docker", "images", "-q", "--filter", "label=plat.instance="+d.instance).Output()
	if f := strings.Fields(string(imgs)); len(f) > 0 {
		exec.Command("docker", append([]string{"rmi", "-f"}, f...)...).Run()
	}
	nets, _ := exec.Command("docker", "network", "ls", "-q", "--filter", "label=plat.instance="+d.instance).Output()
	if f := strings.Fields(string(nets)); len(f) > 0 {
		exec.Command("docker", append([]string{"network", "rm"}, f...)...).Run()
	}
}

// plat runs the CLI against this daemon.
func (d *daemon) plat(args ...string) (string, error) {
	cmd := exec.Command(platBin, args...)
	cmd.Env = d.env()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (d *daemon) mustPlat(args ...string) string {
	d.t.Helper()
	out, err := d.plat(args...)
	if err != nil {
		d.t.Fatalf("plat %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (d *daemon) env() []string {
	return append(os.Environ(),
		"HOME="+d.home,
		"XDG_CONFIG_HOME="+filepath.Join(d.home, ".config"),
		"PLAT_URL=http://"+d.apiAddr,
		"PLAT_TOKEN="+d.token,
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=plat test", "GIT_AUTHOR_EMAIL=test@plat.invalid",
		"GIT_COMMITTER_NAME=plat test", "GIT_COMMITTER_EMAIL=test@plat.invalid",
	)
}

// createApp creates an app; cleanupDocker removes what it leaves.
func (d *daemon) createApp(name string) {
	d.t.Helper()
	d.mustPlat("apps:create", name)
}

// get fetches path from app through the router.
func (d *daemon) get(app, path string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+d.httpAddr+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = app + ".localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// mustServe asserts the app answers 200 with a body containing want.
func (d *daemon) mustServe(app, want string) {
	d.t.Helper()
	code, body, err := d.get(app, "/")
	if err != nil || code != http.StatusOK || !strings.Contains(body, want) {
		d.t.Fatalf("GET %s.localhost: code %d body %q err %v; want 200 with %q", app, code, body, err, want)
	}
}

// containers lists the IDs of app's containers (running or not).
func (d *daemon) containers(app string) []string {
	t := d.t
	t.Helper()
	out, err := exec.Command("docker", "ps", "-aq", "--no-trunc", "--filter", "label=plat.role=app", "--filter", "label=plat.instance="+d.instance, "--filter", "label=plat.app="+app).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))
}

// repo is a local git checkout of a test app.
type repo struct {
	d   *daemon
	dir string
	app string
}

// newRepo makes a checkout with the testapp binary, a Dockerfile and
// version/mode files, with a `platform` remote for app.
func (d *daemon) newRepo(app string) *repo {
	d.t.Helper()
	r := &repo{d: d, dir: d.t.TempDir(), app: app}
	bin, err := os.ReadFile(testappBin)
	if err != nil {
		d.t.Fatal(err)
	}
	r.write("app", string(bin))
	os.Chmod(filepath.Join(r.dir, "app"), 0o755)
	r.write("Dockerfile", "FROM scratch\nCOPY app /app\nCOPY mode /mode\nCOPY version /version\nCMD [\"/app\"]\n")
	r.write("mode", "")
	r.git("init", "-q", "-b", "main")
	cmd := exec.Command(platBin, "git:remote", app)
	cmd.Dir, cmd.Env = r.dir, d.env()
	if out, err := cmd.CombinedOutput(); err != nil {
		d.t.Fatalf("plat git:remote: %v\n%s", err, out)
	}
	return r
}

func (r *repo) write(name, content string) {
	r.d.t.Helper()
	if err := os.WriteFile(filepath.Join(r.dir, name), []byte(content), 0o644); err != nil {
		r.d.t.Fatal(err)
	}
}

func (r *repo) git(args ...string) string {
	r.d.t.Helper()
	out, err := r.tryGit(args...)
	if err != nil {
		r.d.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (r *repo) tryGit(args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env = r.dir, r.d.env()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// commit writes the version (and mode) files and commits everything.
func (r *repo) commit(version, mode string) {
	r.d.t.Helper()
	r.write("version", version)
	r.write("mode", mode)
	r.git("add", "-A")
	r.git("commit", "-q", "--allow-empty", "-m", "version "+version)
}

// push pushes main to the platform remote and returns git's output.
func (r *repo) push(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", append([]string{"push", "platform"}, args...)...)
	cmd.Dir, cmd.Env = r.dir, r.d.env()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (r *repo) mustPush(args ...string) string {
	r.d.t.Helper()
	out, err := r.push(args...)
	if err != nil {
		r.d.t.Fatalf("git push: %v\n%s", err, out)
	}
	return out
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// deployedApp creates app, pushes a first commit with the given version and
// checks that the router serves it; it returns the app's checkout.
func (d *daemon) deployedApp(app, version string) *repo {
	d.t.Helper()
	d.createApp(app)
	r := d.newRepo(app)
	r.commit(version, "")
	r.mustPush("main")
	d.mustServe(app, "version="+version)
	return r
}
