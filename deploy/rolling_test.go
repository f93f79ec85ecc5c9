package deploy

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/internal/enginetest"
	"github.com/plat-paas/plat/store"
)

// traceEngine is the in-memory engine that records, in order, every
// container it runs, starts, stops and removes ("run v2.1", "stop v1.1"),
// the router changes (noted by traceSwitcher), and after each container
// change how many of the app's containers exist and how many releases run.
type traceEngine struct {
	*enginetest.Engine
	mu          sync.Mutex
	ops         []string
	maxExist    int // containers of any state
	maxReleases int // distinct releases with a running container
}

func (e *traceEngine) note(op string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ops = append(e.ops, op)
}

// count samples the engine after a change.
func (e *traceEngine) count() {
	cs := e.Containers()
	releases := map[string]bool{}
	for _, c := range cs {
		if c.Running {
			releases[c.Labels[engine.LabelRelease]] = true
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.maxExist = max(e.maxExist, len(cs))
	e.maxReleases = max(e.maxReleases, len(releases))
}

func (e *traceEngine) name(id string) string {
	info, err := e.Engine.Inspect(context.Background(), id)
	if err != nil {
		return id
	}
	return "v" + info.Labels[engine.LabelRelease] + "." + info.Labels[engine.LabelReplica]
}

func (e *traceEngine) Run(ctx context.Context, spec engine.ContainerSpec) (engine.ContainerInfo, error) {
	c, err := e.Engine.Run(ctx, spec)
	if err == nil {
		e.note("run v" + spec.Labels[engine.LabelRelease] + "." + spec.Labels[engine.LabelReplica])
		e.count()
	}
	return c, err
}

func (e *traceEngine) Start(ctx context.Context, id string) error {
	err := e.Engine.Start(ctx, id)
	e.note("start " + e.name(id))
	e.count()
	return err
}

func (e *traceEngine) Stop(ctx context.Context, id string, timeout time.Duration) error {
	e.note("stop " + e.name(id))
	return e.Engine.Stop(ctx, id, timeout)
}

func (e *traceEngine) Remove(ctx context.Context, id string) error {
	n := e.name(id)
	err := e.Engine.Remove(ctx, id)
	if err == nil {
		e.note("remove " + n)
	}
	return err
}

func (e *traceEngine) trace() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.ops)
}

// traceSwitcher is the fake router with Hold; it notes each route change
// in the engine's trace ("switch 3", "hold").
type traceSwitcher struct {
	*fakeSwitcher
	eng   *traceEngine
	holds []time.Duration
}

func (s *traceSwitcher) Switch(app string, addrs []string) (func(context.Context) error, error) {
	s.eng.note("switch " + strconv.Itoa(len(addrs)))
	return s.fakeSwitcher.Switch(app, addrs)
}

func (s *traceSwitcher) Hold(_ string, timeout time.Duration) (func(context.Context) error, error) {
	s.eng.note("hold")
	s.mu.Lock()
	s.holds = append(s.holds, timeout)
	s.mu.Unlock()
	return func(context.Context) error { return nil }, nil
}

func (s *traceSwitcher) SwitchSplit(app string, sp Split) (func(context.Context) error, error) {
	return s.Switch(app, sp.Stable.Addrs)
}

func (s *traceSwitcher) ReleaseStats(string, string) (ReleaseStats, bool) {
	return ReleaseStats{}, false
}

// traced makes u's deployer work through a traceEngine and traceSwitcher.
func traced(u *unit) (*traceEngine, *traceSwitcher) {
	te := &traceEngine{Engine: u.eng}
	ts := &traceSwitcher{fakeSwitcher: u.sw, eng: te}
	u.d.replicaSet.engine = te
	u.d.replicaSet.switcher = ts
	return te, ts
}

// since returns the trace after its first n entries, the container and
// router changes of one deploy.
func since(te *traceEngine, n int) []string { return te.trace()[n:] }

