package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plat-paas/plat/bench/load"
)

// appState is the part of the API's app JSON the scaling tests read.
type appState struct {
	Status   string `json:"status"`
	Replicas int    `json:"replicas"`
	Scale    struct {
		Min, Max int
	} `json:"scale"`
}

type psLine struct {
	Name  string `json:"name"`
	ID    string `json:"container_id"`
	Index int    `json:"index"`
	Addr  string `json:"addr"`
	State string `json:"state"`
}

// apiGet decodes the JSON answer of an authenticated GET on the API.
func (d *daemon) apiGet(path string, v any) {
	d.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.apiAddr+path, nil)
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil || resp.StatusCode != http.StatusOK {
		d.t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
	}
}

func (d *daemon) appState(app string) appState {
	var s appState
	d.apiGet("/api/apps/"+app, &s)
	return s
}

func (d *daemon) ps(app string) []psLine {
	var ps []psLine
	d.apiGet("/api/apps/"+app+"/ps", &ps)
	return ps
}

// servedBy sends n sequential requests and counts the answering replicas
// (the test app answers with its host name, the container's short ID).
func (d *daemon) servedBy(app string, n int, want string) map[string]int {
	d.t.Helper()
	hosts := map[string]int{}
	for range n {
		code, body, err := d.get(app, "/")
		if err != nil || code != http.StatusOK || !strings.Contains(body, want) {
			d.t.Fatalf("GET %s: %d %q %v; want 200 with %q", app, code, body, err, want)
		}
		host, _, _ := strings.Cut(strings.TrimPrefix(body, "host="), " ")
		hosts[host]++
	}
	return hosts
}

// containerStarts counts the engine's start events of app's containers
// between since and until.
func (d *daemon) containerStarts(app string, since, until time.Time) int {
	d.t.Helper()
	out, err := exec.Command("docker", "events",
		"--since", since.Format(time.RFC3339Nano), "--until", until.Format(time.RFC3339Nano),
		"--filter", "type=container", "--filter", "event=start",
		"--filter", "label=plat.instance="+d.instance, "--filter", "label=plat.app="+app,
		"--format", "{{.ID}}").CombinedOutput()
	if err != nil {
		d.t.Fatalf("docker events: %v\n%s", err, out)
	}
	return len(strings.Fields(string(out)))
}

