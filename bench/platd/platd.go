// Package platd runs a real `plat daemon` for the bench commands: it builds
// plat and the test app, starts the daemon on free loopback ports with its
// own data dir and instance name, drives it with the CLI, the API and real
// git pushes, and removes what it made in the engine.
package platd

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// startTimeout bounds the wait for a new daemon's API to answer.
const startTimeout = 30 * time.Second

// stopTimeout bounds the wait for the daemon to exit after SIGTERM.
const stopTimeout = 30 * time.Second

// Dockerfile is the test app's default Dockerfile: a FROM-scratch image of
// the static testapp binary, its /version and /mode files.
const Dockerfile = "FROM scratch\nCOPY app /app\nCOPY mode /mode\nCOPY version /version\nCMD [\"/app\"]\n"

// Options describe a daemon to start.
type Options struct {
	Dir      string   // work directory: binaries, data, home, repos, daemon.log
	Instance string   // the daemon's name on the engine; labels everything it makes
	Args     []string // extra `plat daemon` flags
	Env      []string // extra environment for the daemon only (e.g. TMPDIR)
	// Plat is a plat binary to run instead of building this checkout's
	// (e.g. an older release, to compare).
	Plat string
}

// Daemon is one running `plat daemon` and a client environment for it.
type Daemon struct {
	Dir, Plat, Testapp string
	Data, LogPath      string
	APIAddr, HTTPAddr  string
	Instance, Token    string
	// Env is the environment for the CLI and git: HOME, PLAT_URL,
	// PLAT_TOKEN and a git identity.
	Env  []string
	cmd  *exec.Cmd
	args []string
	env  []string
}

// Start builds plat and the test app into opts.Dir and starts a daemon.
func Start(opts Options) (*Daemon, error) {
	d := &Daemon{Dir: opts.Dir, Plat: filepath.Join(opts.Dir, "plat"), Testapp: filepath.Join(opts.Dir, "testapp"),
		Data: filepath.Join(opts.Dir, "data"), LogPath: filepath.Join(opts.Dir, "daemon.log"), Instance: opts.Instance}
	var err error
	if d.APIAddr, err = FreePort(); err != nil {
		return nil, err
	}
	if d.HTTPAddr, err = FreePort(); err != nil {
		return nil, err
	}
	if opts.Plat != "" {
		b, err := os.ReadFile(opts.Plat)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(d.Plat, b, 0o755); err != nil {
			return nil, err
		}
	} else if err := Run(nil, "", "go", "build", "-o", d.Plat, "github.com/plat-paas/plat/cmd/plat"); err != nil {
		return nil, err
	}
	if err := Run(append(os.Environ(), "CGO_ENABLED=0"), "", "go", "build", "-o", d.Testapp, "github.com/plat-paas/plat/internal/testapp"); err != nil {
		return nil, err
	}
	args := append([]string{"daemon", "--data", d.Data, "--api", d.APIAddr, "--http", d.HTTPAddr,
		"--instance", d.Instance, "--drain-timeout", "5s", "--https", "", "--ssh", ""}, opts.Args...)
	d.args, d.env = args, append(os.Environ(), opts.Env...)
	if err := d.start(); err != nil {
		return nil, err
	}
	out, err := exec.Command(d.Plat, "daemon", "token", "--data", d.Data).Output()
	if err != nil {
		d.Stop()
		return nil, fmt.Errorf("plat daemon token: %w", err)
	}
	d.Token = strings.TrimSpace(string(out))
	home := filepath.Join(opts.Dir, "home")
	d.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"PLAT_URL=http://"+d.APIAddr, "PLAT_TOKEN="+d.Token, "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@plat.invalid", "GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@plat.invalid")
	return d, nil
}