// phases groups a trace's consecutive operations of the same kind and
// sorts each group: replicas of one batch start side by side, in any
// order. Switches and holds stay as they are.
func phases(ops []string) string {
	var groups [][]string
	kind := func(op string) string { k, _, _ := strings.Cut(op, " "); return k }
	for _, op := range ops {
		if n := len(groups); n > 0 && kind(groups[n-1][0]) == kind(op) && kind(op) != "switch" && kind(op) != "hold" {
			groups[n-1] = append(groups[n-1], op)
			continue
		}
		groups = append(groups, []string{op})
	}
	var out []string
	for _, g := range groups {
		slices.Sort(g)
		out = append(out, strings.Join(g, ", "))
	}
	return strings.Join(out, " | ")
}

// setStrategy sets app's release strategy.
func (u *unit) setStrategy(t *testing.T, app string, s store.Strategy) {
	t.Helper()
	if err := u.st.UpdateApp(app, func(a *store.App) error { a.Strategy = s; return nil }); err != nil {
		t.Fatal(err)
	}
}

// ship deploys rel of app with its own strategy, as Push does.
func (u *unit) ship(t *testing.T, app string, rel store.Release) (store.Release, string, error) {
	t.Helper()
	var out bytes.Buffer
	a := u.get(t, app)
	got, err := u.d.run(context.Background(), strategyFor(a), a, rel, newTimings(), &out)
	return got, out.String(), err
}

// failing makes the replicas of release whose index is in idx answer 500.
func failing(release string, idx ...int) func(engine.ContainerSpec) enginetest.Behaviour {
	return func(spec engine.ContainerSpec) enginetest.Behaviour {
		i, _ := strconv.Atoi(spec.Labels[engine.LabelReplica])
		if spec.Labels[engine.LabelRelease] == release && slices.Contains(idx, i) {
			return enginetest.Behaviour{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })}
		}
		return enginetest.Behaviour{}
	}
}

func TestStrategyFor(t *testing.T) {
	for _, tt := range []struct {
		s    store.Strategy
		want Strategy
	}{
		{store.Strategy{}, blueGreen{}},
		{store.Strategy{Name: store.StrategyBlueGreen}, blueGreen{}},
		{store.Strategy{Name: store.StrategyRolling, Batch: 2}, rolling{batch: 2}},
		{store.Strategy{Name: store.StrategyInPlace, Hold: 5 * time.Second}, inPlace{hold: 5 * time.Second}},
	} {
		if got := strategyFor(store.App{Strategy: tt.s}); got != tt.want {
			t.Errorf("strategyFor(%+v) = %#v, want %#v", tt.s, got, tt.want)
		}
	}
}

