package deploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// rolling ships a release a few replicas at a time, for hosts that cannot
// run two full copies of the app: with N replicas and a batch of b, at most
// N + b containers of the app exist at any moment. Each round starts b new
// replicas, waits until they are healthy, routes them in beside the old
// ones, then takes b old replicas out of the router, drains them (their
// requests in flight finish there) and stops them. The last round is the
// switch that records the new release as active.
//
// A new replica that fails its check stops the rollout: the old replicas
// stopped so far are started again (b at a time, so the bound holds), the
// new ones are drained and removed, and the old release serves alone as
// before; the release is marked failed with the reason.
type rolling struct{ batch int }

func (rolling) Name() string { return "rolling" }

func (s rolling) Rollout(ctx context.Context, ro *Rollout) error {
	if len(ro.Serving) == 0 {
		// Nothing serves (the first deploy, or a sleeping app whose
		// replicas are stopped): nothing to replace one by one.
		return blueGreen{}.Rollout(ctx, ro)
	}
	n, batch := ro.Replicas, max(s.batch, 1)
	var started []Replica // the new release's replicas, routed
	var stopped []int     // the indexes of the old replicas stopped so far
	round := 0
	for next := 1; next <= n; {
		k := min(batch, n-next+1)
		idx := make([]int, k)
		for i := range idx {
			idx[i] = next + i
		}
		reps, err := ro.Start(ctx, ro.To, idx)
		if err != nil {
			return ro.Failed("the start and health check", s.restore(ctx, ro, started, stopped,
				fmt.Errorf("replica %s of v%d: %w", indexList(idx), ro.To.Version, err)))
		}
		if next == 1 {
			ro.To.ContainerID = reps[0].ID
		}
		started = append(started, reps...)
		next += k
		if next > n {
			break // the last round: Activate below
		}
		// Keep old + new at N: retire as many old replicas as exceed it,
		// the lowest indexes first (new replica i replaces old replica i).
		old := ro.routedOf(ro.From.Version)
		retire := old[:min(len(old), max(0, len(old)+len(started)-n))]
		drainOld, err := ro.Replace(ctx, reps, retire)
		if err != nil {
			return ro.Failed("the switch", s.restore(ctx, ro, started, stopped, err))
		}
		ro.Drain(ctx, drainOld)
		ro.Stop(ctx, retire)
		for _, r := range retire {
			stopped = append(stopped, r.Index)
		}
		round++
		ro.Mark(fmt.Sprintf("replace %d", round))
		ro.progress(len(started))
	}

	drainOld, err := ro.Activate(ctx, started)
	if err != nil {
		var live *liveError
		if errors.As(err, &live) {
			return err
		}
		var pe *phaseError
		cause := err
		if errors.As(err, &pe) {
			cause = pe.err
		}
		return ro.Failed("the switch", s.restore(ctx, ro, started, stopped, cause))
	}
	// From here on the release is live: cancelling no longer applies.
	ro.Drain(ctx, drainOld)
	ro.Mark("drain")
	ro.StopOthers(ctx)
	ro.Step("Replaced %d/%d replicas (v%d: %d)", n, n, ro.To.Version, n)
	ro.Event("switched", "rolling: traffic now goes to %s", replicaNames(started))
	return nil
}