// start starts the daemon process and waits until its API answers.
func (d *Daemon) start() error {
	d.cmd = exec.Command(d.Plat, d.args...)
	d.cmd.Env = d.env
	logf, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("daemon log: %w", err)
	}
	defer logf.Close() // the child has its own copy
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		return fmt.Errorf("start plat daemon: %w", err)
	}
	for deadline := time.Now().Add(startTimeout); ; {
		if resp, err := http.Get("http://" + d.APIAddr + "/api/whoami"); err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			d.Stop()
			return fmt.Errorf("daemon did not start in %s; see %s", startTimeout, d.LogPath)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Restart stops the daemon process with sig (waiting for it to exit) and
// starts it again: how a daemon without in-place upgrades is upgraded.
func (d *Daemon) Restart(sig syscall.Signal) error {
	_ = d.cmd.Process.Signal(sig)
	_ = d.cmd.Wait()
	return d.start()
}

// ReadyCount counts the "plat daemon ready" lines in the daemon's log:
// one per worker (or process) that started serving.
func (d *Daemon) ReadyCount() int {
	b, _ := os.ReadFile(d.LogPath)
	return strings.Count(string(b), `msg="plat daemon ready"`)
}

// WorkerPID is the PID in the last "plat daemon ready" line: the process
// that serves (the worker under a supervisor).
func (d *Daemon) WorkerPID() int {
	b, _ := os.ReadFile(d.LogPath)
	log := string(b)
	i := strings.LastIndex(log, `msg="plat daemon ready"`)
	if i < 0 {
		return 0
	}
	line, _, _ := strings.Cut(log[i:], "\n")
	_, pid, ok := strings.Cut(line, " pid=")
	if f := strings.Fields(pid); ok && len(f) > 0 {
		n, _ := strconv.Atoi(f[0])
		return n
	}
	return 0 // a daemon without a supervisor does not log its pid
}

// PID is the daemon's process ID.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// Stop sends SIGTERM and waits for the daemon to exit (SIGKILL after
// stopTimeout). It is safe to call twice.
func (d *Daemon) Stop() {
	if d.cmd == nil || d.cmd.Process == nil || d.cmd.ProcessState != nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopTimeout):
		_ = d.cmd.Process.Kill()
		<-done
	}
}

// CleanEngine removes the containers and images labelled with the daemon's
// instance name.
func (d *Daemon) CleanEngine() {
	if ids := d.Docker("ps", "-aq", "--filter", "label=plat.instance="+d.Instance); len(ids) > 0 {
		_ = exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
	}
	if ids := d.Docker("images", "-q", "--filter", "label=plat.instance="+d.Instance); len(ids) > 0 {
		_ = exec.Command("docker", append([]string{"rmi", "-f"}, ids...)...).Run()
	}
	if ids := d.Docker("network", "ls", "-q", "--filter", "label=plat.instance="+d.Instance); len(ids) > 0 {
		_ = exec.Command("docker", append([]string{"network", "rm"}, ids...)...).Run()
	}
}

// Close stops the daemon and removes its containers, images and files.
func (d *Daemon) Close() {
	d.Stop()
	d.CleanEngine()
	_ = os.RemoveAll(d.Dir)
}

// Docker runs the docker CLI and returns the fields of its output (nil on
// error).
func (d *Daemon) Docker(args ...string) []string {
	out, err := exec.Command("docker", args...).Output()
	if err != nil {
		return nil
	}
	return strings.Fields(string(out))
}

// ProcStatus reads a numeric field of /proc/PID/status, e.g. VmRSS (in kB)
// or Threads.
func (d *Daemon) ProcStatus(field string) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", d.PID()))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			if fs := strings.Fields(rest); len(fs) > 0 {
				return strconv.Atoi(fs[0])
			}
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, d.PID())
}

// RSS is the daemon's resident memory (VmRSS) for printing.
func (d *Daemon) RSS() string {
	kb, err := d.ProcStatus("VmRSS")
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.1f MB", float64(kb)/1024)
}

// OpenFDs counts the daemon's open file descriptors from outside.
func (d *Daemon) OpenFDs() (int, error) {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.PID()))
	if err != nil {
		return 0, err
	}
	return len(entries), nil
}

