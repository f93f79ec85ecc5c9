package deploy

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/plat-paas/plat/builder"
	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/internal/enginetest"
	"github.com/plat-paas/plat/store"
)

// unit is a Deployer on the in-memory engine and the fake router: the fast
// unit layer, no Docker.
type unit struct {
	d   *Deployer
	eng *enginetest.Engine
	sw  *fakeSwitcher
	st  *store.Store
}

const unitInstance = "unit"

// fastHealth keeps failing health checks short in unit tests.
var fastHealth = store.HealthCheck{Path: "/up", Timeout: 100 * time.Millisecond, Interval: 100 * time.Millisecond, Deadline: 300 * time.Millisecond}

func newUnit(t *testing.T) *unit {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "plat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng := enginetest.New()
	t.Cleanup(eng.Close)
	sw := &fakeSwitcher{}
	d := New(st, eng, sw, Config{Instance: unitInstance, DrainTimeout: time.Second, StopTimeout: time.Second}, slog.New(slog.DiscardHandler))
	return &unit{d: d, eng: eng, sw: sw, st: st}
}

// app creates an app that runs n replicas.
func (u *unit) app(t *testing.T, name string, n int) store.App {
	t.Helper()
	a := store.App{Name: name, Health: fastHealth, Scale: store.Scale{Min: n, Max: n}, Replicas: n}
	if err := u.st.CreateApp(a); err != nil {
		t.Fatal(err)
	}
	return u.get(t, name)
}

func (u *unit) get(t *testing.T, name string) store.App {
	t.Helper()
	a, err := u.st.GetApp(name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// push records a pushed release of app whose image (present on the engine
// under its build tag) is image.
func (u *unit) push(t *testing.T, app, image string) store.Release {
	t.Helper()
	rel, err := u.st.CreateRelease(store.Release{App: app, Cause: store.CausePush, Status: store.StatusDeploying, GitSHA: "abc1234", ImageID: image})
	if err != nil {
		t.Fatal(err)
	}
	u.eng.AddImage(image, builder.InstanceTag(unitInstance, app, rel.Version))
	return rel
}

// deploy ships rel of app blue-green, as Push does after its build.
func (u *unit) deploy(t *testing.T, app string, rel store.Release) (store.Release, string, error) {
	t.Helper()
	var out bytes.Buffer
	got, err := u.d.run(context.Background(), blueGreen{}, u.get(t, app), rel, newTimings(), &out)
	return got, out.String(), err
}

// running lists the running containers of app's release version.
func (u *unit) running(app string, version int) []engine.ContainerInfo {
	var out []engine.ContainerInfo
	for _, c := range u.eng.Containers() {
		if c.Running && c.Labels[engine.LabelApp] == app && c.Labels[engine.LabelRelease] == strconv.Itoa(version) {
			out = append(out, c)
		}
	}
	return out
}

func (u *unit) lastSwitch() []string {
	u.sw.mu.Lock()
	defer u.sw.mu.Unlock()
	if len(u.sw.switches) == 0 {
		return nil
	}
	return u.sw.switches[len(u.sw.switches)-1]
}

func addrs(cs []engine.ContainerInfo) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.HostAddr
	}
	slices.Sort(out)
	return out
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func eventKinds(t *testing.T, st *store.Store, app string) []string {
	t.Helper()
	evs, err := st.ListEvents(app, 100)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Kind)
	}
	slices.Sort(kinds)
	return kinds
}

