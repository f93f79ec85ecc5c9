package deploy

import (
	"context"
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/plat-paas/plat/store"
)

// Strategy ships one release: it decides which replicas of which release
// serve, and when. Each strategy lives in its own file (bluegreen.go) and
// works only through the Rollout it is given, whose operations are the only
// way it starts or stops containers and moves traffic.
//
// Rollout returns nil once ro.To is the active release (ro.Activate
// succeeded and the old replicas are stopped). On failure it leaves ro.From
// serving, removes what it started and returns an error; wrap it with
// ro.Failed to name the phase in the release's reason ("... during the
// switch"). Errors from ro.Activate are returned as they are.
type Strategy interface {
	Name() string
	Rollout(ctx context.Context, ro *Rollout) error
}

// strategyFor picks how app ships its releases, by its strategy setting
// (StrategyOf).
func strategyFor(app store.App) Strategy {
	switch s := StrategyOf(app); s.Name {
	case store.StrategyCanary:
		return canary{s}
	case store.StrategyRolling:
		return rolling{batch: s.Batch}
	case store.StrategyInPlace:
		return inPlace{hold: s.Hold}
	}
	return blueGreen{}
}

// Rollout is one release on its way to serving, under the app's release
// lock: what a Strategy reads, and the operations it may use.
type Rollout struct {
	// App is the app's record when the rollout began; Activate reads it
	// again under the replica lock.
	App store.App
	// From is the stable release (the active one); zero Version on the
	// app's first deploy.
	From store.Release
	// Serving are the replicas the router sends traffic to now (of From,
	// by index); none while the app sleeps or before its first deploy.
	Serving []Replica
	// To is the release to ship: its image is built and its release
	// command has run.
	To store.Release
	// Replicas is how many replicas the app runs when awake.
	Replicas int
	// Out receives the progress lines the pusher sees.
	Out io.Writer
	// Staged are running, healthy replicas of To from its staging (a
	// promotion) that the strategy may take over instead of starting
	// them; one that does not must leave them alone (Promote stopped
	// them before the rollout when the strategy is not blue-green).
	Staged []Replica

	// A strategy reaches containers and the router only through rs.
	rs    *replicaSet
	locks *appLocks
	load  *appLoads
	tm    *timings
	live  *liveRollouts
}

// newRollout describes the rollout of rel for app.
func (rl *Releases) newRollout(app store.App, rel store.Release, tm *timings, out io.Writer) *Rollout {
	ro := &Rollout{
		App: app, To: rel, Replicas: awakeReplicas(app), Out: out,
		Serving: rl.routed.get(app.Name),
		rs:      rl.replicaSet, locks: &rl.locks, load: rl.load, tm: tm, live: &rl.live,
	}
	if app.Active != 0 {
		from, err := rl.store.GetRelease(app.Name, app.Active)
		if err != nil {
			rl.log.Warn("read stable release", "app", app.Name, "release", app.Active, "err", err)
		}
		ro.From = from
	}
	return ro
}

// Start starts the replicas of rel numbered indexes side by side and waits
// until every one is healthy. If one fails, all are removed and the error
// returned: they serve together or not at all. The phases of the first are
// timed.
func (ro *Rollout) Start(ctx context.Context, rel store.Release, indexes []int) ([]Replica, error) {
	return ro.rs.startReplicas(ctx, ro.App, rel, indexes, ro.tm, ro.Out)
}

// Remove force-removes replicas that never served (a failed start, an
// aborted rollout before its switch).
func (ro *Rollout) Remove(reps []Replica) {
	for _, r := range reps {
		ro.rs.remove(r.ID)
	}
}

// Stop stops replicas gracefully and removes them; drain them first.
func (ro *Rollout) Stop(ctx context.Context, reps []Replica) {
	for _, r := range reps {
		ro.rs.stopAndRemove(context.WithoutCancel(ctx), ro.App.Name, r.ID)
	}
}