// CLI runs `plat ARGS...` against the daemon and returns its output.
func (d *Daemon) CLI(args ...string) (string, error) {
	cmd := exec.Command(d.Plat, args...)
	cmd.Env = d.Env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("plat %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// API calls the daemon's API with the token and returns the body; a status
// other than 200 or an NDJSON "error" line is an error.
func (d *Daemon) API(method, path, body string) (string, error) {
	req, err := http.NewRequest(method, "http://"+d.APIAddr+path, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+d.Token)
	req.Header.Set("Content-Type", "application/json")
	code, out, err := Do(req)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", method, path, err)
	}
	if code != http.StatusOK || strings.Contains(out, `"error"`) {
		return out, fmt.Errorf("%s %s: %d %s", method, path, code, out)
	}
	return out, nil
}

// Get fetches path from app through the router.
func (d *Daemon) Get(app, path string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+d.HTTPAddr+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = app + ".localhost"
	return Do(req)
}

// Repo is a git checkout of the test app with a `platform` remote.
type Repo struct {
	App, Dir string
	d        *Daemon
}

// NewRepo creates app on the daemon and a checkout for it under Dir/repos
// holding the testapp binary, the given Dockerfile (Dockerfile when ""),
// empty version and mode files, and no commit yet.
func (d *Daemon) NewRepo(app, dockerfile string) (*Repo, error) {
	if dockerfile == "" {
		dockerfile = Dockerfile
	}
	if _, err := d.CLI("apps:create", app); err != nil {
		return nil, err
	}
	r := &Repo{App: app, Dir: filepath.Join(d.Dir, "repos", app), d: d}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(d.Testapp)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(r.Dir, "app"), bin, 0o755); err != nil {
		return nil, err
	}
	for name, content := range map[string]string{"Dockerfile": dockerfile, "mode": "", "version": ""} {
		if err := r.Write(name, content); err != nil {
			return nil, err
		}
	}
	if err := r.Git("init", "-q", "-b", "main"); err != nil {
		return nil, err
	}
	cmd := exec.Command(d.Plat, "git:remote", app)
	cmd.Dir, cmd.Env = r.Dir, d.Env
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("plat git:remote %s: %w\n%s", app, err, out)
	}
	return r, nil
}

// Write writes a file of the checkout.
func (r *Repo) Write(name, content string) error {
	return os.WriteFile(filepath.Join(r.Dir, name), []byte(content), 0o644)
}

// Git runs git in the checkout.
func (r *Repo) Git(args ...string) error { return Run(r.d.Env, r.Dir, "git", args...) }

// Commit commits everything in the checkout.
func (r *Repo) Commit(msg string) error {
	if err := r.Git("add", "-A"); err != nil {
		return err
	}
	return r.Git("commit", "-q", "--allow-empty", "-m", msg)
}

// Push pushes main to the platform remote and returns git's output; a
// rejected push (failed build or health check) is an error.
func (r *Repo) Push() (string, error) {
	cmd := exec.Command("git", "push", "platform", "main")
	cmd.Dir, cmd.Env = r.Dir, r.d.Env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("git push %s: %w", r.App, err)
	}
	return string(out), nil
}

// Timings is the daemon's "Timings:" line in a push's output, or "".
func Timings(pushOutput string) string {
	sc := bufio.NewScanner(strings.NewReader(pushOutput))
	timings := ""
	for sc.Scan() {
		if _, t, ok := strings.Cut(sc.Text(), "Timings: "); ok {
			timings = strings.TrimSpace(t)
		}
	}
	return timings
}

// Do sends req and reads the whole answer.
func Do(req *http.Request) (int, string, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// FreePort returns a loopback address nobody listens on.
func FreePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Run runs a command and returns its output in the error when it fails.
func Run(env []string, dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env, cmd.Dir = env, dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}