func TestBlueGreen(t *testing.T) {
	tests := []struct {
		name     string
		replicas int
		// behave is how v2's containers behave (v1 always answers).
		behave     enginetest.Behaviour
		wantErr    string
		wantActive int
	}{
		{name: "one replica", replicas: 1, wantActive: 2},
		{name: "three replicas", replicas: 3, wantActive: 2},
		{name: "health check answers 500", replicas: 2, wantActive: 1, wantErr: "health check failed",
			behave: enginetest.Behaviour{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })}},
		{name: "exits during health check", replicas: 1, wantActive: 1, wantErr: "exited",
			behave: enginetest.Behaviour{Exit: true, ExitCode: 3, Logs: "boom\n"}},
		{name: "start fails", replicas: 2, wantActive: 1, wantErr: "start container",
			behave: enginetest.Behaviour{FailStart: engine.ErrNotFound}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := newUnit(t)
			u.eng.Behave = func(spec engine.ContainerSpec) enginetest.Behaviour {
				if spec.Labels[engine.LabelRelease] == "2" {
					return tt.behave
				}
				return enginetest.Behaviour{}
			}
			u.app(t, "web", tt.replicas)
			if _, _, err := u.deploy(t, "web", u.push(t, "web", "sha256:one")); err != nil {
				t.Fatalf("first deploy: %v", err)
			}
			v1 := u.running("web", 1)
			if len(v1) != tt.replicas || !slices.Equal(sorted(u.lastSwitch()), addrs(v1)) {
				t.Fatalf("after v1: running %d, routed %v", len(v1), u.lastSwitch())
			}

			rel, out, err := u.deploy(t, "web", u.push(t, "web", "sha256:two"))
			app := u.get(t, "web")
			if app.Active != tt.wantActive {
				t.Errorf("active = v%d, want v%d", app.Active, tt.wantActive)
			}
			serving := u.running("web", tt.wantActive)
			if len(serving) != tt.replicas {
				t.Errorf("%d replicas of v%d running, want %d", len(serving), tt.wantActive, tt.replicas)
			}
			if got := sorted(u.lastSwitch()); !slices.Equal(got, addrs(serving)) {
				t.Errorf("router points at %v, want the running replicas of v%d %v", got, tt.wantActive, addrs(serving))
			}
			if n := len(u.eng.Containers()); n != tt.replicas {
				t.Errorf("%d containers left, want %d (the losing release's are removed)", n, tt.replicas)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("deploy v2: %v\n%s", err, out)
				}
				if rel.Status != store.StatusActive {
					t.Errorf("v2 status %s, want active", rel.Status)
				}
				if !bytes.Contains([]byte(out), []byte("Timings: ")) {
					t.Errorf("no Timings line in\n%s", out)
				}
				return
			}
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tt.wantErr)) {
				t.Fatalf("deploy v2: err %v, want %q", err, tt.wantErr)
			}
			got, gerr := u.st.GetRelease("web", 2)
			if gerr != nil || got.Status != store.StatusFailed || got.Reason != err.Error() {
				t.Errorf("v2 = %s %q (%v), want failed with the error as its reason", got.Status, got.Reason, gerr)
			}
			if tt.behave.Logs != "" && !bytes.Contains([]byte(out), []byte(tt.behave.Logs)) {
				t.Errorf("the crashed container's output is not shown:\n%s", out)
			}
			if !slices.Contains(eventKinds(t, u.st, "web"), "failed") {
				t.Errorf("no failed event")
			}
		})
	}
}

func TestRollbackTarget(t *testing.T) {
	// v1 superseded, v2 failed, v3 superseded (image removed), v4 superseded, v5 active.
	setup := func(t *testing.T) (*unit, store.App) {
		u := newUnit(t)
		u.app(t, "web", 1)
		for v := 1; v <= 5; v++ {
			rel := u.push(t, "web", "sha256:"+strconv.Itoa(v))
			if v == 2 {
				if err := u.st.FailRelease("web", v, "health check failed"); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := u.st.ActivateRelease("web", rel.Version); err != nil {
				t.Fatal(err)
			}
		}
		if err := u.eng.RemoveImage(context.Background(), "sha256:3"); err != nil {
			t.Fatal(err)
		}
		return u, u.get(t, "web")
	}
	tests := []struct {
		version int
		want    int    // target version
		wantErr string // or an error
	}{
		{version: 0, want: 4},
		{version: 1, want: 1},
		{version: 2, wantErr: "never went live"},
		{version: 3, wantErr: "image of v3 was removed"},
		{version: 5, wantErr: "already the active release"},
		{version: 9, wantErr: "has no release v9"},
	}
	for _, tt := range tests {
		t.Run("v"+strconv.Itoa(tt.version), func(t *testing.T) {
			u, app := setup(t)
			got, err := u.d.rollbackTarget(context.Background(), app, tt.version)
			if tt.wantErr != "" {
				if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tt.wantErr)) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Version != tt.want {
				t.Fatalf("target v%d (%v), want v%d", got.Version, err, tt.want)
			}
		})
	}
	t.Run("never deployed", func(t *testing.T) {
		u := newUnit(t)
		if _, err := u.d.rollbackTarget(context.Background(), u.app(t, "web", 1), 0); err == nil {
			t.Fatal("no error for an app never deployed")
		}
	})
}