// TestRolling: a rolling deploy replaces batch replicas at a time in index
// order, starting the new ones before it stops as many old ones; at most
// N + batch containers exist at any moment, N replicas serve at every
// switch, and at the end the new release serves alone.
func TestRolling(t *testing.T) {
	tests := []struct {
		replicas, batch int
		want            string // the deploy's container and router changes
		progress        []string
	}{
		{replicas: 3, batch: 1,
			want:     "run v2.1 | switch 3 | stop v1.1 | remove v1.1 | run v2.2 | switch 3 | stop v1.2 | remove v1.2 | run v2.3 | switch 3 | stop v1.3 | remove v1.3",
			progress: []string{"Replaced 1/3 replicas (v2: 1, v1: 2)", "Replaced 2/3 replicas (v2: 2, v1: 1)", "Replaced 3/3 replicas (v2: 3)"}},
		{replicas: 4, batch: 2,
			want:     "run v2.1, run v2.2 | switch 4 | stop v1.1 | remove v1.1 | stop v1.2 | remove v1.2 | run v2.3, run v2.4 | switch 4 | stop v1.3 | remove v1.3 | stop v1.4 | remove v1.4",
			progress: []string{"Replaced 2/4 replicas (v2: 2, v1: 2)", "Replaced 4/4 replicas (v2: 4)"}},
		{replicas: 3, batch: 2,
			want:     "run v2.1, run v2.2 | switch 3 | stop v1.1 | remove v1.1 | stop v1.2 | remove v1.2 | run v2.3 | switch 3 | stop v1.3 | remove v1.3",
			progress: []string{"Replaced 2/3 replicas (v2: 2, v1: 1)", "Replaced 3/3 replicas (v2: 3)"}},
		{replicas: 1, batch: 1, want: "run v2.1 | switch 1 | stop v1.1 | remove v1.1"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d replicas batch %d", tt.replicas, tt.batch), func(t *testing.T) {
			t.Parallel()
			u := newUnit(t)
			te, _ := traced(u)
			u.app(t, "web", tt.replicas)
			if _, _, err := u.deploy(t, "web", u.push(t, "web", "sha256:one")); err != nil {
				t.Fatal(err)
			}
			u.setStrategy(t, "web", store.Strategy{Name: store.StrategyRolling, Batch: tt.batch})
			before := len(te.trace())
			te.maxExist = 0

			rel, out, err := u.ship(t, "web", u.push(t, "web", "sha256:two"))
			if err != nil || rel.Status != store.StatusActive {
				t.Fatalf("rolling deploy: %v (%s)\n%s", err, rel.Status, out)
			}
			ops := since(te, before)
			if got := phases(ops); got != phases(strings.Split(strings.ReplaceAll(tt.want, ", ", " | "), " | ")) {
				t.Errorf("changes:\n got %s\nwant %s", got, tt.want)
			}
			if te.maxExist > tt.replicas+tt.batch {
				t.Errorf("%d containers existed at once, want at most replicas+batch = %d", te.maxExist, tt.replicas+tt.batch)
			}
			for _, op := range ops {
				if strings.HasPrefix(op, "switch ") && op != "switch "+strconv.Itoa(tt.replicas) {
					t.Errorf("%s: every switch must route all %d replicas", op, tt.replicas)
				}
			}
			running := u.running("web", 2)
			if len(running) != tt.replicas || len(u.eng.Containers()) != tt.replicas || !slices.Equal(sorted(u.lastSwitch()), addrs(running)) {
				t.Errorf("%d of v2 running, %d containers, router at %v; want v2's %v alone", len(running), len(u.eng.Containers()), u.lastSwitch(), addrs(running))
			}
			for _, p := range tt.progress {
				if !strings.Contains(out, "-----> "+p+"\n") {
					t.Errorf("no progress line %q in\n%s", p, out)
				}
			}
			if !strings.Contains(out, "Timings: ") || !slices.Contains(eventKinds(t, u.st, "web"), "switched") {
				t.Errorf("no Timings line or switched event:\n%s", out)
			}
		})
	}
}

// TestRollingFailureRestores: when a new replica fails its check, the
// rollout stops, the old replicas stopped so far start again and take
// the traffic back from the new ones (drained, then removed), the release
// is marked failed with the reason, and still at most N + batch
// containers exist at any moment.
func TestRollingFailureRestores(t *testing.T) {
	tests := []struct {
		failIndex int
		want      string
	}{
		{failIndex: 1, want: "run v2.1 | remove v2.1"},
		{failIndex: 2, want: "run v2.1 | switch 3 | stop v1.1 | remove v1.1 | run v2.2 | remove v2.2 | " +
			"run v1.1 | switch 3 | stop v2.1 | remove v2.1"},
		{failIndex: 3, want: "run v2.1 | switch 3 | stop v1.1 | remove v1.1 | run v2.2 | switch 3 | stop v1.2 | remove v1.2 | run v2.3 | remove v2.3 | " +
			"run v1.1 | switch 3 | stop v2.1 | remove v2.1 | run v1.2 | switch 3 | stop v2.2 | remove v2.2"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("replica %d fails", tt.failIndex), func(t *testing.T) {
			t.Parallel()
			u := newUnit(t)
			te, _ := traced(u)
			u.eng.Behave = failing("2", tt.failIndex)
			u.app(t, "web", 3)
			if _, _, err := u.deploy(t, "web", u.push(t, "web", "sha256:one")); err != nil {
				t.Fatal(err)
			}
			u.setStrategy(t, "web", store.Strategy{Name: store.StrategyRolling, Batch: 1})
			before := len(te.trace())
			te.maxExist = 0

			_, out, err := u.ship(t, "web", u.push(t, "web", "sha256:two"))
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("replica %d of v2: health check failed", tt.failIndex)) {
				t.Fatalf("err %v, want the failed replica's health check\n%s", err, out)
			}
			if got, want := phases(since(te, before)), phases(strings.Split(strings.ReplaceAll(tt.want, ", ", " | "), " | ")); got != want {
				t.Errorf("changes:\n got %s\nwant %s", got, want)
			}
			if te.maxExist > 4 {
				t.Errorf("%d containers existed at once, want at most 4", te.maxExist)
			}
			app := u.get(t, "web")
			rel, _ := u.st.GetRelease("web", 2)
			if app.Active != 1 || rel.Status != store.StatusFailed || rel.Reason != err.Error() {
				t.Errorf("active v%d, v2 %s %q; want v1 active, v2 failed with %q", app.Active, rel.Status, rel.Reason, err)
			}
			running := u.running("web", 1)
			var idx []string
			for _, c := range running {
				idx = append(idx, c.Labels[engine.LabelReplica])
			}
			slices.Sort(idx)
			if len(u.eng.Containers()) != 3 || !slices.Equal(idx, []string{"1", "2", "3"}) || !slices.Equal(sorted(u.lastSwitch()), addrs(running)) {
				t.Errorf("%d containers, v1 replicas %v, router at %v; want v1's 3 replicas alone", len(u.eng.Containers()), idx, u.lastSwitch())
			}
			if tt.failIndex > 1 && !slices.Contains(eventKinds(t, u.st, "web"), "restored") {
				t.Error("no restored event")
			}
		})
	}
}

