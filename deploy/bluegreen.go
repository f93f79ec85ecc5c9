package deploy

import (
	"context"
	"errors"

	"github.com/plat-paas/plat/store"
)

// blueGreen ships a release beside the running one: start all of the new
// release's replicas, health-check them, switch all traffic in one step,
// drain the old replicas and retire them (paused as a standby, or
// stopped). Until the switch the old release serves alone, so any failure
// before it leaves the app as it was.
type blueGreen struct{}

func (blueGreen) Name() string { return "blue-green" }

func (blueGreen) Rollout(ctx context.Context, ro *Rollout) error {
	n := ro.Replicas
	// A promotion's staged replicas serve as they are; only the rest start.
	staged := ro.Staged
	if len(staged) > n {
		ro.Stop(ctx, staged[n:])
		staged = staged[:n]
	}
	reps, err := ro.Start(ctx, ro.To, freeIndexes(staged, n-len(staged)))
	if err != nil {
		ro.Remove(staged)
		return ro.Failed("the start and health check", err)
	}
	reps = append(staged, reps...)
	ro.To.ContainerID = reps[0].ID
	drainOld, err := ro.Activate(ctx, reps)
	if err != nil {
		var live *liveError
		if !errors.As(err, &live) {
			ro.Remove(reps)
		}
		return err
	}
	ro.Step("Switched traffic to v%d (%d %s)", ro.To.Version, n, plural(n, "replica", "replicas"))
	ro.Event("switched", "traffic now goes to %s", replicaNames(reps))
	if ro.To.Cause == store.CauseRollback {
		ro.Event("rolled back", "%s", ro.To.Reason)
	}

	// From here on the release is live: cancelling no longer applies.
	ro.Drain(ctx, drainOld)
	ro.Mark("drain")
	ro.Retire(ctx, ro.Serving)
	return nil
}
