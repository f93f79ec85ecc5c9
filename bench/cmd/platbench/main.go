// Command platbench measures plat's deploys on the real Docker Engine: push
// to serving time and its phases, rollback time, the daemon's memory idle
// and with many apps, and routing cost with 1 and many apps. It builds plat
// and the test app, runs its own daemon on free loopback ports and cleans
// up what it made in the engine.
//
//	go run ./bench/cmd/platbench -pushes 7 -apps 50 -coldstart 10 -replica-rounds 3
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/plat-paas/plat/bench/load"
)

func main() {
	pushes := flag.Int("pushes", 7, "timed pushes (and rollbacks) of one app, after a warm-up push")
	apps := flag.Int("apps", 50, "apps to deploy for the footprint run (0 skips it)")
	loadFor := flag.Duration("load", 5*time.Second, "length of each routing-cost load run")
	coldStarts := flag.Int("coldstart", 10, "cold starts (sleeping app → first byte) to time, beside direct starts (0 skips)")
	replicaRounds := flag.Int("replica-rounds", 3, "rounds of the 1 vs 3 replicas throughput run (0 skips it)")
	flag.Parse()
	log.SetFlags(0)

	b, err := newBench()
	if err != nil {
		fatalf("%v", err)
	}
	defer b.close()
	onFatal = b.close
	fmt.Printf("daemon RSS idle: %s\n", b.rss())
	if *pushes > 0 {
		b.deploySpeed(*pushes)
	}
	if *coldStarts > 0 {
		b.coldStart(*coldStarts)
	}
	if *replicaRounds > 0 {
		b.replicaThroughput(*replicaRounds, *loadFor)
	}
	if *apps > 0 {
		b.footprint(*apps, *loadFor)
	}
}

type bench struct {
	dir, plat, testapp string
	apiAddr, httpAddr  string
	instance, token    string
	daemon             *exec.Cmd
	env                []string
	repos              map[string]string // app → checkout
	commits            int
}

func newBench() (*bench, error) {
	dir, err := os.MkdirTemp("", "platbench-")
	if err != nil {
		return nil, err
	}
	b := &bench{dir: dir, plat: filepath.Join(dir, "plat"), testapp: filepath.Join(dir, "testapp"),
		apiAddr: freePort(), httpAddr: freePort(), instance: fmt.Sprintf("platbench-%d", os.Getpid()), repos: map[string]string{}}
	if err := run(nil, "", "go", "build", "-o", b.plat, "github.com/plat-paas/plat/cmd/plat"); err != nil {
		return nil, err
	}
	if err := run(append(os.Environ(), "CGO_ENABLED=0"), "", "go", "build", "-o", b.testapp, "github.com/plat-paas/plat/internal/testapp"); err != nil {
		return nil, err
	}
	b.daemon = exec.Command(b.plat, "daemon", "--data", filepath.Join(dir, "data"), "--api", b.apiAddr, "--http", b.httpAddr, "--instance", b.instance, "--drain-timeout", "5s", "--https", "")
	logf, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		return nil, err
	}
	b.daemon.Stdout, b.daemon.Stderr = logf, logf
	if err := b.daemon.Start(); err != nil {
		return nil, err
	}
	for i := 0; ; i++ {
		if resp, err := http.Get("http://" + b.apiAddr + "/api/whoami"); err == nil {
			resp.Body.Close()
			break
		}
		if i > 600 {
			return nil, fmt.Errorf("daemon did not start; see %s", logf.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, err := exec.Command(b.plat, "daemon", "token", "--data", filepath.Join(dir, "data")).Output()
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	b.token = strings.TrimSpace(string(out))
	home := filepath.Join(dir, "home")
	b.env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"PLAT_URL=http://"+b.apiAddr, "PLAT_TOKEN="+b.token, "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@plat.invalid", "GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@plat.invalid")
	time.Sleep(2 * time.Second) // let start-up garbage settle before the idle reading
	return b, nil
}

// close stops the daemon and removes its containers, images and files.
func (b *bench) close() {
	if b.daemon != nil && b.daemon.Process != nil {
		b.daemon.Process.Signal(syscall.SIGTERM)
		b.daemon.Wait()
	}
	if ids, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=plat.instance="+b.instance).Output(); len(ids) > 0 {
		exec.Command("docker", append([]string{"rm", "-f"}, strings.Fields(string(ids))...)...).Run()
	}
	if ids, _ := exec.Command("docker", "images", "-q", "--filter", "label=plat.instance="+b.instance).Output(); len(ids) > 0 {
		exec.Command("docker", append([]string{"rmi", "-f"}, strings.Fields(string(ids))...)...).Run()
	}
	if ids, _ := exec.Command("docker", "network", "ls", "-q", "--filter", "label=plat.instance="+b.instance).Output(); len(ids) > 0 {
		exec.Command("docker", append([]string{"network", "rm"}, strings.Fields(string(ids))...)...).Run()
	}
	os.RemoveAll(b.dir)
}

// rss is the daemon's resident memory (VmRSS).
func (b *bench) rss() string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.daemon.Process.Pid))
	if err != nil {
		return "?"
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(rest)[0])
			return fmt.Sprintf("%.1f MB", float64(kb)/1024)
		}
	}
	return "?"
}

