package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/plat-paas/plat/store"
)

// run deploys rel (whose image is built) with strategy s, under the app's
// release lock: the release command first, then s's rollout, then the
// clean-up of old images. On any failure before the switch the new
// containers are removed, rel is marked failed and the old release keeps
// serving. Only the switch steps take the replica lock, so wakes and crash
// recovery go on meanwhile; a cancelled ctx stops it up to the switch.
func (rl *Releases) run(ctx context.Context, s Strategy, app store.App, rel store.Release, tm *timings, out io.Writer) (store.Release, error) {
	return rl.runStaged(ctx, s, app, rel, nil, tm, out)
}

// runStaged is run for a promotion: staged are rel's running replicas the
// strategy may take over (Rollout.Staged).
func (rl *Releases) runStaged(ctx context.Context, s Strategy, app store.App, rel store.Release, staged []Replica, tm *timings, out io.Writer) (store.Release, error) {
	// The release phase comes before any new replica exists, so none can
	// take traffic before it succeeded.
	if ran, err := rl.oneOffs.releasePhase(ctx, app.Name, rel, out); err != nil {
		return rl.fail(ctx, rel, "the release command", err)
	} else if ran {
		tm.mark("release")
	}
	ro := rl.newRollout(app, rel, tm, out)
	ro.Staged = staged
	if err := s.Rollout(ctx, ro); err != nil {
		var live *liveError
		if errors.As(err, &live) {
			return ro.To, live.err
		}
		var pe *phaseError
		if errors.As(err, &pe) {
			return rl.fail(ctx, rel, pe.during, pe.err)
		}
		return rl.fail(ctx, rel, "", err)
	}
	rl.pruneImages(context.WithoutCancel(ctx), app.Name)
	tm.mark("cleanup")
	step(out, "Timings: %s", tm)
	rl.event(app.Name, "timings", rel.Version, "%s", tm)

	rel, err := rl.store.GetRelease(app.Name, rel.Version)
	if err != nil {
		return rel, fmt.Errorf("read release: %w", err)
	}
	return rel, nil
}

// fail records rel as failed and returns the error for the caller. When
// ctx was cancelled, the reason is the cancellation's cause ("cancelled by
// admin during the build"), not the context error it made.
func (r *recorder) fail(ctx context.Context, rel store.Release, during string, cause error) (store.Release, error) {
	if ctx.Err() != nil {
		if c := context.Cause(ctx); errors.Is(c, ErrCancelled) {
			cause = c
			if during != "" {
				cause = fmt.Errorf("%w during %s", c, during)
			}
		}
	}
	if err := r.store.FailRelease(rel.App, rel.Version, cause.Error()); err != nil {
		r.log.Error("mark release failed", "app", rel.App, "release", rel.Version, "err", err)
	}
	r.event(rel.App, "failed", rel.Version, "%v", cause)
	rel.Status, rel.Reason = store.StatusFailed, cause.Error()
	return rel, cause
}