// Switch points the app's traffic at exactly reps (any releases), under the
// replica lock, without recording anything: for the steps of a rollout
// before its end (Activate). drainOld waits for the backends that left.
func (ro *Rollout) Switch(ctx context.Context, reps []Replica) (drainOld func(context.Context) error, err error) {
	unlock, err := ro.locks.lockReplicas(ctx, ro.App.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	drainOld, err = ro.rs.route(ro.App.Name, reps)
	if err != nil {
		return nil, fmt.Errorf("switch router: %w", err)
	}
	return drainOld, nil
}

// Activate ends a rollout: under the replica lock it points the traffic at
// reps (replicas of To), then records To as the active release and the
// app's config as To's, waking a sleeping app. The switch comes before the
// store says "active": if the daemon dies in between, start-up sees the old
// release active and its containers still running (they are stopped only
// after this), so the old version is served again.
//
// An error before the switch is a phase error (the caller removes reps); an
// error after it means To serves but is not recorded, and is returned as
// it is.
func (ro *Rollout) Activate(ctx context.Context, reps []Replica) (drainOld func(context.Context) error, err error) {
	rs, name, rel := ro.rs, ro.App.Name, ro.To
	unlock, err := ro.locks.lockReplicas(ctx, name)
	if err != nil {
		return nil, ro.Failed("the switch", err)
	}
	defer unlock()
	// A wake or a sleep may have changed the record since the rollout began.
	app, err := rs.store.GetApp(name)
	if err != nil {
		return nil, ro.Failed("the switch", fmt.Errorf("app %s: %w", rel.App, err))
	}
	drainOld, err = rs.route(name, reps)
	if err != nil {
		return nil, ro.Failed("the switch", fmt.Errorf("switch router: %w", err))
	}
	ro.load.touch(name)
	ro.Mark("switch")
	if err := rs.store.ActivateRelease(name, rel.Version); err != nil {
		// Traffic already flows to the new containers; say so rather than
		// pretend it failed.
		rs.log.Error("activate release", "app", name, "release", rel.Version, "err", err)
		return nil, &liveError{fmt.Errorf("v%d serves but could not be recorded as active: %w", rel.Version, err)}
	}
	if rel.Cause != store.CausePush || !maps.Equal(app.Env, rel.Env) || app.Resources != rel.Resources || app.Asleep {
		// A deploy wakes a sleeping app: it runs until it is idle again.
		if err := rs.store.UpdateApp(name, func(a *store.App) error {
			a.Env, a.Resources, a.Asleep, a.Warm, a.AsleepSince = rel.Env, rel.Resources, false, false, time.Time{}
			return nil
		}); err != nil {
			rs.log.Error("save config", "app", name, "err", err)
		}
	}
	unlock()
	ro.Mark("record")
	return drainOld, nil
}

// Drain waits, bounded by the drain timeout, for the requests in flight on
// the backends a switch took out (drainOld from Switch or Activate).
func (ro *Rollout) Drain(ctx context.Context, drainOld func(context.Context) error) {
	ro.rs.drain(ctx, drainOld, ro.Out)
}

// StopOthers stops and removes every container of the app that is not of
// To: the old releases, once To is active and they are drained. It is
// Retire with no standby: an earlier standby goes too.
func (ro *Rollout) StopOthers(ctx context.Context) {
	ro.Retire(ctx, nil)
}

// Step writes a progress line ("-----> ...") to the pusher.
func (ro *Rollout) Step(format string, args ...any) { step(ro.Out, format, args...) }

// Event records an event of the app about To.
func (ro *Rollout) Event(kind, format string, args ...any) {
	ro.rs.event(ro.App.Name, kind, ro.To.Version, format, args...)
}

// Mark ends the timed phase called name (see the "Timings" line).
func (ro *Rollout) Mark(name string) { ro.tm.mark(name) }

// Failed marks err as the failure of phase during ("the switch"): the
// release's reason names it when ctx was cancelled.
func (ro *Rollout) Failed(during string, err error) error {
	return &phaseError{during: during, err: err}
}

// replicaIndexes returns 1..n, the numbers of a release's n replicas.
func replicaIndexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

// phaseError is a rollout's failure in a named phase.
type phaseError struct {
	during string
	err    error
}

func (e *phaseError) Error() string { return e.err.Error() }
func (e *phaseError) Unwrap() error { return e.err }

// liveError is an error after the release went live: it is not marked
// failed.
type liveError struct{ err error }

func (e *liveError) Error() string { return e.err.Error() }
func (e *liveError) Unwrap() error { return e.err }
