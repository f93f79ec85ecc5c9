package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plat-paas/plat/bench/load"
)

// strategyLoadClients is how many clients each of the two load runs (keep-alive
// and a new connection per request) uses in the strategy tests: enough to
// catch a refused or held request, light on a shared 2-core machine.
const strategyLoadClients = 4

// underLoad hits app through the router with keep-alive clients and
// clients opening a new connection per request until stop, which returns
// what each saw.
func underLoad(d *daemon, app string) (stop func() []load.Result) {
	ctx, cancel := context.WithCancel(context.Background())
	results := make([]load.Result, 2)
	var wg sync.WaitGroup
	for i, keepAlive := range []bool{true, false} {
		wg.Go(func() {
			results[i] = load.Run(ctx, load.Options{Target: d.httpAddr, Host: app + ".localhost", Concurrency: strategyLoadClients,
				KeepAlive: keepAlive, Pause: 5 * time.Millisecond})
		})
	}
	return func() []load.Result {
		cancel()
		wg.Wait()
		return results
	}
}

// checkLoad fails the test if any request failed: a connection error or a
// non-2xx answer (the test app answers 200, so every 502/503/504 is the
// router's). It returns the longest request.
func checkLoad(t *testing.T, what string, results []load.Result) time.Duration {
	t.Helper()
	var longest time.Duration
	for i, res := range results {
		mode := []string{"keep-alive", "new connection per request"}[i]
		t.Logf("%s, %s: %s", what, mode, res)
		if res.OK == 0 {
			t.Errorf("%s, %s: no request succeeded", what, mode)
		}
		if err := res.Check(); err != nil {
			t.Errorf("%s, %s: %v", what, mode, err)
		}
		longest = max(longest, res.Max)
	}
	return longest
}

// appContainers lists app's containers on the engine (any state) as
// "release.replica running", by the test's instance label.
func appContainers(d *daemon, app string) ([]string, error) {
	out, err := exec.Command("docker", "ps", "-a", "--filter", "label=plat.role=app", "--filter", "label=plat.instance="+d.instance,
		"--filter", "label=plat.app="+app, "--format", `{{.Label "plat.release"}}.{{.Label "plat.replica"}} {{.State}}`).Output()
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n"), nil
}

// sampler polls app's containers on the engine until stop, which returns
// the most that existed at once and the most releases running at once.
func sampler(d *daemon, app string) (stop func() (maxContainers, maxReleases int)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var maxContainers, maxReleases int
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cs, err := appContainers(d, app)
			if err != nil {
				continue
			}
			releases := map[string]bool{}
			for _, c := range cs {
				if rel, state, ok := strings.Cut(c, " "); ok && state == "running" {
					releases[strings.Split(rel, ".")[0]] = true
				}
			}
			maxContainers, maxReleases = max(maxContainers, len(cs)), max(maxReleases, len(releases))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return func() (int, int) {
		cancel()
		<-done
		return maxContainers, maxReleases
	}
}

