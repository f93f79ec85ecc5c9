package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/plat-paas/plat/bench/load"
	"github.com/plat-paas/plat/bench/platd"
)

// op is one kind of deploy.
type op string

const (
	opPush       op = "push"        // a new commit with a new version
	opPushRevert op = "push-revert" // a new commit whose tree equals an earlier one: same image
	opConfig     op = "config"      // config:set: a new release of the same image
	opRollback   op = "rollback"    // back to the release before the active one
	opUnhealthy  op = "push-unhealthy"
	opBadBuild   op = "push-badbuild"
)

// cycle is what each app goes through, over and over: 4 pushes (one that
// reverts), 2 config changes, 2 rollbacks, a push whose health check fails
// and one whose Dockerfile fails.
var cycle = []op{opPush, opConfig, opPush, opRollback, opUnhealthy, opPush, opConfig, opPushRevert, opBadBuild, opRollback}

// failing says which ops must be refused (the old release keeps serving).
func (o op) failing() bool { return o == opUnhealthy || o == opBadBuild }

// badDockerfile fails at its last step, after the steps that make new
// layers, as a typo in a real Dockerfile would.
const badDockerfile = "FROM scratch\nCOPY soak-id /soak-id\nCOPY app /app\nCOPY mode /mode\nCOPY version /version\nCOPY no-such-file /x\nCMD [\"/app\"]\n"

// dockerfile starts with a file unique to this run, so every layer the
// soak builds descends from an image no one else has: the leftover check
// can tell this run's intermediate images from other users' of the engine.
const dockerfile = "FROM scratch\nCOPY soak-id /soak-id\nCOPY app /app\nCOPY mode /mode\nCOPY version /version\nCMD [\"/app\"]\n"

type app struct {
	name    string
	repo    *platd.Repo
	ops     int      // deploys done
	pushes  []string // versions pushed successfully, oldest first
	version string   // version file of the commit on the remote
}

// deployRecord is one deploy's outcome.
type deployRecord struct {
	n        int
	app      string
	op       op
	took     time.Duration
	ok       bool   // the outcome was the expected one
	problem  string // why not
	finished time.Time
}

type soak struct {
	o          options
	d          *platd.Daemon
	tmp        string
	netsBefore map[string]bool
	started    time.Time
	apps       []*app
	deploys    []deployRecord
	samples    []sample
	load       *loader
	commits    int
	roots      map[string]bool // this run's first-layer images
}

func (s *soak) run() (bool, error) {
	for i := range s.o.apps {
		if err := s.newApp(fmt.Sprintf("soak%d", i+1)); err != nil {
			return false, err
		}
	}
	names := make([]string, len(s.apps))
	for i, a := range s.apps {
		names[i] = a.name
	}
	s.load = startLoader(s.d.HTTPAddr, names, s.o.clients, s.o.pause)
	defer s.load.stop()
	dataBefore := dirSize(s.d.Data)

	time.Sleep(warmup)
	if err := s.sample("before", 0); err != nil {
		return false, err
	}
	for n := 1; n <= s.o.deploys; n++ {
		a := s.apps[(n-1)%len(s.apps)]
		s.deploys = append(s.deploys, s.deploy(n, a))
		if r := s.deploys[len(s.deploys)-1]; !r.ok {
			fmt.Printf("deploy %d (%s %s): UNEXPECTED: %s\n", n, r.app, r.op, r.problem)
		}
		if n%s.o.sampleEvery == 0 || n == s.o.deploys {
			if err := s.sample(fmt.Sprintf("deploy %d", n), n); err != nil {
				return false, err
			}
		}
	}
	fmt.Printf("settling for %s (requests keep flowing)\n", s.o.settle)
	time.Sleep(s.o.settle)
	if err := s.sample("after", s.o.deploys); err != nil {
		return false, err
	}
	s.load.stop()

	kept, err := s.checkLeftovers("after the deploys (apps kept)", false)
	if err != nil {
		return false, err
	}
	for _, a := range s.apps {
		if _, err := s.d.CLI("apps:destroy", a.name, "--confirm", a.name); err != nil {
			return false, err
		}
	}
	destroyed, err := s.checkLeftovers("after apps:destroy", true)
	if err != nil {
		return false, err
	}
	s.d.Stop() // the temp files must be gone once the daemon is
	tmpLeft, dataLeft := s.checkFiles()

	rep := s.report(kept, destroyed, tmpLeft, dataLeft, dataBefore)
	fmt.Print("\n" + rep.text)
	if s.o.out != "" {
		if err := rep.write(s.o.out); err != nil {
			return false, err
		}
	}
	return rep.pass, nil
}

