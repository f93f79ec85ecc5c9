package daemon_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plat-paas/plat/bench/load"
)

// warmState is what the warm tests read of an app.
type warmState struct {
	Status  string `json:"status"`
	Sleep   string `json:"sleep"`
	Standby *struct {
		Release  int `json:"release"`
		Replicas int `json:"replicas"`
	} `json:"standby"`
}

func (d *daemon) warmState(app string) warmState {
	var s warmState
	d.apiGet("/api/apps/"+app, &s)
	return s
}

func (d *daemon) standbyOf(app string) int {
	if sb := d.warmState(app).Standby; sb != nil {
		return sb.Release
	}
	return 0
}

// paused says whether a container is paused (running, frozen).
func paused(t *testing.T, id string) bool {
	return dockerInspect(t, "{{.State.Running}} {{.State.Paused}}", id) == "true true"
}

func docker(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
		t.Fatalf("docker %v: %v\n%s", args, err, out)
	}
}

// TestWarmSleep: an idle app is paused (warm), not stopped, and stays so
// over a daemon restart; 20 concurrent first requests unpause it once
// (no container start) and all get 200; a `docker unpause` by hand wakes
// it; after its cold-after it is stopped (cold) and still wakes.
func TestWarmSleep(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	const app = "warm"
	d.deployedApp(app, "v1")
	d.mustPlat("scale", app, "--min", "0", "--idle", "1s", "--cold-after", "1h")
	waitFor(t, 30*time.Second, "the idle app to sleep warm", func() bool { return d.warmState(app).Sleep == "warm" })
	ids := d.containers(app)
	if len(ids) != 1 {
		t.Fatalf("a sleeping app has %d containers, want 1", len(ids))
	}
	waitFor(t, 10*time.Second, "the container to be paused", func() bool { return paused(t, ids[0]) })
	if out := d.mustPlat("apps"); !strings.Contains(out, "sleeping (warm)") {
		t.Errorf("plat apps does not show the app sleeping (warm):\n%s", out)
	}
	if out := d.mustPlat("ps", app); !strings.Contains(out, "sleeping (warm)") {
		t.Errorf("plat ps does not show the replica sleeping (warm):\n%s", out)
	}

	d.restart(syscall.SIGTERM)
	if s := d.warmState(app); s.Status != "sleeping" || s.Sleep != "warm" || !paused(t, ids[0]) {
		t.Fatalf("after a daemon restart: %+v, paused %v; want still warm", s, paused(t, ids[0]))
	}

	since := time.Now()
	var wg sync.WaitGroup
	results := make([]string, 20)
	for i := range results {
		wg.Go(func() {
			code, body, err := d.get(app, "/")
			if err != nil || code != http.StatusOK || !strings.Contains(body, "version=v1") {
				results[i] = body + " " + http.StatusText(code)
				if err != nil {
					results[i] += " " + err.Error()
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(since)
	for i, r := range results {
		if r != "" {
			t.Errorf("request %d to the warm app failed: %s", i, r)
		}
	}
	if n := d.containerStarts(app, since, time.Now()); n != 0 {
		t.Errorf("a warm wake started %d containers, want 0 (unpaused)", n)
	}
	if n := d.eventCount(app, "woke"); n != 1 || !d.hasEvent(app, "woke", "from warm sleep") {
		t.Errorf("want one woke event from warm sleep: %+v", d.events(app))
	}
	for _, e := range d.events(app) {
		if e.Kind == "woke" {
			t.Logf("20 concurrent first requests on the warm app all answered within %s; woke: %s", took.Round(time.Millisecond), e.Message)
		}
	}

	// Asleep again, then unpaused by hand: plat notices and wakes it.
	waitFor(t, 30*time.Second, "the app to sleep warm again", func() bool { return d.warmState(app).Sleep == "warm" && paused(t, ids[0]) })
	docker(t, "unpause", ids[0])
	waitFor(t, 10*time.Second, "the manual unpause to wake the app", func() bool { return d.warmState(app).Status == "running" })
	if !d.hasEvent(app, "unpaused", "outside plat") {
		t.Errorf("no unpaused event: %+v", d.events(app))
	}

	// Cold after 2s of warm sleep: stopped, and a request still wakes it.
	d.mustPlat("scale", app, "--cold-after", "2s")
	waitFor(t, 30*time.Second, "the app to go cold", func() bool { return d.warmState(app).Sleep == "cold" })
	if running := dockerInspect(t, "{{.State.Running}}", ids[0]); running != "false" {
		t.Errorf("a cold app's container runs: %s", running)
	}
	if out := d.mustPlat("apps"); !strings.Contains(out, "sleeping (cold)") {
		t.Errorf("plat apps does not show the app sleeping (cold):\n%s", out)
	}
	d.mustServe(app, "version=v1")
	if now := d.containers(app); len(now) != 1 || now[0] != ids[0] {
		t.Errorf("containers %v after the cold wake, want %v started again", now, ids)
	}
}

// TestStandbyRollback: after a deploy the previous release's container is
// paused (not routed, not a replica) and stays so over a daemon restart;
// `plat rollback` under load (keep-alive and new connections) unpauses
// it (no container start), not one request fails, and the replaced
// release stands by in turn; the next deploy drops that standby.
func TestStandbyRollback(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--standby", "1m")
	const app = "standby"
	r := d.deployedApp(app, "v1")
	v1 := d.containers(app)
	r.commit("v2", "")
	r.mustPush("main")
	d.mustServe(app, "version=v2")
	if sb := d.standbyOf(app); sb != 1 || len(v1) != 1 || !paused(t, v1[0]) {
		t.Fatalf("after v2: standby v%d, v1's container %v paused %v; want v1 paused", sb, v1, len(v1) == 1 && paused(t, v1[0]))
	}
	if ps := d.ps(app); len(ps) != 1 || ps[0].ID == v1[0] {
		t.Fatalf("ps %+v: want v2's one replica, not the standby", ps)
	}
	var v2 string
	for _, id := range d.containers(app) {
		if id != v1[0] {
			v2 = id
		}
	}
	// A daemon restart keeps the standby, paused, while its time lasts.
	d.restart(syscall.SIGTERM)
	if sb := d.standbyOf(app); sb != 1 || !paused(t, v1[0]) {
		t.Fatalf("after a daemon restart: standby v%d, v1 paused %v; want kept", sb, paused(t, v1[0]))
	}

	ctx, stop := context.WithCancel(context.Background())
	res := make([]load.Result, 2)
	var wg sync.WaitGroup
	for i, keepAlive := range []bool{true, false} {
		wg.Go(func() {
			res[i] = load.Run(ctx, load.Options{Target: d.httpAddr, Host: app + ".localhost", Concurrency: 4, KeepAlive: keepAlive})
		})
	}
	time.Sleep(300 * time.Millisecond)
	since := time.Now()
	out := d.mustPlat("rollback", app)
	took := time.Since(since)
	d.mustServe(app, "version=v1")
	time.Sleep(300 * time.Millisecond)
	stop()
	wg.Wait()
	for i, r := range res {
		t.Logf("rollback from the standby took %s (CLI to return); load (keep-alive %v): %s", took.Round(time.Millisecond), i == 0, r)
		if r.OK == 0 || r.Failed() != 0 {
			t.Errorf("requests failed during the standby rollback: %s %v", r, r.Failures)
		}
	}
	if !strings.Contains(out, "paused standby") {
		t.Errorf("the rollback did not use the standby:\n%s", out)
	}
	if n := d.containerStarts(app, since, time.Now()); n != 0 {
		t.Errorf("the standby rollback started %d containers, want 0", n)
	}
	if running := dockerInspect(t, "{{.State.Running}} {{.State.Paused}}", v1[0]); running != "true false" {
		t.Errorf("v1's container after the rollback: running paused = %s, want running", running)
	}
	if sb := d.standbyOf(app); sb != 2 || !paused(t, v2) {
		t.Errorf("after the rollback: standby v%d, v2 paused %v; want v2 standing by", sb, paused(t, v2))
	}

	r.commit("v4", "")
	r.mustPush("main")
	d.mustServe(app, "version=v4")
	if slices.Contains(d.containers(app), v2) {
		t.Errorf("the next deploy kept the old standby v2's container")
	}
	if sb := d.standbyOf(app); sb != 3 || !paused(t, v1[0]) {
		t.Errorf("after v4: standby v%d; want v3 (v1's container) paused", sb)
	}
}

// TestMemoryPressure: when the available memory (read from --meminfo)
// falls below --min-available-memory, the standby is dropped first, then
// the warm app goes cold; above it both are kept.
func TestMemoryPressure(t *testing.T) {
	t.Parallel()
	meminfo := filepath.Join(t.TempDir(), "meminfo")
	setAvail := func(kb string) {
		if err := os.WriteFile(meminfo, []byte("MemTotal: 16000000 kB\nMemAvailable: "+kb+" kB\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setAvail("8000000")
	d := startDaemon(t, "--standby", "1h", "--meminfo", meminfo, "--min-available-memory", "100MiB")
	r := d.deployedApp("sb", "v1")
	r.commit("v2", "")
	r.mustPush("main")
	d.mustServe("sb", "version=v2")
	d.deployedApp("nap", "v1")
	d.mustPlat("scale", "nap", "--min", "0", "--idle", "1s", "--cold-after", "1h")
	waitFor(t, 30*time.Second, "nap to sleep warm", func() bool { return d.warmState("nap").Sleep == "warm" })
	time.Sleep(time.Second)
	if d.standbyOf("sb") != 1 || d.warmState("nap").Sleep != "warm" {
		t.Fatalf("with memory to spare: standby v%d, nap %+v; want both kept", d.standbyOf("sb"), d.warmState("nap"))
	}

	setAvail("50000")
	waitFor(t, 10*time.Second, "the standby to be dropped", func() bool { return d.standbyOf("sb") == 0 })
	waitFor(t, 10*time.Second, "the warm app to go cold", func() bool { return d.warmState("nap").Sleep == "cold" })
	if !d.hasEvent("sb", "standby-dropped", "memory pressure") || !d.hasEvent("nap", "sleeping-cold", "memory pressure") {
		t.Errorf("events do not name the memory pressure: sb %+v nap %+v", d.events("sb"), d.events("nap"))
	}
	if n := len(d.containers("sb")); n != 1 {
		t.Errorf("sb has %d containers after its standby was dropped, want 1", n)
	}
	d.mustServe("nap", "version=v1")
}