// TestInPlace: the router holds requests, the old replicas drain and stop,
// and only then the new ones start; two releases never run at once. On
// success the old containers are removed; when the new release fails its
// check the old containers start again and take the held requests.
func TestInPlace(t *testing.T) {
	tests := []struct {
		name       string
		behave     func(engine.ContainerSpec) enginetest.Behaviour
		want       string
		wantActive int
	}{
		{name: "succeeds", wantActive: 2,
			want: "hold | stop v1.1, stop v1.2 | run v2.1, run v2.2 | switch 2 | remove v1.1, remove v1.2"},
		{name: "new release fails", behave: failing("2", 1, 2), wantActive: 1,
			want: "hold | stop v1.1, stop v1.2 | run v2.1, run v2.2 | remove v2.1, remove v2.2 | start v1.1 | start v1.2 | switch 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := newUnit(t)
			te, ts := traced(u)
			u.eng.Behave = tt.behave
			u.app(t, "web", 2)
			if _, _, err := u.deploy(t, "web", u.push(t, "web", "sha256:one")); err != nil {
				t.Fatal(err)
			}
			v1 := u.running("web", 1)
			u.setStrategy(t, "web", store.Strategy{Name: store.StrategyInPlace, Hold: 7 * time.Second})
			before := len(te.trace())
			te.maxReleases = 0

			_, out, err := u.ship(t, "web", u.push(t, "web", "sha256:two"))
			if got, want := phases(since(te, before)), phases(strings.Split(strings.ReplaceAll(tt.want, ", ", " | "), " | ")); got != want {
				t.Errorf("changes:\n got %s\nwant %s", got, want)
			}
			if te.maxReleases > 1 {
				t.Errorf("%d releases ran at once, want never two", te.maxReleases)
			}
			if len(ts.holds) != 1 || ts.holds[0] != 7*time.Second {
				t.Errorf("holds %v, want one of the app's 7s", ts.holds)
			}
			app := u.get(t, "web")
			running := u.running("web", tt.wantActive)
			if app.Active != tt.wantActive || len(running) != 2 || len(u.eng.Containers()) != 2 || !slices.Equal(sorted(u.lastSwitch()), addrs(running)) {
				t.Errorf("active v%d, %d running, %d containers, router at %v; want v%d's 2 replicas alone", app.Active, len(running), len(u.eng.Containers()), u.lastSwitch(), tt.wantActive)
			}
			if tt.wantActive == 2 {
				if err != nil || !strings.Contains(out, "requests were held for") {
					t.Fatalf("in-place deploy: %v\n%s", err, out)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "health check failed") {
				t.Fatalf("err %v, want the health check failure\n%s", err, out)
			}
			rel, _ := u.st.GetRelease("web", 2)
			if rel.Status != store.StatusFailed || !strings.Contains(out, "Started v1 again (2 replicas)") {
				t.Errorf("v2 %s; output\n%s", rel.Status, out)
			}
			// The same containers, started again: no new v1 container.
			if !slices.Equal(containerIDs(v1), containerIDs(running)) {
				t.Errorf("v1 runs in %v, want its own containers %v started again", containerIDs(running), containerIDs(v1))
			}
		})
	}
}