// restore undoes a rolling deploy that failed with cause: the old
// replicas stopped so far (their indexes) start again, a batch at a time,
// each batch routed in place of as many new replicas, which are drained
// and removed; then the old release serves alone. It returns cause as the
// release's failure, with what it could not restore.
func (s rolling) restore(ctx context.Context, ro *Rollout, started []Replica, stopped []int, cause error) error {
	// A cancelled deploy (plat cancel, a rollback) still puts the old
	// release back.
	ctx = context.WithoutCancel(ctx)
	batch := max(s.batch, 1)
	var errs []error
	for len(stopped) > 0 {
		k := min(batch, len(stopped))
		back, err := ro.Start(ctx, ro.From, stopped[:k])
		if err != nil {
			// The old replicas still routed serve alone below.
			errs = append(errs, fmt.Errorf("could not start v%d again: %w", ro.From.Version, err))
			break
		}
		stopped = stopped[k:]
		drop := started[:min(k, len(started))]
		started = started[len(drop):]
		drainOld, err := ro.Replace(ctx, back, drop)
		if err != nil {
			ro.Remove(back)
			errs = append(errs, fmt.Errorf("route v%d: %w", ro.From.Version, err))
			break
		}
		ro.Drain(ctx, drainOld)
		ro.Stop(ctx, drop)
	}
	if len(started) > 0 {
		drainOld, err := ro.Replace(ctx, nil, started)
		if err != nil {
			errs = append(errs, fmt.Errorf("route v%d: %w", ro.From.Version, err))
		} else {
			ro.Drain(ctx, drainOld)
		}
		ro.Stop(ctx, started)
	}
	old := ro.routedOf(ro.From.Version)
	ro.Step("Restored v%d: %d %s serving, v%d removed", ro.From.Version, len(old), plural(len(old), "replica", "replicas"), ro.To.Version)
	ro.Event("restored", "rolling deploy of v%d stopped; v%d serves alone on %s", ro.To.Version, ro.From.Version, replicaNames(old))
	if len(errs) > 0 {
		return fmt.Errorf("%w; restoring v%d: %w", cause, ro.From.Version, errors.Join(errs...))
	}
	return cause
}

// Replace routes the app, under the replica lock, to the replicas it has
// now plus add minus remove: one step of a rolling deploy. It reads the
// routed set again rather than trusting the caller's copy, as the
// supervisor may have re-routed a restarted replica meanwhile.
func (ro *Rollout) Replace(ctx context.Context, add, remove []Replica) (drainOld func(context.Context) error, err error) {
	unlock, err := ro.locks.lockReplicas(ctx, ro.App.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	reps := ro.rs.routed.get(ro.App.Name)
	for _, r := range remove {
		reps = without(reps, r.ID)
	}
	for _, r := range add {
		reps = append(without(reps, r.ID), r)
	}
	drainOld, err = ro.rs.route(ro.App.Name, reps)
	if err != nil {
		return nil, fmt.Errorf("switch router: %w", err)
	}
	return drainOld, nil
}

// routedOf returns the routed replicas of release version, by index.
func (ro *Rollout) routedOf(version int) []Replica {
	reps := slices.DeleteFunc(ro.rs.routed.get(ro.App.Name), func(r Replica) bool { return r.Release != version })
	slices.SortFunc(reps, func(a, b Replica) int { return cmp.Compare(a.Index, b.Index) })
	return reps
}

// progress writes how far a rolling deploy is: "Replaced 2/4 replicas (v8:
// 2, v7: 2)", with the routed replicas of each release.
func (ro *Rollout) progress(done int) {
	newN, oldN := len(ro.routedOf(ro.To.Version)), len(ro.routedOf(ro.From.Version))
	ro.Step("Replaced %d/%d replicas (v%d: %d, v%d: %d)", done, ro.Replicas, ro.To.Version, newN, ro.From.Version, oldN)
	ro.Event("progress", "rolling: %d/%d replicas of v%d serving beside %d of v%d", newN, ro.Replicas, ro.To.Version, oldN, ro.From.Version)
}

// midRollout says whether a rollout owns the app's route: replicas of a
// release other than the active one serve (a rolling deploy between its
// batches). The autoscaler and the idle timer leave such an app alone: a
// replica they stopped could be one the rollout is about to activate.
func midRollout(routed []Replica, active int) bool {
	return slices.ContainsFunc(routed, func(r Replica) bool { return r.Release != active })
}

// indexList writes replica indexes as "1", "1,2".
func indexList(idx []int) string {
	parts := make([]string, len(idx))
	for i, n := range idx {
		parts[i] = fmt.Sprint(n)
	}
	return strings.Join(parts, ",")
}
