package deploy

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/internal/enginetest"
	"github.com/plat-paas/plat/internal/latency"
	"github.com/plat-paas/plat/store"
)

func TestJudge(t *testing.T) {
	s := store.Strategy{MaxErrorRate: 1, MaxP99: 800 * time.Millisecond, MinRequests: 50}
	tests := []struct {
		name string
		n    stepNumbers
		over bool
		want verdict
		why  string
	}{
		{"clean, step running", stepNumbers{requests: 100}, false, goOn, ""},
		{"clean, step over", stepNumbers{requests: 100, p99: 10 * time.Millisecond}, true, passed, ""},
		{"error rate over the limit aborts at once", stepNumbers{requests: 212, errors: 42}, false, breached, "5xx 19.8% of 212 requests > 1%"},
		{"error rate at the limit passes", stepNumbers{requests: 100, errors: 1}, true, passed, ""},
		{"too few requests to judge errors", stepNumbers{requests: 20, errors: 20}, false, goOn, ""},
		{"p99 over the limit aborts", stepNumbers{requests: 60, p99: 1200 * time.Millisecond}, false, breached, "p99 1.2s over 60 requests > 800ms"},
		{"too few requests at the end: inconclusive", stepNumbers{requests: 3}, true, inconclusive, "only 3 of 50 requests"},
		{"no requests at the end: inconclusive", stepNumbers{}, true, inconclusive, "only 0 of 50 requests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := judge(s, tt.n, tt.over)
			if got != tt.want || why != tt.why {
				t.Errorf("judge = %d %q, want %d %q", got, why, tt.want, tt.why)
			}
		})
	}
	if v, _ := judge(store.Strategy{MaxErrorRate: 1}, stepNumbers{}, true); v != passed {
		t.Errorf("min_requests 0: an idle step = %d, want passed", v)
	}
}

// splitFake is the router as a canary sees it: it records each split and
// makes up traffic for the canary release each time its counters are read.
type splitFake struct {
	*fakeSwitcher
	mu      sync.Mutex
	splits  []Split
	stats   map[string]*ReleaseStats
	hist    map[string]*latency.Histogram
	traffic func(release string) (requests, errors uint64, lat time.Duration)
	// lostAt: the canary's n-th read finds it gone from the route (a crash
	// recovery re-routed the stable replicas).
	lostAt, reads int
}

func (f *splitFake) SwitchSplit(app string, s Split) (func(context.Context) error, error) {
	if s.Canary == nil { // a plain route, labelled with its release
		return f.fakeSwitcher.Switch(app, s.Stable.Addrs)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.splits = append(f.splits, s)
	return func(context.Context) error { return nil }, nil
}

func (f *splitFake) Hold(string, time.Duration) (func(context.Context) error, error) {
	return func(context.Context) error { return nil }, nil
}

func (f *splitFake) ReleaseStats(_, release string) (ReleaseStats, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stats == nil {
		f.stats, f.hist = map[string]*ReleaseStats{}, map[string]*latency.Histogram{}
	}
	if release == "v2" {
		if f.reads++; f.reads == f.lostAt {
			delete(f.stats, release)
			delete(f.hist, release)
			return ReleaseStats{}, false
		}
	}
	st, h := f.stats[release], f.hist[release]
	if st == nil {
		st, h = &ReleaseStats{}, &latency.Histogram{}
		f.stats[release], f.hist[release] = st, h
	}
	if f.traffic != nil {
		req, errs, lat := f.traffic(release)
		st.Requests += req
		st.Status5xx += errs
		st.Status2xx += req - errs
		for range req {
			h.Record(lat)
		}
	}
	st.Latency = h.Snapshot()
	return *st, true
}

func (f *splitFake) weights() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for _, s := range f.splits {
		out = append(out, s.Weight)
	}
	return out
}

func newCanaryUnit(t *testing.T, traffic func(release string) (uint64, uint64, time.Duration)) (*unit, *splitFake) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "plat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng := enginetest.New()
	t.Cleanup(eng.Close)
	sw := &splitFake{fakeSwitcher: &fakeSwitcher{}, traffic: traffic}
	d := New(st, eng, sw, Config{Instance: unitInstance, DrainTimeout: time.Second, StopTimeout: time.Second}, slog.New(slog.DiscardHandler))
	return &unit{d: d, eng: eng, sw: sw.fakeSwitcher, st: st}, sw
}

// canaryTraffic gives the canary (v2) req requests per read, errs of them
// 5xx, each taking lat; the stable release (v1) clean requests.
func canaryTraffic(req, errs uint64, lat time.Duration) func(string) (uint64, uint64, time.Duration) {
	return func(release string) (uint64, uint64, time.Duration) {
		if release == "v2" {
			return req, errs, lat
		}
		return 10, 0, time.Millisecond
	}
}