func (d *daemon) eventCount(app, kind string) int {
	n := 0
	for _, e := range d.events(app) {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// TestReplicas runs three replicas: each gets traffic and logs with its
// label; under light load, killing one, a push and a rollback (each
// replacing all three blue-green) fail no request; the scale stays.
func TestReplicas(t *testing.T) {
	d := startDaemon(t)
	const app = "trio"
	r := d.deployedApp(app, "v1")
	out := d.mustPlat("scale", app, "web=3")
	if !strings.Contains(out, "3") {
		t.Errorf("plat scale output does not mention 3 replicas:\n%s", out)
	}
	ps := d.ps(app)
	if len(ps) != 3 {
		t.Fatalf("ps after web=3: %+v, want 3 replicas", ps)
	}
	if got := d.appState(app); got.Replicas != 3 || got.Status != "running" {
		t.Errorf("app after web=3: %+v", got)
	}
	hosts := d.servedBy(app, 60, "version=v1")
	if len(hosts) != 3 {
		t.Fatalf("60 requests were served by %v, want 3 replicas", hosts)
	}
	for h, n := range hosts {
		if n < 10 {
			t.Errorf("replica %s got %d of 60 requests", h, n)
		}
	}

	// Logs come from every replica, each line labelled with its replica.
	for i := range 6 {
		if code, _, err := d.get(app, fmt.Sprintf("/?print=line-%d", i)); err != nil || code != http.StatusOK {
			t.Fatalf("GET ?print: %d %v", code, err)
		}
	}
	waitFor(t, 15*time.Second, "plat logs to show lines of all three replicas", func() bool {
		out, _ := d.plat("logs", app)
		return strings.Contains(out, "web.1 | line-") && strings.Contains(out, "web.2 | line-") && strings.Contains(out, "web.3 | line-")
	})

	// Four clients keep asking while replica 2 is killed, a push replaces
	// all three replicas and a rollback brings v1 back: not one may fail.
	ctx, stop := context.WithCancel(context.Background())
	var res load.Result
	var wg sync.WaitGroup
	wg.Go(func() {
		res = load.Run(ctx, load.Options{Target: d.httpAddr, Host: app + ".localhost", Concurrency: 4, KeepAlive: true})
	})
	defer stop()
	time.Sleep(500 * time.Millisecond)
	victim := ps[1]
	if out, err := exec.Command("docker", "kill", victim.ID).CombinedOutput(); err != nil {
		t.Fatalf("docker kill: %v\n%s", err, out)
	}
	waitFor(t, 30*time.Second, "the killed replica to serve again", func() bool {
		now := d.ps(app)
		return len(now) == 3 && now[1].ID == victim.ID && now[1].Addr != victim.Addr
	})
	if !d.hasEvent(app, "crashed", victim.Name) {
		t.Errorf("no crashed event for %s: %+v", victim.Name, d.events(app))
	}
	r.commit("v2", "")
	r.mustPush("main")
	d.servedBy(app, 30, "version=v2") // every replica runs v2
	if n := len(d.containers(app)); n != 3 {
		t.Errorf("%d containers after the push, want 3 (old ones removed)", n)
	}
	d.mustPlat("rollback", app)
	d.servedBy(app, 30, "version=v1")
	time.Sleep(500 * time.Millisecond)
	stop()
	wg.Wait()
	t.Logf("load across the kill, the push and the rollback: %s", res)
	if res.OK == 0 || res.Failed() != 0 {
		t.Errorf("requests failed with three replicas: %s %v", res, res.Failures)
	}
	if hosts := d.servedBy(app, 30, "version=v1"); len(hosts) != 3 {
		t.Errorf("after the rollback, v1 served by %v, want 3 replicas", hosts)
	}
	if got := d.appState(app); got.Scale.Min != 3 || got.Scale.Max != 3 || got.Replicas != 3 {
		t.Errorf("after the rollback the app is %+v, want web=3 kept", got)
	}

	d.mustPlat("scale", app, "web=1")
	if ps := d.ps(app); len(ps) != 1 {
		t.Errorf("ps after web=1: %+v", ps)
	}
	waitFor(t, 30*time.Second, "extra replicas removed", func() bool { return len(d.containers(app)) == 1 })
}

// TestScaleToZero lets an app sleep cold (--cold-after 0) when idle and
// wakes it on requests: the containers are stopped, not removed; 20 concurrent requests on the
// sleeping app start one container and all get 200; a daemon restart keeps
// the app asleep.
func TestScaleToZero(t *testing.T) {
	d := startDaemon(t)
	const app = "nap"
	d.deployedApp(app, "v1")
	d.mustPlat("scale", app, "--min", "0", "--idle", "2s", "--cold-after", "0")
	waitFor(t, 30*time.Second, "the idle app to sleep", func() bool { return d.appState(app).Status == "sleeping" })
	ids := d.containers(app)
	if len(ids) != 1 {
		t.Fatalf("a sleeping app has %d containers, want its 1 stopped one", len(ids))
	}
	// "sleeping" is recorded before the container is stopped (a daemon
	// that dies in between finishes the job when it starts again).
	waitFor(t, 30*time.Second, "the sleeping app's container to stop", func() bool {
		return dockerInspect(t, "{{.State.Running}}", ids[0]) == "false"
	})
	if out := d.mustPlat("apps"); !strings.Contains(out, "sleeping") {
		t.Errorf("plat apps does not show the app sleeping:\n%s", out)
	}
	if got := d.appState(app); got.Replicas != 0 {
		t.Errorf("sleeping app reports %d replicas", got.Replicas)
	}

	since := time.Now()
	var wg sync.WaitGroup
	results := make([]string, 20)
	for i := range results {
		wg.Go(func() {
			code, body, err := d.get(app, "/")
			if err != nil || code != http.StatusOK || !strings.Contains(body, "version=v1") {
				results[i] = strings.TrimSpace(body) + " " + http.StatusText(code)
				if err != nil {
					results[i] += " " + err.Error()
				}
			}
		})
	}
	wg.Wait()
	tookAll := time.Since(since)
	for i, r := range results {
		if r != "" {
			t.Errorf("request %d to the sleeping app failed: %s", i, r)
		}
	}
	if n := d.containerStarts(app, since, time.Now()); n != 1 {
		t.Errorf("20 concurrent requests made %d container starts, want 1", n)
	}
	if n := d.eventCount(app, "woke"); n != 1 {
		t.Errorf("%d woke events, want 1: %+v", n, d.events(app))
	}
	if ids2 := d.containers(app); len(ids2) != 1 || ids2[0] != ids[0] {
		t.Errorf("the wake made containers %v, want the stopped one %v started again", ids2, ids)
	}
	t.Logf("20 concurrent requests on the sleeping app all answered within %s", tookAll.Round(time.Millisecond))

	// Asleep again, then a daemon restart: still asleep, and it still wakes.
	waitFor(t, 30*time.Second, "the app to sleep again", func() bool { return d.appState(app).Status == "sleeping" })
	d.restart(syscall.SIGTERM)
	if got := d.appState(app); got.Status != "sleeping" {
		t.Errorf("after a daemon restart the app is %q, want sleeping", got.Status)
	}
	if running := dockerInspect(t, "{{.State.Running}}", ids[0]); running != "false" {
		t.Errorf("a daemon restart started the sleeping app's container")
	}
	d.mustServe(app, "version=v1")
}

// sleepingSlowApp deploys v1 of app with a health check that takes
// answerAfter to answer, and lets it fall asleep cold (min 0, idle 1s,
// cold-after 0).
func (d *daemon) sleepingSlowApp(app, answerAfter string) {
	d.t.Helper()
	d.createApp(app)
	d.mustPlat("health:set", app, "--path", "/?sleep="+answerAfter, "--timeout", "10s")
	r := d.newRepo(app)
	r.commit("v1", "")
	r.mustPush("main")
	d.mustPlat("scale", app, "--min", "0", "--idle", "1s", "--cold-after", "0")
	waitFor(d.t, 30*time.Second, "the app to sleep", func() bool { return d.appState(app).Status == "sleeping" })
}

// TestWakeTimeout: a wake slower than --wake-timeout answers 504 with a
// page that says so, and the app stays asleep rather than half-awake.
func TestWakeTimeout(t *testing.T) {
	d := startDaemon(t, "--wake-timeout", "1s")
	const app = "slowpoke"
	// Its health check takes 2s to answer: every wake outlasts the 1s wait.
	d.sleepingSlowApp(app, "2s")

	code, body, err := d.get(app, "/")
	if err != nil || code != http.StatusGatewayTimeout || !strings.Contains(body, "did not wake up within 1s") {
		t.Fatalf("GET while waking slowly: %d %q %v; want 504 saying it did not wake up within 1s", code, body, err)
	}
	if !strings.Contains(body, "plat logs "+app) {
		t.Errorf("the 504 page does not say what to do next: %q", body)
	}
	waitFor(t, 15*time.Second, "the failed wake to be recorded", func() bool { return d.eventCount(app, "wake-failed") > 0 })
	if got := d.appState(app).Status; got != "sleeping" {
		t.Errorf("after a failed wake the app is %q, want sleeping", got)
	}
}

// TestAutoscale adds replicas while in-flight requests per replica stay
// above the target and removes them after the load is gone; each decision
// is an event and no request fails meanwhile.
func TestAutoscale(t *testing.T) {
	d := startDaemon(t, "--scale-down-delay", "2s")
	const app = "elastic"
	d.deployedApp(app, "v1")
	d.mustPlat("scale", app, "--min", "1", "--max", "3", "--target", "2")

	ctx, stop := context.WithCancel(context.Background())
	var res load.Result
	var wg sync.WaitGroup
	wg.Go(func() {
		res = load.Run(ctx, load.Options{Target: d.httpAddr, Host: app + ".localhost", Path: "/?sleep=200ms", Concurrency: 12, KeepAlive: true})
	})
	waitFor(t, 30*time.Second, "the autoscaler to add replicas", func() bool { return d.appState(app).Replicas == 3 })
	stop()
	wg.Wait()
	t.Logf("load while scaling up: %s", res)
	if res.Failed() != 0 {
		t.Errorf("requests failed while scaling up: %s %v", res, res.Failures)
	}
	if !d.hasEvent(app, "autoscaled", "web=1 → 3") {
		t.Errorf("no autoscaled event for 1 → 3: %+v", d.events(app))
	}
	// One replica fewer per quiet period, each decision an event.
	waitFor(t, 60*time.Second, "the autoscaler to go back to 1 replica", func() bool { return d.hasEvent(app, "autoscaled", "web=2 → 1") })
	if !d.hasEvent(app, "autoscaled", "web=3 → 2") {
		t.Errorf("no autoscaled event 3 → 2: %+v", d.events(app))
	}
	if got := d.appState(app).Replicas; got != 1 {
		t.Errorf("after the load is gone the app runs %d replicas, want 1", got)
	}
	waitFor(t, 30*time.Second, "extra containers removed", func() bool { return len(d.containers(app)) == 1 })
}

// TestDaemonKilledDuringWake: a daemon killed while it wakes an app comes
// back with the app asleep and its container stopped again (start-up
// finishes what the state says), and the next request wakes it.
func TestDaemonKilledDuringWake(t *testing.T) {
	d := startDaemon(t)
	const app = "insomniac"
	// Its health check takes 3s: the wake is still probing when the daemon dies.
	d.sleepingSlowApp(app, "3s")
	ids := d.containers(app)
	if len(ids) != 1 {
		t.Fatalf("a sleeping app has containers %v, want 1", ids)
	}

	held := make(chan error, 1)
	go func() { _, _, err := d.get(app, "/"); held <- err }()
	waitFor(t, 15*time.Second, "the wake to start the container", func() bool {
		return dockerInspect(t, "{{.State.Running}}", ids[0]) == "true"
	})
	d.restart(syscall.SIGKILL)
	if err := <-held; err == nil {
		t.Log("the held request got an answer before the daemon died")
	}

	if got := d.appState(app).Status; got != "sleeping" {
		t.Errorf("after the kill the app is %q, want sleeping", got)
	}
	if running := dockerInspect(t, "{{.State.Running}}", ids[0]); running != "false" {
		t.Errorf("after the kill the half-woken container runs (%s), want it stopped", running)
	}
	d.mustServe(app, "version=v1")
	if now := d.containers(app); len(now) != 1 || now[0] != ids[0] {
		t.Errorf("containers %v after the wake, want the one stopped container %v", now, ids)
	}
}
