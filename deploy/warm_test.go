package deploy

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

// containersOf lists app's containers whose release label is version.
func (u *unit) containersOf(app string, version int) []engine.ContainerInfo {
	var out []engine.ContainerInfo
	for _, c := range u.eng.Containers() {
		if c.Labels[engine.LabelApp] == app && c.Labels[engine.LabelRelease] == strconv.Itoa(version) {
			out = append(out, c)
		}
	}
	return out
}

// tick runs the warm stage's timers once and waits for what they started.
func (u *unit) tick(t *testing.T, now time.Time) {
	t.Helper()
	apps, err := u.st.ListApps()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	u.d.warmTick(context.Background(), apps, now, &wg)
	wg.Wait()
}

func (u *unit) idle(app string) {
	u.d.load.mu.Lock()
	u.d.load.get(app, time.Now()).lastActive = time.Now().Add(-time.Hour)
	u.d.load.mu.Unlock()
}

func allPaused(cs []engine.ContainerInfo) bool {
	return len(cs) > 0 && !slices.ContainsFunc(cs, func(c engine.ContainerInfo) bool { return !c.Running || !c.Paused })
}

func allStopped(cs []engine.ContainerInfo) bool {
	return len(cs) > 0 && !slices.ContainsFunc(cs, func(c engine.ContainerInfo) bool { return c.Running })
}