// newApp creates an app, sets a short health-check deadline (failing
// pushes then take seconds, not the default minute) and deploys it once.
func (s *soak) newApp(name string) error {
	r, err := s.d.NewRepo(name, dockerfile)
	if err != nil {
		return err
	}
	if err := r.Write("soak-id", s.d.Instance); err != nil {
		return err
	}
	if _, err := s.d.CLI("health:set", name, "--deadline", s.o.healthDeadline); err != nil {
		return err
	}
	a := &app{name: name, repo: r}
	s.apps = append(s.apps, a)
	if err := s.commit(a, s.newVersion(), "", dockerfile); err != nil {
		return err
	}
	if out, err := r.Push(); err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	a.pushes = append(a.pushes, a.version)
	return nil
}

func (s *soak) newVersion() string {
	s.commits++
	return fmt.Sprintf("s%d", s.commits)
}

// commit writes the version, mode and Dockerfile and commits them.
func (s *soak) commit(a *app, version, mode, df string) error {
	for name, content := range map[string]string{"version": version, "mode": mode, "Dockerfile": df} {
		if err := a.repo.Write(name, content); err != nil {
			return err
		}
	}
	a.version = version
	return a.repo.Commit("version " + version)
}

// appState is what the API says about an app.
type appState struct {
	Status   string `json:"status"`
	Active   int    `json:"active"`
	Replicas int    `json:"replicas"`
	ImageID  string `json:"image_id"`
}

func (s *soak) appState(name string) (appState, error) {
	var st appState
	out, err := s.d.API(http.MethodGet, "/api/apps/"+name, "")
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal([]byte(out), &st)
}

// deploy runs the app's next op and checks its outcome: a release that
// serves what was deployed, or, for a failing push, a refused push and the
// old release still serving.
func (s *soak) deploy(n int, a *app) deployRecord {
	o := cycle[a.ops%len(cycle)]
	a.ops++
	rec := deployRecord{n: n, app: a.name, op: o}
	before, err := s.appState(a.name)
	if err != nil {
		rec.problem = err.Error()
		return rec
	}
	_, bodyBefore, _ := s.d.Get(a.name, "/")
	start := time.Now()
	want, err := s.do(a, o)
	rec.took, rec.finished = time.Since(start), time.Now()
	after, serr := s.appState(a.name)
	code, body, gerr := s.d.Get(a.name, "/")
	switch {
	case serr != nil:
		rec.problem = serr.Error()
	case gerr != nil || code != http.StatusOK:
		rec.problem = fmt.Sprintf("the router answered %d %q (%v) after the deploy", code, body, gerr)
	case o.failing() && err == nil:
		rec.problem = "the push was accepted"
	case o.failing() && (after.Active != before.Active || body != bodyBefore):
		rec.problem = fmt.Sprintf("the failed push changed what serves: v%d %q → v%d %q", before.Active, bodyBefore, after.Active, body)
	case !o.failing() && err != nil:
		rec.problem = err.Error()
	case !o.failing() && (after.Active <= before.Active || !strings.Contains(body, want)):
		rec.problem = fmt.Sprintf("v%d → v%d, serving %q, want %q", before.Active, after.Active, body, want)
	default:
		rec.ok = true
	}
	return rec
}

