package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"

	"github.com/plat-paas/plat/store"
)

// run deploys rel (whose image is built) blue-green, under the app's
// release lock. On any failure the new containers are removed, rel is
// marked failed and the old release keeps serving. Only the switch step
// takes the replica lock, so wakes and crash recovery go on meanwhile; a
// cancelled ctx stops it up to the switch.
func (d *Deployer) run(ctx context.Context, app store.App, rel store.Release, tm *timings, out io.Writer) (store.Release, error) {
	// The release phase comes before any new replica exists, so none can
	// take traffic before it succeeded.
	if ran, err := d.releasePhase(ctx, app.Name, rel, out); err != nil {
		return d.fail(ctx, rel, "the release command", err)
	} else if ran {
		tm.mark("release")
	}
	n := awakeReplicas(app)
	indexes := make([]int, n)
	for i := range indexes {
		indexes[i] = i + 1
	}
	reps, err := d.startReplicas(ctx, app, rel, indexes, tm, out)
	if err != nil {
		return d.fail(ctx, rel, "the start and health check", err)
	}
	rel.ContainerID = reps[0].ID
	removeNew := func() {
		for _, r := range reps {
			d.remove(r.ID)
		}
	}

	unlockReplicas, err := d.locks.lockReplicas(ctx, app.Name)
	if err != nil {
		removeNew()
		return d.fail(ctx, rel, "the switch", err)
	}
	defer unlockReplicas()
	// A wake or a sleep may have changed the record since run began.
	if app, err = d.store.GetApp(app.Name); err != nil {
		removeNew()
		return d.fail(ctx, rel, "the switch", fmt.Errorf("app %s: %w", rel.App, err))
	}
	// The switch comes before the store says "active": if the daemon dies in
	// between, start-up sees the old release active and its container still
	// running (old containers are stopped only after this point), so the old
	// version is served again.
	drainOld, err := d.route(app.Name, reps)
	if err != nil {
		removeNew()
		return d.fail(ctx, rel, "the switch", fmt.Errorf("switch router: %w", err))
	}
	d.load.touch(app.Name)
	tm.mark("switch")
	if err := d.store.ActivateRelease(app.Name, rel.Version); err != nil {
		// Traffic already flows to the new container; say so rather than
		// pretend it failed.
		d.log.Error("activate release", "app", app.Name, "release", rel.Version, "err", err)
		return rel, fmt.Errorf("v%d serves but could not be recorded as active: %w", rel.Version, err)
	}
	if rel.Cause != store.CausePush || !maps.Equal(app.Env, rel.Env) || app.Resources != rel.Resources || app.Asleep {
		// A deploy wakes a sleeping app: it runs until it is idle again.
		if err := d.store.UpdateApp(app.Name, func(a *store.App) error {
			a.Env, a.Resources, a.Asleep = rel.Env, rel.Resources, false
			return nil
		}); err != nil {
			d.log.Error("save config", "app", app.Name, "err", err)
		}
	}
	unlockReplicas()
	tm.mark("record")
	step(out, "Switched traffic to v%d (%d %s)", rel.Version, n, plural(n, "replica", "replicas"))
	d.event(app.Name, "switched", rel.Version, "traffic now goes to %s", replicaNames(reps))
	if rel.Cause == store.CauseRollback {
		d.event(app.Name, "rolled back", rel.Version, "%s", rel.Reason)
	}

	// From here on the release is live: cancelling no longer applies.
	d.drain(ctx, drainOld, out)
	tm.mark("drain")
	d.stopOldReleases(context.WithoutCancel(ctx), app.Name, rel.Version)
	d.pruneImages(context.WithoutCancel(ctx), app.Name)
	tm.mark("cleanup")
	step(out, "Timings: %s", tm)
	d.event(app.Name, "timings", rel.Version, "%s", tm)

	rel, err = d.store.GetRelease(app.Name, rel.Version)
	if err != nil {
		return rel, fmt.Errorf("read release: %w", err)
	}
	return rel, nil
}

// fail records rel as failed and returns the error for the caller. When
// ctx was cancelled, the reason is the cancellation's cause ("cancelled by
// admin during the build"), not the context error it made.
func (d *Deployer) fail(ctx context.Context, rel store.Release, during string, cause error) (store.Release, error) {
	if ctx.Err() != nil {
		if c := context.Cause(ctx); errors.Is(c, ErrCancelled) {
			cause = c
			if during != "" {
				cause = fmt.Errorf("%w during %s", c, during)
			}
		}
	}
	if err := d.store.FailRelease(rel.App, rel.Version, cause.Error()); err != nil {
		d.log.Error("mark release failed", "app", rel.App, "release", rel.Version, "err", err)
	}
	d.event(rel.App, "failed", rel.Version, "%v", cause)
	rel.Status, rel.Reason = store.StatusFailed, cause.Error()
	return rel, cause
}
