package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/plat-paas/plat/store"
)

// SleepingReplicas lists the stopped or paused containers of a sleeping
// app's active release, as the replicas they become on a wake.
func (sc *Scaler) SleepingReplicas(ctx context.Context, appName string) []Replica {
	app, err := sc.store.GetApp(appName)
	if err != nil || app.Active == 0 || !app.Asleep {
		return nil
	}
	byIndex, err := sc.releaseContainers(ctx, app.Name, app.Active)
	if err != nil {
		return nil
	}
	var reps []Replica
	for idx, c := range byIndex {
		reps = append(reps, sc.replica(app.Name, app.Active, idx, c))
	}
	slices.SortFunc(reps, func(a, b Replica) int { return a.Index - b.Index })
	return reps
}

// Wake starts a sleeping app and routes it; the router calls it, once at a
// time per app, for requests to a sleeping app and holds them meanwhile. It
// takes only the replica lock: a deploy of the app (its build, its health
// check) does not hold it up.
func (sc *Scaler) Wake(ctx context.Context, appName string) error {
	unlock, err := sc.locks.lockReplicas(ctx, appName)
	if err != nil {
		return err
	}
	defer unlock()
	app, err := sc.store.GetApp(appName)
	if err != nil {
		return fmt.Errorf("app %s: %w", appName, err)
	}
	switch {
	case app.Active == 0:
		return fmt.Errorf("%w: %s has not been deployed yet", ErrNoRelease, appName)
	case !app.Asleep:
		return nil // a deploy or an earlier wake was first
	}
	return sc.wakeLocked(ctx, app, io.Discard)
}

// wakeLocked starts the stopped replicas of app's active release (or new
// ones where they are gone), waits until they answer, and routes them. On
// failure the app stays asleep: the next request tries again.
func (sc *Scaler) wakeLocked(ctx context.Context, app store.App, out io.Writer) error {
	started := time.Now()
	rel, err := sc.store.GetRelease(app.Name, app.Active)
	if err != nil {
		return fmt.Errorf("active release: %w", err)
	}
	n := awakeReplicas(app)
	// A warm wake knows its paused containers: no listing on the engine.
	byIndex, ok := sc.frozen.take(app.Name, rel.Version, n)
	if !ok {
		if byIndex, err = sc.releaseContainers(ctx, app.Name, rel.Version); err != nil {
			return err
		}
	}
	reps := make([]Replica, n)
	errs := make([]error, n)
	var engineTime, readyTime time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		idx := i + 1
		c, found := byIndex[idx]
		wg.Go(func() {
			r, startTook, readyTook, _, err := sc.bringUp(ctx, app, rel, idx, c, found)
			reps[i], errs[i] = r, err
			mu.Lock()
			engineTime, readyTime = max(engineTime, startTook), max(readyTime, readyTook)
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		// Back to sleep as a whole, including a replica that started but
		// never answered: the next request tries again.
		for _, r := range reps {
			if r.ID != "" {
				sc.stopKeep(context.WithoutCancel(ctx), app.Name, r.ID)
			}
		}
		if err := sc.store.UpdateApp(app.Name, func(a *store.App) error { a.Warm = false; return nil }); err != nil {
			sc.log.Error("record cold sleep", "app", app.Name, "err", err)
		}
		sc.event(app.Name, "wake-failed", rel.Version, "%v", err)
		return fmt.Errorf("wake %s: %w", app.Name, err)
	}
	if _, err := sc.route(app.Name, reps); err != nil {
		return fmt.Errorf("route woken replicas: %w", err)
	}
	took := time.Since(started)
	sc.load.touch(app.Name)
	if err := sc.store.UpdateApp(app.Name, func(a *store.App) error {
		a.Asleep, a.Warm, a.AsleepSince = false, false, time.Time{}
		return nil
	}); err != nil {
		sc.log.Error("record wake", "app", app.Name, "err", err)
	}
	stage, start := "cold", "start"
	if app.Warm {
		stage, start = "warm", "unpause"
	}
	step(out, "Woke %s (%s) in %s", app.Name, stage, roundDuration(took))
	sc.event(app.Name, "woke", rel.Version, "%d %s serving after %s, from %s sleep (engine %s %s, app ready %s later)",
		n, plural(n, "replica", "replicas"), roundDuration(took), stage, start, roundDuration(engineTime), roundDuration(readyTime))
	return nil
}

// sleep pauses app's replicas (warm; stopped, keeping the containers, when
// its cold-after is 0) and routes its hosts to wake it, if it still
// qualifies: minimum 0, awake, idle long enough.
func (sc *Scaler) sleep(ctx context.Context, appName string, idle time.Duration) {
	sc.withLockedApp(ctx, appName, func(app store.App) {
		s := EffectiveScale(app.Scale)
		if app.Asleep || s.Min > 0 || sc.load.idleFor(appName, time.Now()) < s.Idle {
			return
		}
		if midRollout(sc.routed.get(appName), app.Active) {
			return // a rolling deploy owns the route
		}
		// Asleep is recorded first: the containers' exits that follow must
		// not look like crashes, and a daemon that dies halfway finishes
		// putting the app to sleep when it starts again.
		warm := coldAfter(app.Scale) > 0
		if err := sc.store.UpdateApp(appName, func(a *store.App) error {
			a.Asleep, a.Warm, a.AsleepSince = true, warm, time.Now()
			return nil
		}); err != nil {
			sc.log.Error("record sleep", "app", appName, "err", err)
			return
		}
		reps := sc.routed.get(appName)
		drainOld, err := sc.routeAsleep(appName)
		if err != nil {
			sc.log.Error("route sleeping app", "app", appName, "err", err)
			return
		}
		sc.drain(ctx, drainOld, io.Discard)
		if !warm {
			for _, r := range reps {
				sc.stopKeep(ctx, appName, r.ID)
			}
			sc.event(appName, "sleeping", app.Active, "no requests for %s; stopped %d %s, the next request wakes it",
				idle.Round(time.Second), len(reps), plural(len(reps), "replica", "replicas"))
			return
		}
		var frozen []Replica
		for _, r := range reps {
			if err := sc.engine.Pause(ctx, r.ID); err != nil {
				// Cold then: a stopped replica wakes too, only slower.
				if !errors.Is(err, errors.ErrUnsupported) {
					sc.log.Warn("pause container; stopping it", "app", appName, "id", shortID(r.ID), "err", err)
				}
				sc.stopKeep(ctx, appName, r.ID)
				continue
			}
			frozen = append(frozen, r)
		}
		switch {
		case len(frozen) == len(reps):
			sc.frozen.put(appName, app.Active, frozen)
		case len(frozen) == 0:
			// Nothing could be paused (an engine without pause): cold.
			if err := sc.store.UpdateApp(appName, func(a *store.App) error { a.Warm = false; return nil }); err != nil {
				sc.log.Error("record cold sleep", "app", appName, "err", err)
			}
			sc.event(appName, "sleeping", app.Active, "no requests for %s; stopped %d %s (the engine cannot pause), the next request wakes it",
				idle.Round(time.Second), len(reps), plural(len(reps), "replica", "replicas"))
			return
		}
		sc.event(appName, "sleeping", app.Active, "no requests for %s; paused %d %s (warm, stopped after %s), the next request wakes it",
			idle.Round(time.Second), len(reps), plural(len(reps), "replica", "replicas"), coldAfter(app.Scale))
	})
}