// shipCanary deploys v1 blue-green, then v2 with the canary strategy s.
func shipCanary(t *testing.T, u *unit, s store.Strategy) (store.Release, string, error) {
	t.Helper()
	// A busy machine may take a while to answer; the canary's decisions,
	// not its health check, are under test.
	if err := u.st.CreateApp(store.App{Name: "web", Scale: store.Scale{Min: 2, Max: 2}, Replicas: 2,
		Health: store.HealthCheck{Path: "/up", Timeout: time.Second, Interval: 50 * time.Millisecond, Deadline: 10 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.deploy(t, "web", u.push(t, "web", "sha256:one")); err != nil {
		t.Fatalf("first deploy: %v", err)
	}
	var out bytes.Buffer
	rel, err := u.d.run(context.Background(), canary{s}, u.get(t, "web"), u.push(t, "web", "sha256:two"), newTimings(), &out)
	return rel, out.String(), err
}

func testCanary(steps ...int) store.Strategy {
	return store.Strategy{Name: store.StrategyCanary, Steps: steps, StepTime: 40 * time.Millisecond, MaxErrorRate: 1, MinRequests: 20}
}

func TestCanaryDecisions(t *testing.T) {
	withP99 := testCanary(10, 50, 100)
	withP99.MaxP99 = 100 * time.Millisecond
	tests := []struct {
		name        string
		s           store.Strategy
		traffic     func(string) (uint64, uint64, time.Duration)
		lostAt      int
		wantActive  int
		wantWeights []int
		wantErr     []string // in the error and the release's reason
		wantOut     []string
	}{
		{name: "clean canary advances every step", s: testCanary(10, 50, 100), traffic: canaryTraffic(10, 0, 5*time.Millisecond),
			wantActive: 2, wantWeights: []int{10, 50, 100},
			wantOut: []string{"Canary step 1 of 3: 10% of requests to v2", "Step 1 (10%) so far: v2 ", "Step 2 (50%) passed: v2 ", "Step 3 (100%) passed", "Switched all traffic to v2", "Timings: "}},
		{name: "split lost mid-step is routed again, counted afresh", s: testCanary(10, 50, 100), traffic: canaryTraffic(10, 0, time.Millisecond), lostAt: 3,
			wantActive: 2, wantWeights: []int{10, 10, 50, 100}},
		{name: "error rate aborts in the first step", s: testCanary(10, 50, 100), traffic: canaryTraffic(10, 5, time.Millisecond),
			wantActive: 1, wantWeights: []int{10},
			wantErr: []string{"canary v2: 5xx 50.0% of ", " requests > 1% at step 1 (10%)"}, wantOut: []string{"Aborted: canary v2", "all traffic is back on v1"}},
		{name: "p99 aborts", s: withP99, traffic: canaryTraffic(10, 0, 300*time.Millisecond),
			wantActive: 1, wantWeights: []int{10}, wantErr: []string{"canary v2: p99 ", "> 100ms at step 1 (10%)"}},
		{name: "idle canary: extended, then goes on with a warning", s: testCanary(50, 100), traffic: canaryTraffic(0, 0, 0),
			wantActive: 2, wantWeights: []int{50, 100},
			wantOut: []string{"Step 1 inconclusive: only 0 of 20 requests; extended by 40ms (1 of 3)", "(3 of 3)", "Warning: step 1 stayed inconclusive", "Switched all traffic to v2"}},
		{name: "few requests that fail: aborted after the extensions", s: testCanary(50, 100), traffic: canaryTraffic(1, 1, time.Millisecond),
			wantActive: 1, wantWeights: []int{50}, wantErr: []string{"canary v2: 5xx 100.0% of ", "too few to be sure but over the limit after 3 extensions"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u, sw := newCanaryUnit(t, tt.traffic)
			sw.lostAt = tt.lostAt
			rel, out, err := shipCanary(t, u, tt.s)
			if app := u.get(t, "web"); app.Active != tt.wantActive {
				t.Errorf("active v%d, want v%d\n%s", app.Active, tt.wantActive, out)
			}
			if got := sw.weights(); !slices.Equal(got, tt.wantWeights) {
				t.Errorf("split weights %v, want %v", got, tt.wantWeights)
			}
			serving := u.running("web", tt.wantActive)
			if len(serving) != 2 || !slices.Equal(sorted(u.lastSwitch()), addrs(serving)) {
				t.Errorf("router %v, want only v%d's running replicas %v", u.lastSwitch(), tt.wantActive, addrs(serving))
			}
			if n := len(u.eng.Containers()); n != 2 {
				t.Errorf("%d containers left, want 2", n)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("push output lacks %q:\n%s", w, out)
				}
			}
			if len(tt.wantErr) == 0 {
				if err != nil || rel.Status != store.StatusActive {
					t.Fatalf("canary: %v (%s)\n%s", err, rel.Status, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("canary succeeded, want %q\n%s", tt.wantErr, out)
			}
			got, _ := u.st.GetRelease("web", 2)
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) || !strings.Contains(got.Reason, w) {
					t.Errorf("error %q / reason %q lacks %q", err, got.Reason, w)
				}
			}
			if got.Status != store.StatusFailed || !slices.Contains(eventKinds(t, u.st, "web"), "failed") {
				t.Errorf("v2 %s, events %v; want failed with an event", got.Status, eventKinds(t, u.st, "web"))
			}
		})
	}
}

// TestCanaryCommands: promote and abort reach a running step at once, and
// return only once traffic switched.
func TestCanaryCommands(t *testing.T) {
	for _, promote := range []bool{true, false} {
		t.Run(map[bool]string{true: "promote", false: "abort"}[promote], func(t *testing.T) {
			t.Parallel()
			u, sw := newCanaryUnit(t, canaryTraffic(10, 0, time.Millisecond))
			s := testCanary(10, 50, 100)
			s.StepTime = time.Minute
			type result struct {
				err error
				out string
			}
			done := make(chan result, 1)
			go func() {
				_, out, err := shipCanary(t, u, s)
				done <- result{err, out}
			}()
			deadline := time.Now().Add(5 * time.Second)
			for {
				if st, ok := u.d.RolloutStatus("web"); ok && st.State == "step" && len(st.Releases) == 2 {
					if st.Strategy != "canary" || st.From != 1 || st.To != 2 || st.Weight != 10 || st.Releases[1].Role != "canary" {
						t.Errorf("status %+v", st)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no rollout step in progress")
				}
				time.Sleep(5 * time.Millisecond)
			}
			start := time.Now()
			var err error
			if promote {
				_, err = u.d.PromoteRollout(context.Background(), "web")
			} else {
				_, err = u.d.AbortRollout(context.Background(), "web", "rollout:abort")
			}
			if err != nil {
				t.Fatal(err)
			}
			want := map[bool]int{true: 2, false: 1}[promote]
			if got := u.running("web", want); !slices.Equal(sorted(u.lastSwitch()), addrs(got)) {
				t.Errorf("after the command the router points at %v, want v%d's %v", u.lastSwitch(), want, addrs(got))
			}
			r := <-done
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %s", took)
			}
			if promote && r.err != nil {
				t.Fatalf("promoted rollout failed: %v\n%s", r.err, r.out)
			}
			if !promote && (r.err == nil || r.err.Error() != "canary v2: aborted by rollout:abort at step 1 (10%)") {
				t.Fatalf("aborted rollout: %v", r.err)
			}
			if got := sw.weights(); !slices.Equal(got, []int{10}) {
				t.Errorf("weights %v, want only the first step", got)
			}
			if _, ok := u.d.RolloutStatus("web"); ok {
				t.Error("the rollout is still listed after it ended")
			}
			if _, err := u.d.AbortRollout(context.Background(), "web", "x"); err == nil {
				t.Error("abort without a rollout: no error")
			}
		})
	}
}

// TestCanaryAbortWhileStarting: an abort sent while the canary's replicas
// start acts before any split: no request ever reaches the canary.
func TestCanaryAbortWhileStarting(t *testing.T) {
	u, sw := newCanaryUnit(t, canaryTraffic(10, 0, time.Millisecond))
	slow := enginetest.Behaviour{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(300 * time.Millisecond)
	})}
	u.eng.Behave = func(spec engine.ContainerSpec) enginetest.Behaviour {
		if spec.Labels[engine.LabelRelease] == "2" {
			return slow
		}
		return enginetest.Behaviour{}
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := shipCanary(t, u, testCanary(10, 50, 100))
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for st, ok := u.d.RolloutStatus("web"); !ok || st.State != "starting"; st, ok = u.d.RolloutStatus("web") {
		if time.Now().After(deadline) {
			t.Fatal("no rollout starting")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := u.d.AbortRollout(context.Background(), "web", "rollout:abort"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "aborted by rollout:abort") {
		t.Fatalf("rollout: %v", err)
	}
	if w := sw.weights(); len(w) != 0 {
		t.Errorf("splits %v, want none", w)
	}
	if app := u.get(t, "web"); app.Active != 1 || len(u.running("web", 2)) != 0 {
		t.Errorf("active v%d, %d v2 containers running; want v1 alone", app.Active, len(u.running("web", 2)))
	}
}
