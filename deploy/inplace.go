package deploy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/plat-paas/plat/engine"
)

// inPlace ships a release for apps that must never run twice (a
// single-writer process, a host without room for a second copy): the
// router holds the app's requests, the old replicas drain and stop, then
// the new ones start; once they are healthy the held requests go to them.
// Two versions never run at once. The pause the clients see is the drain
// plus the new release's start and health check; requests held longer than
// the app's hold setting get a 503 with Retry-After.
//
// The old containers are stopped, not removed, until the new release is
// active: if a new replica fails its check, they start again (as a wake
// does), the held requests go to them, and the release is marked failed.
type inPlace struct{ hold time.Duration }

func (inPlace) Name() string { return "in-place" }

func (s inPlace) Rollout(ctx context.Context, ro *Rollout) error {
	if len(ro.Serving) == 0 {
		// Nothing runs (the first deploy, or a sleeping app): nothing to
		// stop first, nothing to hold.
		return blueGreen{}.Rollout(ctx, ro)
	}
	n := ro.Replicas
	old, drainOld, err := ro.Hold(ctx, s.hold)
	if err != nil {
		return ro.Failed("the hold", err)
	}
	held := time.Now()
	ro.Step("Holding requests (up to %s) while v%d stops and v%d starts", strategyDuration(s.hold), ro.From.Version, ro.To.Version)
	ro.Event("held", "requests held up to %s while v%d stops and v%d starts", strategyDuration(s.hold), ro.From.Version, ro.To.Version)
	ro.Drain(ctx, drainOld)
	ro.StopKeep(ctx, old)
	ro.Mark("stop")

	reps, err := ro.Start(ctx, ro.To, replicaIndexes(n))
	if err != nil {
		return ro.Failed("the start and health check", s.restore(ctx, ro, old, held, err))
	}
	ro.To.ContainerID = reps[0].ID
	if _, err := ro.Activate(ctx, reps); err != nil {
		var live *liveError
		if errors.As(err, &live) {
			return err
		}
		ro.Remove(reps)
		var pe *phaseError
		if errors.As(err, &pe) {
			err = pe.err
		}
		return ro.Failed("the switch", s.restore(ctx, ro, old, held, err))
	}
	pause := time.Since(held)
	ro.Step("Switched traffic to v%d (%d %s); requests were held for %s", ro.To.Version, n, plural(n, "replica", "replicas"), roundDuration(pause))
	ro.Event("switched", "in-place: traffic now goes to %s after a pause of %s", replicaNames(reps), roundDuration(pause))
	// The hold left no backend to drain: the old replicas stopped before.
	ro.StopOthers(ctx)
	return nil
}

// restore starts the old replicas (stopped, kept) again after the new
// release failed with cause, and routes the held requests to them.
func (s inPlace) restore(ctx context.Context, ro *Rollout, old []Replica, held time.Time, cause error) error {
	ctx = context.WithoutCancel(ctx) // a cancelled deploy still puts the old release back
	back, err := ro.StartAgain(ctx, old)
	if err == nil {
		_, err = ro.Switch(ctx, back)
	}
	if err != nil {
		// The hold expires: requests get a 503 until a deploy or a
		// restart of the daemon brings a release up.
		ro.Event("restore-failed", "could not start v%d again: %v", ro.From.Version, err)
		return fmt.Errorf("%w; starting v%d again failed too: %w", cause, ro.From.Version, err)
	}
	pause := time.Since(held)
	ro.Step("Started v%d again (%d %s); requests were held for %s", ro.From.Version, len(back), plural(len(back), "replica", "replicas"), roundDuration(pause))
	ro.Event("restored", "in-place deploy of v%d failed; v%d serves again on %s after a pause of %s", ro.To.Version, ro.From.Version, replicaNames(back), roundDuration(pause))
	return cause
}

// Hold takes the app's traffic off every backend while an in-place deploy
// replaces it: the router holds requests (without waking anything) until
// the next Switch or Activate, up to timeout, then answers 503. It returns
// the replicas that were routed (read under the replica lock: the
// supervisor may have replaced one since the rollout began) and drainOld,
// which waits for their requests in flight.
func (ro *Rollout) Hold(ctx context.Context, timeout time.Duration) (held []Replica, drainOld func(context.Context) error, err error) {
	sw, ok := ro.rs.switcher.(SplitSwitcher)
	if !ok {
		return nil, nil, errors.New("this router cannot hold requests; choose another strategy with plat strategy:set")
	}
	unlock, err := ro.locks.lockReplicas(ctx, ro.App.Name)
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	held = ro.rs.routed.get(ro.App.Name)
	drainOld, err = sw.Hold(ro.App.Name, timeout)
	if err != nil {
		return nil, nil, fmt.Errorf("hold requests: %w", err)
	}
	ro.rs.routed.set(ro.App.Name, nil)
	if ro.rs.onSwitch != nil {
		ro.rs.onSwitch(ro.App.Name, nil)
	}
	return held, drainOld, nil
}

// StopKeep stops replicas gracefully and keeps their containers, so that
// StartAgain can bring them back; drain them first. StopOthers removes
// them once the new release is active.
func (ro *Rollout) StopKeep(ctx context.Context, reps []Replica) {
	// Side by side: the clients wait for the slowest stop, not the sum.
	var wg sync.WaitGroup
	for _, r := range reps {
		wg.Go(func() { ro.rs.stopKeep(context.WithoutCancel(ctx), ro.App.Name, r.ID) })
	}
	wg.Wait()
}

// StartAgain starts replicas of From stopped by StopKeep and waits until
// they are healthy; one whose container is gone is created again, and
// with none (every one had crashed) From's replicas are created anew.
func (ro *Rollout) StartAgain(ctx context.Context, reps []Replica) ([]Replica, error) {
	if len(reps) == 0 {
		return ro.Start(ctx, ro.From, replicaIndexes(ro.Replicas))
	}
	var back []Replica
	var errs []error
	for _, r := range reps {
		got, _, _, _, err := ro.rs.bringUp(ctx, ro.App, ro.From, r.Index, engine.ContainerInfo{ID: r.ID, Name: r.Name}, true)
		if err != nil {
			// Its container may be gone or broken: a new one, as a wake does.
			ro.rs.remove(r.ID)
			got, _, _, _, err = ro.rs.bringUp(ctx, ro.App, ro.From, r.Index, engine.ContainerInfo{}, false)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("replica %d of v%d: %w", r.Index, ro.From.Version, err))
			continue
		}
		back = append(back, got)
	}
	if len(back) == 0 {
		return nil, errors.Join(errs...)
	}
	return back, nil
}