// killWhenStarting waits until app's container of release.replica runs
// and calls kill until it succeeds. A container is listed from "created"
// on, when a docker kill fails ("is not running"), so it waits for
// "running" and retries a kill that failed; it fails the test if none
// succeeded before done was closed (the push ended) or a minute passed.
func killWhenStarting(t *testing.T, d *daemon, app, replica string, done <-chan struct{}, kill func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	err := fmt.Errorf("replica %s of %s never ran", replica, app)
	for failed := 0; time.Now().Before(deadline); {
		select {
		case <-done:
			t.Fatalf("the push ended before replica %s of %s could be killed while it started: %v", replica, app, err)
		default:
		}
		if cs, _ := appContainers(d, app); slices.Contains(cs, replica+" running") {
			if err = kill(); err == nil {
				t.Logf("killed replica %s of %s while it started (%d failed tries before)", replica, app, failed)
				return
			}
			failed++
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("could not kill replica %s of %s while it started: %v", replica, app, err)
}

// dockerKill kills a container, with the engine's reason when it cannot.
func dockerKill(name string) error {
	if out, err := exec.Command("docker", "kill", name).CombinedOutput(); err != nil {
		return fmt.Errorf("docker kill %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// releaseStatus reads a release's status and reason through the API.
func releaseStatus(t *testing.T, d *daemon, app string, version int) (status, reason string) {
	t.Helper()
	code, body := d.apiCall(http.MethodGet, "/api/apps/"+app+"/releases", "")
	var rels []struct {
		Version int    `json:"version"`
		Status  string `json:"status"`
		Reason  string `json:"reason"`
	}
	if err := json.Unmarshal([]byte(body), &rels); code != http.StatusOK || err != nil {
		t.Fatalf("GET releases: %d %v %s", code, err, body)
	}
	for _, r := range rels {
		if r.Version == version {
			return r.Status, r.Reason
		}
	}
	t.Fatalf("no release v%d in %s", version, body)
	return "", ""
}

// wantReplicas asserts app runs exactly the given release's replicas.
func wantReplicas(t *testing.T, d *daemon, app string, want ...string) {
	t.Helper()
	cs, err := appContainers(d, app)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cs {
		got = append(got, strings.TrimSuffix(c, " running"))
	}
	slices.Sort(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("containers %v, want %v running", cs, want)
	}
}

// TestRollingDeploy: with 3 replicas and batch 1, a rolling push and a
// config change (which follows the app's strategy) under load fail no
// request, never have more than 4 containers of the app on the engine,
// and end with the new release alone; a push whose second
// new replica fails its check (killed while it starts) is rejected, the
// old replica it replaced comes back, and still no request fails.
func TestRollingDeploy(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	const app = "roll"
	d.createApp(app)
	d.mustPlat("health:set", app, "--interval", "100ms", "--deadline", "20s")
	r := d.newRepo(app)
	r.commit("v1", "")
	r.mustPush("main")
	d.mustPlat("scale", app, "web=3")
	d.mustPlat("strategy:set", app, "rolling", "--batch", "1")
	d.mustServe(app, "version=v1")

	stopLoad, stopSampler := underLoad(d, app), sampler(d, app)
	r.commit("v2", "")
	out := r.mustPush("main")
	// A config change follows the app's strategy too.
	cfgOut := d.mustPlat("config:set", app, "GREETING=rolled")
	most, _ := stopSampler()
	checkLoad(t, "rolling push and config change", stopLoad())
	if !strings.Contains(cfgOut, "Replaced 1/3 replicas (v3: 1, v2: 2)") {
		t.Errorf("config:set did not roll:\n%s", cfgOut)
	}
	for _, want := range []string{"Replaced 1/3 replicas (v2: 1, v1: 2)", "Replaced 2/3 replicas (v2: 2, v1: 1)", "Replaced 3/3 replicas (v2: 3)", "Timings: "} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	if most > 4 {
		t.Errorf("%d containers of the app existed at once, want at most replicas + batch = 4", most)
	}
	t.Logf("rolling push: at most %d containers at once", most)
	d.mustServe(app, "version=v2 greeting=rolled")
	wantReplicas(t, d, app, "3.1", "3.2", "3.3")

	// The second new replica dies during its check: v4.1 served beside v3
	// already, so v3.1 must come back and v4.1 go.
	stopLoad, stopSampler = underLoad(d, app), sampler(d, app)
	r.commit("v4", "startdelay 1s")
	type result struct {
		out string
		err error
	}
	pushed, finished := make(chan result, 1), make(chan struct{})
	go func() {
		out, err := r.push("main")
		pushed <- result{out, err}
		close(finished)
	}()
	killWhenStarting(t, d, app, "4.2", finished, func() error { return dockerKill(d.instance + "-" + app + "-v4.2") })
	res := <-pushed
	most, _ = stopSampler()
	checkLoad(t, "failing rolling push", stopLoad())
	if res.err == nil || !strings.Contains(res.out, "replica 2 of v4") || !strings.Contains(res.out, "Restored v3: 3 replicas serving") {
		t.Errorf("failing push: err %v\n%s", res.err, res.out)
	}
	if most > 4 {
		t.Errorf("%d containers of the app existed at once during the failure, want at most 4", most)
	}
	if status, reason := releaseStatus(t, d, app, 4); status != "failed" || !strings.Contains(reason, "replica 2 of v4") {
		t.Errorf("v4 %s %q, want failed naming its replica", status, reason)
	}
	d.mustServe(app, "version=v2 greeting=rolled")
	wantReplicas(t, d, app, "3.1", "3.2", "3.3")
}

// TestInPlaceDeploy: an in-place push under load stops the old version
// before the new one starts (never two releases running at once) and
// fails no request: the router holds them meanwhile. A push whose new
// version fails its check brings the old version back, again without a
// failed request. The longest request is the pause clients saw.
func TestInPlaceDeploy(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	const app = "inplace"
	d.createApp(app)
	d.mustPlat("health:set", app, "--interval", "100ms", "--deadline", "10s")
	r := d.newRepo(app)
	r.commit("v1", "")
	r.mustPush("main")
	d.mustPlat("strategy:set", app, "in-place", "--hold", "30s")
	d.mustServe(app, "version=v1")

	stopLoad, stopSampler := underLoad(d, app), sampler(d, app)
	r.commit("v2", "")
	out := r.mustPush("main")
	_, releases := stopSampler()
	pause := checkLoad(t, "in-place push", stopLoad())
	t.Logf("in-place push: longest request %s (the pause)", pause)
	if !strings.Contains(out, "requests were held for") || !strings.Contains(out, "Holding requests (up to 30s) while v1 stops and v2 starts") {
		t.Errorf("push output:\n%s", out)
	}
	if releases > 1 {
		t.Errorf("%d releases ran at once, want never two", releases)
	}
	d.mustServe(app, "version=v2")
	wantReplicas(t, d, app, "2.1")

	d.mustPlat("health:set", app, "--deadline", "2s") // fail fast
	stopLoad, stopSampler = underLoad(d, app), sampler(d, app)
	r.commit("v3", "unhealthy")
	out, err := r.push("main")
	_, releases = stopSampler()
	pause = checkLoad(t, "failing in-place push", stopLoad())
	t.Logf("failing in-place push: longest request %s", pause)
	if err == nil || !strings.Contains(out, "health check failed") || !strings.Contains(out, "Started v2 again (1 replica)") {
		t.Errorf("failing push: err %v\n%s", err, out)
	}
	if releases > 1 {
		t.Errorf("%d releases ran at once, want never two", releases)
	}
	d.mustServe(app, "version=v2")
	wantReplicas(t, d, app, "2.1")
	if !d.hasEvent(app, "restored", "v2 serves again") {
		t.Errorf("no restored event: %+v", d.events(app))
	}
}

// TestRollingKilledMidway: a daemon killed (SIGKILL) while a rolling
// deploy has replaced one of three replicas comes back with the stable
// release serving alone on all three, the new release failed as
// interrupted, and none of its containers left.
func TestRollingKilledMidway(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	const app = "rollkill"
	d.createApp(app)
	d.mustPlat("health:set", app, "--interval", "100ms", "--deadline", "20s")
	r := d.newRepo(app)
	r.commit("v1", "")
	r.mustPush("main")
	d.mustPlat("scale", app, "web=3")
	d.mustPlat("strategy:set", app, "rolling")

	r.commit("v2", "startdelay 1s")
	pushed := make(chan struct{})
	go func() { r.push("main"); close(pushed) }()
	// v2.2 starts once v2.1 serves and v1.1 is gone: a mix of both.
	killWhenStarting(t, d, app, "2.2", pushed, func() error { d.stop(syscall.SIGKILL); return nil })
	<-pushed
	d.start()

	if status, reason := releaseStatus(t, d, app, 2); status != "failed" || !strings.Contains(reason, "interrupted") {
		t.Errorf("v2 %s %q, want failed as interrupted", status, reason)
	}
	wantReplicas(t, d, app, "1.1", "1.2", "1.3")
	for range 6 {
		d.mustServe(app, "version=v1")
	}
}
