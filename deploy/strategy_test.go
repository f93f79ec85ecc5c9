package deploy

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

// replaceOneByOne is a test strategy that uses the Rollout operations the
// way a rolling or canary strategy will: start one replica of the new
// release beside the old ones, route to a mixed set, stop one specific old
// replica, start the next, and activate. It records what it saw.
type replaceOneByOne struct {
	failFirst bool // the first start fails
	seen      struct {
		from, replicas int
		serving        []Replica
		routes         [][]string // router addresses after each Switch
		maxContainers  int
	}
	eng interface{ Containers() []engine.ContainerInfo }
}

func (*replaceOneByOne) Name() string { return "test-one-by-one" }

func (s *replaceOneByOne) count() {
	s.seen.maxContainers = max(s.seen.maxContainers, len(s.eng.Containers()))
}

func (s *replaceOneByOne) Rollout(ctx context.Context, ro *Rollout) error {
	s.seen.from, s.seen.replicas, s.seen.serving = ro.From.Version, ro.Replicas, slices.Clone(ro.Serving)
	old := slices.Clone(ro.Serving)
	var started []Replica
	for i := 1; i <= ro.Replicas; i++ {
		rel := ro.To
		if s.failFirst {
			rel.ImageID = "sha256:missing"
		}
		reps, err := ro.Start(ctx, rel, []int{i})
		s.count()
		if err != nil {
			// Nothing was switched yet: the stable release serves as it did.
			return ro.Failed("the first replica", err)
		}
		started = append(started, reps...)
		routed := append(slices.Clone(old[1:]), started...)
		drainOld, err := ro.Switch(ctx, routed)
		if err != nil {
			return err
		}
		s.seen.routes = append(s.seen.routes, addrsOf(routed))
		ro.Drain(ctx, drainOld)
		ro.Stop(ctx, old[:1])
		old = old[1:]
		s.count()
	}
	drainOld, err := ro.Activate(ctx, started)
	if err != nil {
		return err
	}
	ro.Drain(ctx, drainOld)
	ro.StopOthers(ctx)
	return nil
}

func addrsOf(reps []Replica) []string {
	out := make([]string, len(reps))
	for i, r := range reps {
		out[i] = r.Addr
	}
	slices.Sort(out)
	return out
}

// TestRolloutOperations: the seam lets a strategy start k replicas of a
// release, route to any mix of releases, stop specific replicas and
// activate, and a strategy's failure marks the release failed with the
// phase it named while the stable release serves again.
func TestRolloutOperations(t *testing.T) {
	tests := []struct {
		name       string
		failFirst  bool
		wantActive int
	}{
		{name: "replaces one by one", wantActive: 2},
		{name: "first start fails", failFirst: true, wantActive: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := newUnit(t)
			u.app(t, "web", 2)
			if _, _, err := u.deploy(t, "web", u.push(t, "web", "sha256:one")); err != nil {
				t.Fatal(err)
			}
			v1 := u.d.Replicas("web")
			s := &replaceOneByOne{failFirst: tt.failFirst, eng: u.eng}
			var out bytes.Buffer
			rel, err := u.d.run(context.Background(), s, u.get(t, "web"), u.push(t, "web", "sha256:two"), newTimings(), &out)

			if s.seen.from != 1 || s.seen.replicas != 2 || !slices.Equal(addrsOf(s.seen.serving), addrsOf(v1)) {
				t.Errorf("rollout saw from v%d, %d replicas, serving %v; want v1, 2, %v", s.seen.from, s.seen.replicas, s.seen.serving, v1)
			}
			if s.seen.maxContainers > 3 {
				t.Errorf("%d containers at once, want at most replicas+1 = 3", s.seen.maxContainers)
			}
			app := u.get(t, "web")
			if app.Active != tt.wantActive {
				t.Fatalf("active v%d, want v%d (err %v)", app.Active, tt.wantActive, err)
			}
			running := u.running("web", tt.wantActive)
			if !tt.failFirst {
				if len(s.seen.routes) != 2 || len(s.seen.routes[0]) != 2 || !slices.Contains(s.seen.routes[0], v1[1].Addr) {
					t.Errorf("routes %v: want one old (%s) and one new replica first", s.seen.routes, v1[1].Addr)
				}
				if err != nil || rel.Status != store.StatusActive || len(running) != 2 || len(u.eng.Containers()) != 2 {
					t.Fatalf("err %v, v2 %s, %d of v2 running, %d containers", err, rel.Status, len(running), len(u.eng.Containers()))
				}
				if !slices.Equal(sorted(u.lastSwitch()), addrs(running)) {
					t.Errorf("router at %v, want v2's %v", u.lastSwitch(), addrs(running))
				}
				return
			}
			var pe *phaseError
			if err == nil || errors.As(err, &pe) || !strings.Contains(err.Error(), "missing") {
				t.Fatalf("err %v: want the start error, unwrapped from its phase", err)
			}
			got, _ := u.st.GetRelease("web", 2)
			if got.Status != store.StatusFailed || got.Reason != err.Error() {
				t.Errorf("v2 %s %q, want failed with %q", got.Status, got.Reason, err)
			}
			if len(running) != 2 || len(u.eng.Containers()) != 2 || !slices.Equal(sorted(u.lastSwitch()), addrsOf(v1)) {
				t.Errorf("%d of v1 running, %d containers, router at %v; want v1 alone as before", len(running), len(u.eng.Containers()), u.lastSwitch())
			}
		})
	}
}