func containerIDs(cs []engine.ContainerInfo) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	slices.Sort(out)
	return out
}

// TestConfigFollowsStrategy: a config change ships with the app's
// strategy (rolling here: never more than N + 1 containers), a rollback
// always blue-green (all new replicas beside the old ones).
func TestConfigFollowsStrategy(t *testing.T) {
	u := newUnit(t)
	te, _ := traced(u)
	u.app(t, "web", 2)
	if _, _, err := u.deploy(t, "web", u.push(t, "web", "sha256:one")); err != nil {
		t.Fatal(err)
	}
	u.setStrategy(t, "web", store.Strategy{Name: store.StrategyRolling, Batch: 1})
	te.maxExist = 0
	if _, err := u.d.SetConfig(context.Background(), "web", ConfigChange{Set: map[string]string{"A": "1"}}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if a := u.get(t, "web"); a.Active != 2 || te.maxExist != 3 {
		t.Errorf("config change: active v%d, %d containers at most; want v2 and 3 (rolling, batch 1)", a.Active, te.maxExist)
	}
	te.maxExist = 0
	if _, err := u.d.Rollback(context.Background(), "web", 0, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if a := u.get(t, "web"); a.Active != 3 || te.maxExist != 4 {
		t.Errorf("rollback: active v%d, %d containers at most; want v3 and 4 (blue-green)", a.Active, te.maxExist)
	}
}

// TestReconcileInterruptedRollout: a daemon killed in the middle of a
// rolling deploy (some replicas of each release) or an in-place one (the
// old replicas stopped, the new one starting) comes back with the stable
// release serving alone on all its replicas, the interrupted release
// failed, and the interrupted release's containers removed before the
// stable release's missing replicas are recreated (never more than N).
func TestReconcileInterruptedRollout(t *testing.T) {
	tests := []struct {
		name string
		// interrupt leaves the engine as the killed deploy did.
		interrupt func(t *testing.T, u *unit, v1 []Replica, v2 store.Release)
		want      string
	}{
		{name: "rolling", want: "remove v2.1 | run v1.1 | switch 3",
			interrupt: func(t *testing.T, u *unit, v1 []Replica, v2 store.Release) {
				if _, err := u.d.startReplicas(context.Background(), u.get(t, "web"), v2, []int{1}, nil, &bytes.Buffer{}); err != nil {
					t.Fatal(err)
				}
				u.d.stopAndRemove(context.Background(), "web", v1[0].ID)
			}},
		{name: "in-place", want: "remove v2.1, remove v2.2, remove v2.3 | start v1.1 | start v1.2 | start v1.3 | switch 3",
			interrupt: func(t *testing.T, u *unit, v1 []Replica, v2 store.Release) {
				for _, r := range v1 {
					u.d.stopKeep(context.Background(), "web", r.ID)
				}
				if _, err := u.d.startReplicas(context.Background(), u.get(t, "web"), v2, []int{1, 2, 3}, nil, &bytes.Buffer{}); err != nil {
					t.Fatal(err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := newUnit(t)
			te, _ := traced(u)
			u.app(t, "web", 3)
			if _, _, err := u.deploy(t, "web", u.push(t, "web", "sha256:one")); err != nil {
				t.Fatal(err)
			}
			tt.interrupt(t, u, u.d.Replicas("web"), u.push(t, "web", "sha256:two"))
			before := len(te.trace())
			te.maxExist = 0

			if err := u.d.Reconcile(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got, want := phases(since(te, before)), phases(strings.Split(strings.ReplaceAll(tt.want, ", ", " | "), " | ")); got != want {
				t.Errorf("changes:\n got %s\nwant %s", got, want)
			}
			if te.maxExist > 3 {
				t.Errorf("%d containers existed at once during recovery, want at most 3", te.maxExist)
			}
			app := u.get(t, "web")
			rel, _ := u.st.GetRelease("web", 2)
			running := u.running("web", 1)
			if app.Active != 1 || rel.Status != store.StatusFailed || !strings.Contains(rel.Reason, "interrupted") {
				t.Errorf("active v%d, v2 %s %q; want v1 active, v2 failed as interrupted", app.Active, rel.Status, rel.Reason)
			}
			if len(running) != 3 || len(u.eng.Containers()) != 3 || !slices.Equal(sorted(u.lastSwitch()), addrs(running)) {
				t.Errorf("%d of v1 running, %d containers, router at %v; want v1's 3 replicas alone", len(running), len(u.eng.Containers()), u.lastSwitch())
			}
		})
	}
}

// TestAutoscaleWaitsForRollout: between the batches of a rolling deploy
// (replicas of two releases routed) the autoscaler changes nothing: a
// replica it stopped could be one the rollout is about to activate.
func TestAutoscaleWaitsForRollout(t *testing.T) {
	u := newUnit(t)
	u.app(t, "web", 2)
	if err := u.st.UpdateApp("web", func(a *store.App) error { a.Scale.Min, a.Scale.Max = 1, 3; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.deploy(t, "web", u.push(t, "web", "sha256:one")); err != nil {
		t.Fatal(err)
	}
	v1 := u.d.Replicas("web")
	v2, err := u.d.startReplicas(context.Background(), u.get(t, "web"), u.push(t, "web", "sha256:two"), []int{1}, nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	mixed := []Replica{v2[0], v1[1]}
	if _, err := u.d.route("web", mixed); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 3} {
		u.d.autoscale(context.Background(), "web", n, "test")
		if got := u.d.Replicas("web"); !slices.Equal(addrsOf(got), addrsOf(mixed)) || len(u.eng.Containers()) != 3 {
			t.Errorf("autoscale to %d mid-rollout: routed %v, %d containers; want the rollout's %v untouched", n, got, len(u.eng.Containers()), mixed)
		}
	}
}

// TestRollingCancelledRestores: a rolling deploy cancelled mid-way (plat
// cancel, or a rollback that aborts it) still puts the old release back
// on all its replicas, and the release's reason says it was cancelled.
func TestRollingCancelledRestores(t *testing.T) {
	u := newUnit(t)
	u.app(t, "web", 3)
	if _, _, err := u.deploy(t, "web", u.push(t, "web", "sha256:one")); err != nil {
		t.Fatal(err)
	}
	u.setStrategy(t, "web", store.Strategy{Name: store.StrategyRolling, Batch: 1})
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	u.eng.Behave = func(spec engine.ContainerSpec) enginetest.Behaviour {
		if spec.Labels[engine.LabelRelease] == "2" && spec.Labels[engine.LabelReplica] == "2" {
			cancel(fmt.Errorf("%w by the test", ErrCancelled))
		}
		return enginetest.Behaviour{}
	}
	a := u.get(t, "web")
	_, err := u.d.run(ctx, strategyFor(a), a, u.push(t, "web", "sha256:two"), newTimings(), &bytes.Buffer{})
	rel, _ := u.st.GetRelease("web", 2)
	if err == nil || rel.Status != store.StatusFailed || !strings.Contains(rel.Reason, "cancelled") || !strings.Contains(rel.Reason, "during the start and health check") {
		t.Fatalf("err %v, v2 %s %q; want failed as cancelled during the start", err, rel.Status, rel.Reason)
	}
	running := u.running("web", 1)
	if u.get(t, "web").Active != 1 || len(running) != 3 || len(u.eng.Containers()) != 3 || !slices.Equal(sorted(u.lastSwitch()), addrs(running)) {
		t.Errorf("%d of v1 running, %d containers, router at %v; want v1's 3 replicas alone", len(running), len(u.eng.Containers()), u.lastSwitch())
	}
}