// do runs one op and returns what the app should answer after it.
func (s *soak) do(a *app, o op) (want string, err error) {
	switch o {
	case opPush, opPushRevert, opUnhealthy, opBadBuild:
		version, mode, df := s.newVersion(), "", dockerfile
		switch o {
		case opPushRevert:
			// The tree of two successful pushes ago: the build is all
			// cache hits and the release shares that release's image.
			if len(a.pushes) >= 2 {
				version = a.pushes[len(a.pushes)-2]
			}
		case opUnhealthy:
			mode = "unhealthy"
		case opBadBuild:
			df = badDockerfile
		}
		prev := a.version
		if err := s.commit(a, version, mode, df); err != nil {
			return "", err
		}
		out, err := a.repo.Push()
		if o.failing() {
			// The remote branch stayed where it was: so does the checkout.
			if rerr := a.repo.Git("reset", "-q", "--hard", "HEAD~1"); rerr != nil {
				return "", rerr
			}
			a.version = prev
			return "", err
		}
		if err != nil {
			return "", fmt.Errorf("%w\n%s", err, out)
		}
		a.pushes = append(a.pushes, version)
		return "version=" + version + " ", nil
	case opConfig:
		s.commits++
		g := fmt.Sprintf("g%d", s.commits)
		_, err := s.d.CLI("config:set", a.name, "GREETING="+g)
		return "greeting=" + g + "\n", err
	case opRollback:
		_, err := s.d.CLI("rollback", a.name)
		return "", err // what it rolls back to is checked by the active version going up
	}
	return "", fmt.Errorf("unknown op %q", o)
}

// loader keeps requests flowing to every app and cuts its counts into
// windows, one per sample.
type loader struct {
	addr    string
	apps    []string
	clients int
	pause   time.Duration
	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan load.Result
	stopped bool
}

func startLoader(addr string, apps []string, clients int, pause time.Duration) *loader {
	l := &loader{addr: addr, apps: apps, clients: clients, pause: pause}
	l.start()
	return l
}

func (l *loader) start() {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel, l.done = cancel, make(chan load.Result, 1)
	go func() {
		results := make([]load.Result, len(l.apps))
		var wg sync.WaitGroup
		for i, app := range l.apps {
			wg.Go(func() {
				results[i] = load.Run(ctx, load.Options{Target: l.addr, Host: app + ".localhost", Concurrency: l.clients,
					KeepAlive: true, Pause: l.pause, Timeout: 10 * time.Second})
			})
		}
		wg.Wait()
		l.done <- mergeResults(results)
	}()
}

// cut ends the current window, starts the next and returns the window's
// counts.
func (l *loader) cut() load.Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return load.Result{}
	}
	l.cancel()
	r := <-l.done
	l.start()
	return r
}

// stop ends the load; its last window's counts are dropped unless cut
// first.
func (l *loader) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	l.stopped = true
	l.cancel()
	<-l.done
}

func mergeResults(rs []load.Result) load.Result {
	var t load.Result
	for _, r := range rs {
		t.Requests += r.Requests
		t.OK += r.OK
		t.Non2xx += r.Non2xx
		t.Errors += r.Errors
		t.Duration = max(t.Duration, r.Duration)
		t.P99 = max(t.P99, r.P99)
		t.Max = max(t.Max, r.Max)
		t.Failures = append(t.Failures, r.Failures...)
	}
	return t
}

// networkIDs lists the engine's networks by ID.
func networkIDs() map[string]bool {
	ids := map[string]bool{}
	out, _ := output("docker", "network", "ls", "-q", "--no-trunc")
	for _, id := range strings.Fields(out) {
		ids[id] = true
	}
	return ids
}

// dirSize is the size in bytes of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if info, err := e.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// opStats summarises the deploys of one op kind.
type opStats struct {
	op                op
	count, unexpected int
	median, max       time.Duration
}

func statsByOp(recs []deployRecord) []opStats {
	var out []opStats
	for _, o := range []op{opPush, opPushRevert, opConfig, opRollback, opUnhealthy, opBadBuild} {
		var ds []time.Duration
		st := opStats{op: o}
		for _, r := range recs {
			if r.op == o {
				ds = append(ds, r.took)
				if !r.ok {
					st.unexpected++
				}
			}
		}
		if len(ds) == 0 {
			continue
		}
		slices.Sort(ds)
		st.count, st.median, st.max = len(ds), ds[len(ds)/2], ds[len(ds)-1]
		out = append(out, st)
	}
	return out
}
