package deploy

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

// hangingEngine runs one-off containers that never end on their own.
type hangingEngine struct {
	fakeEngine
	ran int
}

func (h *hangingEngine) HasFile(context.Context, string, string) (bool, error) { return true, nil }

func (h *hangingEngine) RunOnce(ctx context.Context, spec engine.ContainerSpec, o engine.OneOff) (int, error) {
	h.ran++
	<-ctx.Done()
	return -1, ctx.Err()
}

// TestReleasePhaseTimeout: a release command that runs past the timeout is
// stopped and fails the deploy, saying so; rollbacks and resource changes
// do not run it.
func TestReleasePhaseTimeout(t *testing.T) {
	d := newTestDeployer(t)
	eng := &hangingEngine{}
	d.engine, d.cfg.ReleaseTimeout = eng, 50*time.Millisecond
	rel := store.Release{App: "a", Version: 2, ImageID: "img", Cause: store.CausePush, Procfile: map[string]string{"release": "./migrate up"}}
	var out bytes.Buffer
	start := time.Now()
	ran, err := d.oneOffs.releasePhase(context.Background(), "a", rel, &out)
	if !ran || err == nil || !strings.Contains(err.Error(), "did not finish within 50ms") {
		t.Fatalf("ran %v err %v", ran, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s", took)
	}
	if !strings.Contains(out.String(), "-----> Running release command: ./migrate up") {
		t.Errorf("output %q", out.String())
	}
	for _, cause := range []store.Cause{store.CauseRollback, store.CauseResources} {
		rel.Cause = cause
		if ran, err := d.oneOffs.releasePhase(context.Background(), "a", rel, &out); ran || err != nil {
			t.Errorf("%s: ran %v err %v, want not run", cause, ran, err)
		}
	}
	if eng.ran != 1 {
		t.Errorf("the engine ran %d one-off containers, want 1", eng.ran)
	}
}