// TestWarmSleep walks the sleep stages: running → warm (paused, not
// routed) → woken by unpausing the same containers → warm → cold (stopped)
// once its cold-after is up → woken by starting them.
func TestWarmSleep(t *testing.T) {
	u := newUnit(t)
	u.app(t, "web", 2)
	if err := u.st.UpdateApp("web", func(a *store.App) error { a.Scale.Min, a.Scale.ColdAfter = 0, time.Minute; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.deploy(t, "web", u.push(t, "web", "sha256:one")); err != nil {
		t.Fatal(err)
	}
	ids := func() []string {
		var out []string
		for _, c := range u.containersOf("web", 1) {
			out = append(out, c.ID)
		}
		return out
	}
	before := ids()
	u.idle("web")
	u.d.sleep(context.Background(), "web", time.Hour)
	if a := u.get(t, "web"); !a.Asleep || !a.Warm || len(u.d.Replicas("web")) != 0 || !allPaused(u.containersOf("web", 1)) {
		t.Fatalf("after sleep: asleep %v warm %v, routed %v, containers %+v; want warm with both paused", a.Asleep, a.Warm, u.d.Replicas("web"), u.containersOf("web", 1))
	}
	// Not yet cold: its cold-after is a minute.
	u.tick(t, time.Now())
	if !allPaused(u.containersOf("web", 1)) {
		t.Fatal("the warm app went cold before its cold-after")
	}
	runs := u.eng.Runs()
	if err := u.d.Wake(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	running := u.running("web", 1)
	if a := u.get(t, "web"); a.Asleep || a.Warm || len(running) != 2 || slices.ContainsFunc(running, func(c engine.ContainerInfo) bool { return c.Paused }) {
		t.Fatalf("after a warm wake: asleep %v warm %v, running %+v", a.Asleep, a.Warm, running)
	}
	if u.eng.Runs() != runs || !slices.Equal(sorted(ids()), sorted(before)) {
		t.Errorf("a warm wake made containers: %v, want the paused %v thawed", ids(), before)
	}
	if !slices.Equal(sorted(u.lastSwitch()), addrs(running)) {
		t.Errorf("routed %v after the wake, want %v", u.lastSwitch(), addrs(running))
	}

	u.idle("web")
	u.d.sleep(context.Background(), "web", time.Hour)
	u.tick(t, time.Now().Add(time.Minute))
	if a := u.get(t, "web"); !a.Asleep || a.Warm || !allStopped(u.containersOf("web", 1)) {
		t.Fatalf("after cold-after: asleep %v warm %v, containers %+v; want cold, stopped", a.Asleep, a.Warm, u.containersOf("web", 1))
	}
	if !slices.Contains(eventKinds(t, u.st, "web"), "sleeping-cold") {
		t.Error("no sleeping-cold event")
	}
	if err := u.d.Wake(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	if len(u.running("web", 1)) != 2 || !slices.Equal(sorted(ids()), sorted(before)) {
		t.Errorf("a cold wake: running %d, containers %v; want the 2 stopped ones started", len(u.running("web", 1)), ids())
	}
}

// TestColdAfterZeroSleepsCold: cold-after 0 stops at once, as before warm
// sleep existed.
func TestColdAfterZeroSleepsCold(t *testing.T) {
	u := newUnit(t)
	u.app(t, "web", 1)
	if _, err := u.d.Scale(context.Background(), "web", ScaleChange{Min: new(0), ColdAfter: new(time.Duration(0))}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.deploy(t, "web", u.push(t, "web", "sha256:one")); err != nil {
		t.Fatal(err)
	}
	u.idle("web")
	u.d.sleep(context.Background(), "web", time.Hour)
	if a := u.get(t, "web"); !a.Asleep || a.Warm || !allStopped(u.containersOf("web", 1)) {
		t.Fatalf("asleep %v warm %v, containers %+v; want cold at once", a.Asleep, a.Warm, u.containersOf("web", 1))
	}
}

// TestStandby: a deploy pauses the previous release (not routed, not a
// replica); a rollback to it thaws those containers (no new one) and the
// replaced release stands by in turn; the next deploy drops the standby;
// a standby whose time is up is removed.
func TestStandby(t *testing.T) {
	u := newUnit(t)
	u.d.cfg.Standby = time.Minute
	u.app(t, "web", 2)
	for _, img := range []string{"sha256:one", "sha256:two"} {
		if _, _, err := u.deploy(t, "web", u.push(t, "web", img)); err != nil {
			t.Fatal(err)
		}
	}
	v1 := u.containersOf("web", 1)
	sb := u.get(t, "web").Standby
	if sb.Release != 1 || len(sb.IDs) != 2 || !allPaused(v1) {
		t.Fatalf("after v2: standby %+v, v1 containers %+v; want v1's 2 paused", sb, v1)
	}
	if reps := u.d.Replicas("web"); len(reps) != 2 || reps[0].Release != 2 || !slices.Equal(sorted(u.lastSwitch()), addrs(u.running("web", 2))) {
		t.Fatalf("replicas %+v, routed %v: want only v2's", reps, u.lastSwitch())
	}

	runs := u.eng.Runs()
	var out bytes.Buffer
	rel, err := u.d.Rollback(context.Background(), "web", 1, &out)
	if err != nil {
		t.Fatalf("rollback: %v\n%s", err, out.String())
	}
	if rel.Version != 3 || rel.Status != store.StatusActive || rel.ContainersOf != 1 || u.eng.Runs() != runs {
		t.Fatalf("rollback = v%d %s containers of v%d, %d new containers; want v3 active on v1's thawed containers", rel.Version, rel.Status, rel.ContainersOf, u.eng.Runs()-runs)
	}
	thawed := u.containersOf("web", 1)
	if len(thawed) != 2 || slices.ContainsFunc(thawed, func(c engine.ContainerInfo) bool { return c.Paused || !c.Running }) {
		t.Fatalf("v1's containers after the rollback: %+v, want running", thawed)
	}
	if !slices.Equal(sorted(u.lastSwitch()), addrs(thawed)) {
		t.Errorf("routed %v, want v1's thawed containers %v", u.lastSwitch(), addrs(thawed))
	}
	if sb := u.get(t, "web").Standby; sb.Release != 2 || !allPaused(u.containersOf("web", 2)) {
		t.Errorf("after the rollback: standby %+v; want v2 paused", sb)
	}

	// v4: v3 (v1's containers) stands by; v2's standby is dropped.
	if _, _, err := u.deploy(t, "web", u.push(t, "web", "sha256:four")); err != nil {
		t.Fatal(err)
	}
	if n := len(u.containersOf("web", 2)); n != 0 {
		t.Errorf("the next deploy left %d containers of the old standby v2", n)
	}
	sb = u.get(t, "web").Standby
	if sb.Release != 3 || !allPaused(u.containersOf("web", 1)) {
		t.Fatalf("after v4: standby %+v, v1-labelled %+v; want v3's paused", sb, u.containersOf("web", 1))
	}
	u.tick(t, time.Now())
	if u.get(t, "web").Standby.Release != 3 {
		t.Fatal("the standby was dropped before its time")
	}
	u.tick(t, sb.Until)
	if sb := u.get(t, "web").Standby; sb.Release != 0 || len(u.containersOf("web", 1)) != 0 {
		t.Fatalf("after its time: standby %+v, %d containers left", sb, len(u.containersOf("web", 1)))
	}
	if got := len(u.eng.Containers()); got != 2 {
		t.Errorf("%d containers, want v4's 2", got)
	}
}

// TestStandbyOff: with no standby time the old release is removed.
func TestStandbyOff(t *testing.T) {
	u := newUnit(t)
	u.app(t, "web", 1)
	for _, img := range []string{"sha256:one", "sha256:two"} {
		if _, _, err := u.deploy(t, "web", u.push(t, "web", img)); err != nil {
			t.Fatal(err)
		}
	}
	if sb := u.get(t, "web").Standby; sb.Release != 0 || len(u.eng.Containers()) != 1 {
		t.Fatalf("standby %+v, %d containers; want none and 1", sb, len(u.eng.Containers()))
	}
}

func TestPressureVictim(t *testing.T) {
	now := time.Now()
	warm := func(name string, since time.Duration) store.App {
		return store.App{Name: name, Active: 1, Asleep: true, Warm: true, AsleepSince: now.Add(-since)}
	}
	standby := func(name string, until time.Duration) store.App {
		return store.App{Name: name, Active: 2, Standby: store.Standby{Release: 1, IDs: []string{"x"}, Until: now.Add(until)}}
	}
	tests := []struct {
		name        string
		apps        []store.App
		want        string
		wantStandby bool
	}{
		{name: "nothing warm", apps: []store.App{{Name: "a", Active: 1}, {Name: "b", Active: 1, Asleep: true}}},
		{name: "oldest warm app", apps: []store.App{warm("new", time.Minute), warm("old", time.Hour), warm("mid", 10*time.Minute)}, want: "old"},
		{name: "standby before warm apps", apps: []store.App{warm("old", time.Hour), standby("sb", time.Minute)}, want: "sb", wantStandby: true},
		{name: "oldest standby", apps: []store.App{standby("late", 9*time.Minute), standby("early", time.Minute)}, want: "early", wantStandby: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, isStandby, ok := pressureVictim(tt.apps)
			if ok != (tt.want != "") || app.Name != tt.want || isStandby != tt.wantStandby {
				t.Errorf("victim %q standby %v ok %v, want %q standby %v", app.Name, isStandby, ok, tt.want, tt.wantStandby)
			}
		})
	}
}

// TestMemoryPressure: with the available memory below the minimum, each
// tick gives up one warm thing, the standby first, then the warm app
// asleep longest; above it nothing is touched.
func TestMemoryPressure(t *testing.T) {
	u := newUnit(t)
	u.d.cfg.Standby = time.Hour
	u.d.cfg.MinAvailableMemory = 100 << 20
	var mu sync.Mutex
	avail := int64(1 << 30)
	u.d.cfg.AvailableMemory = func() (int64, error) { mu.Lock(); defer mu.Unlock(); return avail, nil }
	for _, name := range []string{"old", "new", "sb"} {
		u.app(t, name, 1)
		if err := u.st.UpdateApp(name, func(a *store.App) error { a.Scale.Min = 0; return nil }); err != nil {
			t.Fatal(err)
		}
		if _, _, err := u.deploy(t, name, u.push(t, name, "sha256:"+name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := u.deploy(t, "sb", u.push(t, "sb", "sha256:sb2")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"old", "new"} {
		u.idle(name)
		u.d.sleep(context.Background(), name, time.Hour)
	}
	if err := u.st.UpdateApp("old", func(a *store.App) error { a.AsleepSince = a.AsleepSince.Add(-time.Minute); return nil }); err != nil {
		t.Fatal(err)
	}
	state := func() (standby int, oldWarm, newWarm bool) {
		return u.get(t, "sb").Standby.Release, u.get(t, "old").Warm, u.get(t, "new").Warm
	}
	u.tick(t, time.Now())
	if sb, o, n := state(); sb != 1 || !o || !n {
		t.Fatalf("with memory to spare: standby v%d, old warm %v, new warm %v; want all kept", sb, o, n)
	}
	mu.Lock()
	avail = 50 << 20
	mu.Unlock()
	steps := []struct {
		standby          int
		oldWarm, newWarm bool
	}{{0, true, true}, {0, false, true}, {0, false, false}}
	for i, want := range steps {
		u.tick(t, time.Now())
		if sb, o, n := state(); sb != want.standby || o != want.oldWarm || n != want.newWarm {
			t.Fatalf("pressure tick %d: standby v%d, old warm %v, new warm %v; want %+v", i+1, sb, o, n, want)
		}
	}
	if !allStopped(u.containersOf("old", 1)) || !allStopped(u.containersOf("new", 1)) || len(u.containersOf("sb", 1)) != 0 {
		t.Errorf("after the pressure: containers %+v", u.eng.Containers())
	}
}

func TestReadMemAvailable(t *testing.T) {
	tests := []struct {
		name, content string
		want          int64
		wantErr       bool
	}{
		{name: "meminfo", content: "MemTotal:       16314852 kB\nMemFree:         1219912 kB\nMemAvailable:    8073416 kB\nBuffers: 1 kB\n", want: 8073416 << 10},
		{name: "no line", content: "MemTotal: 1 kB\n", wantErr: true},
		{name: "garbage", content: "MemAvailable: lots kB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "meminfo")
			if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ReadMemAvailable(p)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ReadMemAvailable = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	if _, err := ReadMemAvailable("/proc/meminfo"); err != nil {
		t.Errorf("this host's meminfo: %v", err)
	}
}

// TestDeployWarmApp: a deploy of a warm-sleeping app wakes it on the new
// release and removes the old release's paused containers.
func TestDeployWarmApp(t *testing.T) {
	u := newUnit(t)
	u.app(t, "web", 1)
	if err := u.st.UpdateApp("web", func(a *store.App) error { a.Scale.Min = 0; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.deploy(t, "web", u.push(t, "web", "sha256:one")); err != nil {
		t.Fatal(err)
	}
	u.idle("web")
	u.d.sleep(context.Background(), "web", time.Hour)
	if !allPaused(u.containersOf("web", 1)) {
		t.Fatal("not warm")
	}
	if _, _, err := u.deploy(t, "web", u.push(t, "web", "sha256:two")); err != nil {
		t.Fatal(err)
	}
	if a := u.get(t, "web"); a.Asleep || a.Warm || len(u.running("web", 2)) != 1 || len(u.containersOf("web", 1)) != 0 {
		t.Fatalf("after the deploy: asleep %v warm %v, containers %+v; want v2 awake, v1 gone", a.Asleep, a.Warm, u.eng.Containers())
	}
}

// TestReconcileWarm: at start-up a warm app's container that runs (the
// engine restarted it) is paused again and the app stays warm; a standby
// whose time is not up is kept paused, one whose time is up is removed.
func TestReconcileWarm(t *testing.T) {
	for _, expired := range []bool{false, true} {
		t.Run(map[bool]string{false: "standby kept", true: "standby expired"}[expired], func(t *testing.T) {
			t.Parallel()
			u := newUnit(t)
			u.d.cfg.Standby = time.Hour
			u.app(t, "web", 1)
			u.app(t, "nap", 1)
			if err := u.st.UpdateApp("nap", func(a *store.App) error { a.Scale.Min = 0; return nil }); err != nil {
				t.Fatal(err)
			}
			for _, img := range []string{"sha256:one", "sha256:two"} {
				if _, _, err := u.deploy(t, "web", u.push(t, "web", img)); err != nil {
					t.Fatal(err)
				}
			}
			if _, _, err := u.deploy(t, "nap", u.push(t, "nap", "sha256:nap")); err != nil {
				t.Fatal(err)
			}
			u.idle("nap")
			u.d.sleep(context.Background(), "nap", time.Hour)
			// The engine restarted: the warm app's container runs, thawed.
			nap := u.containersOf("nap", 1)[0]
			if err := u.eng.Unpause(context.Background(), nap.ID); err != nil {
				t.Fatal(err)
			}
			if expired {
				if err := u.st.UpdateApp("web", func(a *store.App) error { a.Standby.Until = time.Now().Add(-time.Second); return nil }); err != nil {
					t.Fatal(err)
				}
			}
			if err := u.d.Reconcile(context.Background()); err != nil {
				t.Fatal(err)
			}
			if a := u.get(t, "nap"); !a.Asleep || !a.Warm || !allPaused(u.containersOf("nap", 1)) {
				t.Errorf("nap after reconcile: asleep %v warm %v, %+v; want warm, paused again", a.Asleep, a.Warm, u.containersOf("nap", 1))
			}
			sb, v1 := u.get(t, "web").Standby, u.containersOf("web", 1)
			switch {
			case expired && (sb.Release != 0 || len(v1) != 0):
				t.Errorf("expired standby after reconcile: %+v, v1 containers %+v; want removed", sb, v1)
			case !expired && (sb.Release != 1 || !allPaused(v1)):
				t.Errorf("standby after reconcile: %+v, v1 containers %+v; want kept paused", sb, v1)
			}
		})
	}
}
