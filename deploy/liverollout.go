package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/plat-paas/plat/api"
)

// ErrNoRollout: promote, abort or status of an app with no rollout running.
var ErrNoRollout = errors.New("no rollout in progress")

// liveRollouts are the rollouts running now, by app: what GET .../rollout
// shows, and how promote and abort reach a strategy without the release
// lock its push holds. The strategy updates its status and polls its
// commands between checks.
type liveRollouts struct {
	mu   sync.Mutex
	apps map[string]*liveRollout
}

// liveRollout is one app's rollout in progress.
type liveRollout struct {
	cmds chan rolloutCmd // one pending command at most

	mu     sync.Mutex
	status api.Rollout
}

// rolloutCmd asks a running rollout to promote or abort now; done is closed
// once it acted (traffic switched), or when the rollout ended anyway.
type rolloutCmd struct {
	promote bool
	by      string // who asked, for the reason: "rollout:abort", "a rollback"
	done    chan struct{}
}

// begin registers app's rollout; end removes it and releases any command
// still waiting for it.
func (l *liveRollouts) begin(app string, st api.Rollout) *liveRollout {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.apps == nil {
		l.apps = map[string]*liveRollout{}
	}
	lr := &liveRollout{cmds: make(chan rolloutCmd, 1), status: st}
	l.apps[app] = lr
	return lr
}

func (l *liveRollouts) end(app string, lr *liveRollout) {
	l.mu.Lock()
	if l.apps[app] == lr {
		delete(l.apps, app)
	}
	l.mu.Unlock()
	for {
		select {
		case cmd := <-lr.cmds:
			close(cmd.done)
		default:
			return
		}
	}
}

func (l *liveRollouts) get(app string) *liveRollout {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.apps[app]
}

// update changes the status under its lock.
func (lr *liveRollout) update(f func(*api.Rollout)) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	f(&lr.status)
}

func (lr *liveRollout) snapshot() api.Rollout {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	st := lr.status
	st.Steps = slices.Clone(st.Steps)
	st.Releases = slices.Clone(st.Releases)
	return st
}

// RolloutStatus returns app's rollout in progress; false when none runs.
func (rl *Releases) RolloutStatus(app string) (api.Rollout, bool) {
	lr := rl.live.get(app)
	if lr == nil {
		return api.Rollout{}, false
	}
	return lr.snapshot(), true
}

// PromoteRollout makes app's rollout skip its remaining steps: the new
// release becomes active now. It returns once traffic switched (or ctx
// ends), without the release lock the rollout's push holds.
func (rl *Releases) PromoteRollout(ctx context.Context, app string) (api.Rollout, error) {
	return rl.command(ctx, app, rolloutCmd{promote: true, by: "rollout:promote"})
}

// AbortRollout sends all of app's traffic back to the stable release now
// and fails the new one; by says who asked ("rollout:abort"). It returns
// once traffic is back on stable (or ctx ends).
func (rl *Releases) AbortRollout(ctx context.Context, app, by string) (api.Rollout, error) {
	return rl.command(ctx, app, rolloutCmd{by: by})
}

func (rl *Releases) command(ctx context.Context, app string, cmd rolloutCmd) (api.Rollout, error) {
	lr := rl.live.get(app)
	if lr == nil {
		return api.Rollout{}, fmt.Errorf("%w for %s", ErrNoRollout, app)
	}
	cmd.done = make(chan struct{})
	select {
	case lr.cmds <- cmd:
	default:
		// Another promote or abort is pending: this one waits for it.
		return lr.snapshot(), nil
	}
	select {
	case <-cmd.done:
	case <-ctx.Done():
		return api.Rollout{}, fmt.Errorf("waiting for the rollout of %s: %w", app, context.Cause(ctx))
	}
	return lr.snapshot(), nil
}