func (b *bench) cli(args ...string) (string, error) {
	cmd := exec.Command(b.plat, args...)
	cmd.Env = b.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("plat %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// newApp creates an app and a checkout of the test app for it.
func (b *bench) newApp(app string) {
	must(b.cli("apps:create", app))
	dir := filepath.Join(b.dir, "repos", app)
	must("", os.MkdirAll(dir, 0o755))
	bin, err := os.ReadFile(b.testapp)
	must("", err)
	must("", os.WriteFile(filepath.Join(dir, "app"), bin, 0o755))
	must("", os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY app /app\nCOPY version /version\nCMD [\"/app\"]\n"), 0o644))
	must("", run(b.env, dir, "git", "init", "-q", "-b", "main"))
	cmd := exec.Command(b.plat, "git:remote", app)
	cmd.Dir, cmd.Env = dir, b.env
	must(cmd.CombinedOutput())
	b.repos[app] = dir
}

// push commits a new version and pushes it, returning the time until the
// router served it, the push's total time and the daemon's timings line.
func (b *bench) push(app string) (serving, total time.Duration, timings string) {
	b.commits++
	version := fmt.Sprintf("b%d", b.commits)
	dir := b.repos[app]
	must("", os.WriteFile(filepath.Join(dir, "version"), []byte(version), 0o644))
	must("", run(b.env, dir, "git", "add", "-A"))
	must("", run(b.env, dir, "git", "commit", "-q", "-m", version))
	start := time.Now()
	served := b.watchServing(app, func(body string) bool { return strings.Contains(body, "version="+version+" ") })
	cmd := exec.Command("git", "push", "platform", "main")
	cmd.Dir, cmd.Env = dir, b.env
	out, err := cmd.CombinedOutput()
	total = time.Since(start)
	if err != nil {
		fatalf("push: %v\n%s", err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if _, t, ok := strings.Cut(sc.Text(), "Timings: "); ok {
			timings = strings.TrimSpace(t)
		}
	}
	return <-served, total, timings
}

// watchServing polls the router (every 1ms) until app answers 200 with a
// body that satisfies ok, and sends how long that took.
func (b *bench) watchServing(app string, ok func(body string) bool) <-chan time.Duration {
	start := time.Now()
	ch := make(chan time.Duration, 1)
	client := &http.Client{Timeout: 5 * time.Second}
	go func() {
		for {
			req, _ := http.NewRequest(http.MethodGet, "http://"+b.httpAddr+"/", nil)
			req.Host = app + ".localhost"
			if resp, err := client.Do(req); err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK && ok(string(body)) {
					ch <- time.Since(start)
					return
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return ch
}

func (b *bench) deploySpeed(n int) {
	const app = "speed"
	b.newApp(app)
	b.push(app) // warm-up: fills the build cache
	fmt.Printf("\n## push to serving (%d pushes, cached FROM-scratch app)\n", n)
	var servings, totals []time.Duration
	for range n {
		serving, total, timings := b.push(app)
		servings, totals = append(servings, serving), append(totals, total)
		fmt.Printf("serving after %-8s push returned after %-8s daemon: %s\n", round(serving), round(total), timings)
	}
	fmt.Printf("median: serving %s, push %s\n", median(servings), median(totals))

	fmt.Printf("\n## rollback to serving (%d rollbacks)\n", n)
	var rbs []time.Duration
	for range n {
		_, prev, _ := get(b.httpAddr, app)
		start := time.Now()
		served := b.watchServing(app, func(body string) bool { return body != prev })
		out, err := b.cli("rollback", app)
		must(out, err)
		took := time.Since(start)
		serving := <-served
		rbs = append(rbs, serving)
		fmt.Printf("rollback: old version serving after %-8s command returned after %s\n", round(serving), round(took))
	}
	fmt.Printf("median rollback: %s\n", median(rbs))
}

func (b *bench) footprint(apps int, loadFor time.Duration) {
	fmt.Printf("\n## footprint and scale (1 → %d apps)\n", apps)
	routing := func() load.Result {
		ctx, cancel := context.WithTimeout(context.Background(), loadFor)
		defer cancel()
		return load.Run(ctx, load.Options{Target: b.httpAddr, Host: "speed.localhost", KeepAlive: true})
	}
	r1 := routing()
	fmt.Printf("routing with 1 app: %s\n", r1)
	fmt.Printf("daemon RSS with 1 app: %s\n", b.rss())
	for i := 1; i <= apps; i++ {
		app := fmt.Sprintf("app%d", i)
		b.newApp(app)
		serving, total, timings := b.push(app)
		if i == 1 || i%10 == 0 {
			fmt.Printf("app %d: serving after %s, push %s (%s); daemon RSS %s\n", i, round(serving), round(total), timings, b.rss())
		}
	}
	runtime := routing()
	fmt.Printf("routing with %d apps: %s\n", apps+1, runtime)
}

func get(addr, app string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	req.Host = app + ".localhost"
	return do(req)
}

// do sends req and reads the whole answer.
func do(req *http.Request) (int, string, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("%v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

func run(env []string, dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env, cmd.Dir = env, dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func must[T any](v T, err error) T {
	if err != nil {
		fatalf("%v", err)
	}
	return v
}

// onFatal cleans up before fatalf exits (deferred calls do not run then).
var onFatal = func() {}

func fatalf(format string, args ...any) {
	log.Printf(format, args...)
	onFatal()
	os.Exit(1)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return round(s[len(s)/2])
}

func round(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
