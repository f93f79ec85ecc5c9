package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/plat-paas/plat/store"
)

// Retire ends the replicas that served before To went live (old, drained):
// with a standby time (Config.Standby) they are paused and kept as the
// app's standby, for a rollback to From that thaws them instead of starting
// containers; otherwise they are stopped and removed. Every other container
// not of To (an earlier standby too) is stopped and removed.
func (ro *Rollout) Retire(ctx context.Context, old []Replica) {
	ctx = context.WithoutCancel(ctx)
	rs, name := ro.rs, ro.App.Name
	var paused []string
	if rs.cfg.Standby > 0 && ro.From.Version != 0 {
		for _, r := range old {
			if r.Release != ro.From.Version {
				continue // a strategy's mix: only the stable release stands by
			}
			if err := rs.engine.Pause(ctx, r.ID); err != nil {
				if !errors.Is(err, errors.ErrUnsupported) {
					rs.log.Warn("pause the old release for standby; removing it", "app", name, "id", shortID(r.ID), "err", err)
				}
				continue
			}
			paused = append(paused, r.ID)
		}
	}
	sb := store.Standby{}
	if len(paused) > 0 {
		sb = store.Standby{Release: ro.From.Version, IDs: paused, Until: time.Now().Add(rs.cfg.Standby)}
	}
	unlock, err := ro.locks.lockReplicas(ctx, name)
	if err == nil {
		err = rs.store.UpdateApp(name, func(a *store.App) error { a.Standby = sb; return nil })
		unlock()
	}
	if err != nil {
		rs.log.Error("record standby", "app", name, "err", err)
		paused = nil
	}
	// The staged release is not an old one: it stays staged.
	rs.stopOldReleases(ctx, name, ro.To, append(paused, rs.stagedIDs(ctx, name)...)...)
	if len(paused) > 0 {
		ro.Step("v%d stands by (paused) for %s: `plat rollback` to it takes milliseconds", ro.From.Version, rs.cfg.Standby)
		rs.event(name, "standby", ro.From.Version, "paused %d %s of v%d for a fast rollback until %s",
			len(paused), plural(len(paused), "replica", "replicas"), ro.From.Version, sb.Until.Format(time.RFC3339))
	}
}

// fromStandby rolls back to the release standing by: it unpauses the
// standby's replicas, checks their health, switches all traffic to them at
// once and retires the replicas that served (which become the standby in
// turn). If a standby replica does not answer, the standby is dropped and
// the rollback starts new containers, blue-green.
type fromStandby struct{ sb store.Standby }

func (fromStandby) Name() string { return "standby" }

func (s fromStandby) Rollout(ctx context.Context, ro *Rollout) error {
	if !ro.claim(ctx, s.sb) {
		ro.Step("The standby of v%d is gone; starting new containers", s.sb.Release)
		ro.unclaimed()
		return blueGreen{}.Rollout(ctx, ro)
	}
	reps, err := ro.thaw(ctx, s.sb)
	if err != nil {
		ro.Step("The standby did not answer (%v); starting new containers", err)
		ro.Event("standby-dropped", "the rollback could not use the standby of v%d: %v", s.sb.Release, err)
		ro.dropThawed(ctx, s.sb)
		return blueGreen{}.Rollout(ctx, ro)
	}
	ro.Mark("start")
	ro.To.ContainerID = reps[0].ID
	drainOld, err := ro.Activate(ctx, reps)
	if err != nil {
		var live *liveError
		if !errors.As(err, &live) {
			ro.dropThawed(ctx, s.sb)
		}
		return err
	}
	ro.Step("Switched traffic to v%d: the standby of v%d, unpaused (%d %s)", ro.To.Version, s.sb.Release, len(reps), plural(len(reps), "replica", "replicas"))
	ro.Event("switched", "traffic now goes to %s (the standby of v%d, unpaused)", replicaNames(reps), s.sb.Release)
	ro.Event("rolled back", "%s", ro.To.Reason)
	ro.Drain(ctx, drainOld)
	ro.Mark("drain")
	ro.Retire(ctx, ro.Serving)
	return nil
}

// thaw unpauses the standby's containers and waits until each answers, as
// replicas of To.
func (ro *Rollout) thaw(ctx context.Context, sb store.Standby) ([]Replica, error) {
	rs := ro.rs
	reps := make([]Replica, 0, len(sb.IDs))
	for _, id := range sb.IDs {
		c, err := rs.engine.Inspect(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("standby container %s: %w", shortID(id), err)
		}
		if !c.Paused {
			return nil, fmt.Errorf("standby container %s is %s, not paused", c.Name, c.State)
		}
		if !ofRelease(c.Labels, ro.To) {
			return nil, fmt.Errorf("standby container %s is not of v%d", c.Name, ro.To.ContainersOf)
		}
		r, _, _, err := rs.restart(ctx, ro.App, ro.To, replicaIndex(c), c)
		if err != nil {
			return nil, err
		}
		reps = append(reps, r)
	}
	return reps, nil
}

// dropThawed removes the claimed standby's containers after a failed thaw;
// the rollback's new release no longer reuses them.
func (ro *Rollout) dropThawed(ctx context.Context, sb store.Standby) {
	rs := ro.rs
	for _, id := range sb.IDs {
		rs.remove(id)
	}
	ro.unclaimed()
}

// claim takes the standby sb out of the app's record, under the replica
// lock, so nothing else drops it (its time, memory pressure) or pauses it
// again (the watcher) while the rollback thaws it. False: it is no longer
// the app's standby.
func (ro *Rollout) claim(ctx context.Context, sb store.Standby) bool {
	unlock, err := ro.locks.lockReplicas(ctx, ro.App.Name)
	if err != nil {
		return false
	}
	defer unlock()
	app, err := ro.rs.store.GetApp(ro.App.Name)
	if err != nil || app.Standby.Release != sb.Release || !slices.Equal(app.Standby.IDs, sb.IDs) {
		return false
	}
	err = ro.rs.store.UpdateApp(ro.App.Name, func(a *store.App) error { a.Standby = store.Standby{}; return nil })
	return err == nil
}

// unclaimed makes To a rollback with its own containers.
func (ro *Rollout) unclaimed() {
	if ro.To.ContainersOf == 0 {
		return
	}
	ro.To.ContainersOf = 0
	if err := ro.rs.store.UpdateRelease(ro.App.Name, ro.To.Version, func(r *store.Release) error { r.ContainersOf = 0; return nil }); err != nil {
		ro.rs.log.Error("record release", "app", ro.App.Name, "release", ro.To.Version, "err", err)
	}
}