func TestRollbackShipsBlueGreen(t *testing.T) {
	u := newUnit(t)
	u.app(t, "web", 2)
	for _, img := range []string{"sha256:one", "sha256:two"} {
		if _, _, err := u.deploy(t, "web", u.push(t, "web", img)); err != nil {
			t.Fatal(err)
		}
	}
	rel, err := u.d.Rollback(context.Background(), "web", 0, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if rel.Version != 3 || rel.Status != store.StatusActive || rel.ImageID != "sha256:one" {
		t.Fatalf("rollback = v%d %s %s, want v3 active on v1's image", rel.Version, rel.Status, rel.ImageID)
	}
	reps := u.running("web", 3)
	if len(reps) != 2 || len(u.eng.Containers()) != 2 || !slices.Equal(sorted(u.lastSwitch()), addrs(reps)) {
		t.Fatalf("after rollback: %d of v3 running, %d containers, routed %v", len(reps), len(u.eng.Containers()), u.lastSwitch())
	}
	if !slices.Contains(eventKinds(t, u.st, "web"), "rolled back") {
		t.Error("no rolled back event")
	}
}

func TestPruneImagesKeepsImagesOfKeptReleases(t *testing.T) {
	u := newUnit(t)
	u.d.cfg.Retain = 2
	u.app(t, "web", 1)
	// v1 and v3 share an image; v2 has its own; v4 is a config release on
	// v3's image, v5 a push of a new image. Retain 2 keeps v4 and v5: v3's
	// image stays (v4 uses it, and so v1's tag of it may go), v2's goes.
	images := []string{"sha256:a", "sha256:b", "sha256:a", "", "sha256:c"}
	for i, img := range images {
		v := i + 1
		var rel store.Release
		if img == "" {
			r, err := u.st.CreateRelease(store.Release{App: "web", Cause: store.CauseConfig, Status: store.StatusDeploying, ImageID: images[2]})
			if err != nil {
				t.Fatal(err)
			}
			rel = r
		} else {
			rel = u.push(t, "web", img)
		}
		if err := u.st.ActivateRelease("web", v); err != nil || rel.Version != v {
			t.Fatal(err, rel.Version)
		}
	}
	u.d.pruneImages(context.Background(), "web")
	for _, tc := range []struct {
		ref  string
		kept bool
	}{
		{"sha256:a", true}, {"sha256:c", true}, {"sha256:b", false},
		{builder.InstanceTag(unitInstance, "web", 2), false},
		{builder.InstanceTag(unitInstance, "web", 3), true},
		{builder.InstanceTag(unitInstance, "web", 5), true},
	} {
		ok, _ := u.eng.ImageExists(context.Background(), tc.ref)
		if ok != tc.kept {
			t.Errorf("%s present = %v, want %v (images now %v)", tc.ref, ok, tc.kept, u.eng.Images())
		}
	}
}

func TestResize(t *testing.T) {
	tests := []struct{ from, to int }{{1, 3}, {3, 1}, {2, 2}, {2, 4}}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.from)+"to"+strconv.Itoa(tt.to), func(t *testing.T) {
			t.Parallel()
			u := newUnit(t)
			u.app(t, "web", tt.from)
			if _, _, err := u.deploy(t, "web", u.push(t, "web", "sha256:one")); err != nil {
				t.Fatal(err)
			}
			if err := u.d.resize(context.Background(), u.get(t, "web"), tt.to, &bytes.Buffer{}); err != nil {
				t.Fatal(err)
			}
			reps := u.d.Replicas("web")
			running := u.running("web", 1)
			if len(reps) != tt.to || len(running) != tt.to || len(u.eng.Containers()) != tt.to {
				t.Fatalf("%d routed, %d running, %d containers; want %d", len(reps), len(running), len(u.eng.Containers()), tt.to)
			}
			if !slices.Equal(sorted(u.lastSwitch()), addrs(running)) {
				t.Errorf("router points at %v, want %v", u.lastSwitch(), addrs(running))
			}
			for i, r := range reps {
				if r.Index != i+1 {
					t.Errorf("replica %d has index %d, want 1..%d", i, r.Index, tt.to)
				}
			}
		})
	}
}

func TestWake(t *testing.T) {
	tests := []struct {
		name      string
		fail      bool
		wantAwake bool
	}{
		{name: "wakes", wantAwake: true},
		{name: "replica exits on wake", fail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := newUnit(t)
			u.app(t, "web", 1)
			// Cold sleep (no warm stage): the wake starts the stopped container.
			if err := u.st.UpdateApp("web", func(a *store.App) error { a.Scale.Min, a.Scale.ColdAfter = 0, -1; return nil }); err != nil {
				t.Fatal(err)
			}
			if _, _, err := u.deploy(t, "web", u.push(t, "web", "sha256:one")); err != nil {
				t.Fatal(err)
			}
			// As if the app's last request was long ago.
			u.d.load.mu.Lock()
			u.d.load.apps["web"].lastActive = time.Now().Add(-time.Hour)
			u.d.load.mu.Unlock()
			u.d.sleep(context.Background(), "web", time.Hour)
			if a := u.get(t, "web"); !a.Asleep || len(u.d.Replicas("web")) != 0 || len(u.running("web", 1)) != 0 {
				t.Fatalf("after sleep: asleep %v, %d routed, %d running", a.Asleep, len(u.d.Replicas("web")), len(u.running("web", 1)))
			}
			if tt.fail {
				u.eng.Behave = func(engine.ContainerSpec) enginetest.Behaviour {
					return enginetest.Behaviour{Exit: true, ExitCode: 1}
				}
			}
			err := u.d.Wake(context.Background(), "web")
			a := u.get(t, "web")
			if tt.wantAwake {
				running := u.running("web", 1)
				if err != nil || a.Asleep || len(running) != 1 || !slices.Equal(u.lastSwitch(), addrs(running)) {
					t.Fatalf("wake: err %v, asleep %v, %d running, routed %v", err, a.Asleep, len(running), u.lastSwitch())
				}
				return
			}
			if err == nil {
				t.Fatal("a replica that exits woke without error")
			}
			if !a.Asleep || len(u.d.Replicas("web")) != 0 {
				t.Fatalf("after a failed wake: asleep %v, routed %v; want asleep again with no replicas", a.Asleep, u.d.Replicas("web"))
			}
		})
	}
}
