package deploy

import (
	"context"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

// Backoff between attempts to reach the engine again after its event
// stream dropped (an engine restart, usually).
const (
	watchMinBackoff = 100 * time.Millisecond
	watchMaxBackoff = 5 * time.Second
	// defaultRestartGrace is how long after a crash the engine's restart
	// policy gets before plat starts the container itself.
	defaultRestartGrace = time.Second
)

// Supervisor keeps the engine and the router in line with the store: at
// start-up (Reconcile) and on every container event (Watch), it adopts,
// restarts, re-routes or replaces replicas.
type Supervisor struct {
	*replicaSet
	*guard
	restarts *pendingRestarts
	// restartGrace is how long after a crash the engine's restart policy
	// gets before plat starts the container itself.
	restartGrace time.Duration
	// wake wakes a sleeping app, the replica lock held (Scaler.wakeLocked).
	wake func(ctx context.Context, app store.App) error
}

// Watch keeps the router in line with the engine while the daemon runs,
// until ctx ends:
//   - when the active release's container starts again (its restart policy
//     after a crash or a kill), the app is re-routed to it: the engine may
//     have published its port at a new host port;
//   - when it dies, a "crashed" event is recorded; if the engine does not
//     restart it (`docker kill` and `docker stop` count as a manual stop,
//     which disables the unless-stopped policy), plat starts it itself: the
//     active release must run;
//   - when it is removed (docker rm -f), a new one is started and routed;
//   - when the engine connection drops, it reconnects with backoff and
//     re-adopts every app's container, so apps are served again after an
//     engine restart without a manual step.
//
// Events are handled in order per app (a start handled before the die that
// came first would leave a healthy replica out of rotation), different apps
// side by side. Watch returns once every handler it started has finished.
func (sv *Supervisor) Watch(ctx context.Context) {
	q := newDispatcher(func(e engine.ContainerEvent) { sv.handleEvent(ctx, e) })
	defer q.wait()
	backoff := watchMinBackoff
	for {
		connected := time.Now()
		err := sv.engine.Events(ctx, sv.labels(), func(e engine.ContainerEvent) {
			q.dispatch(ctx, e.Labels[engine.LabelApp], e)
		})
		if ctx.Err() != nil {
			return
		}
		if time.Since(connected) > watchMaxBackoff {
			backoff = watchMinBackoff
		}
		sv.log.Warn("lost the engine's event stream; reconnecting", "err", err, "backoff", backoff)
		if !sv.waitForEngine(ctx, &backoff) {
			return
		}
		sv.resync(ctx)
	}
}

// waitForEngine pings the engine with growing pauses until it answers
// (true) or ctx ends (false).
func (sv *Supervisor) waitForEngine(ctx context.Context, backoff *time.Duration) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(*backoff):
		}
		*backoff = min(*backoff*2, watchMaxBackoff)
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := sv.engine.Ping(pctx)
		cancel()
		if err == nil {
			sv.log.Info("engine reachable again")
			return true
		}
	}
}

// resync re-adopts every deployed app's active container after the engine
// came back, each under its app's lock so it never races with a deploy.
// Unlike Reconcile it does not fail unfinished deploys: they are alive.
func (sv *Supervisor) resync(ctx context.Context) {
	apps, err := sv.store.ListApps()
	if err != nil {
		sv.log.Error("resync: list apps", "err", err)
		return
	}
	for _, app := range apps {
		if app.Active == 0 {
			continue
		}
		sv.withLockedApp(ctx, app.Name, func(app store.App) {
			containers, err := sv.engine.List(ctx, sv.labels(engine.LabelApp, app.Name))
			if err != nil {
				sv.log.Error("resync: list containers", "app", app.Name, "err", err)
				return
			}
			if ids, err := sv.adopt(ctx, app, containers); err != nil {
				sv.log.Error("resync: restore app", "app", app.Name, "err", err)
				sv.event(app.Name, "restore-failed", app.Active, "after the engine came back: %v", err)
			} else {
				sv.removeUnless(ctx, containers, ids)
			}
		})
	}
}

// handleEvent reacts to a lifecycle event of one of this daemon's containers.
// Only the active release's replicas of an awake app matter: a deploy in
// progress owns its new containers (not active until its switch, which
// takes the replica lock taken here), and a sleeping app's containers were
// stopped by plat.
func (sv *Supervisor) handleEvent(ctx context.Context, e engine.ContainerEvent) {
	appName := e.Labels[engine.LabelApp]
	if appName == "" || sv.restarts.has(e.Labels[engine.LabelRestart]) {
		return // a restart owns its new containers until its switch
	}
	var died *Replica
	defer func() {
		// Outside the lock: the grace is a wait for the engine.
		if died != nil {
			sv.restartIfStopped(ctx, appName, *died)
		}
	}()
	sv.withLockedApp(ctx, appName, func(app store.App) {
		if e.Action == engine.ActionUnpause && sv.unpausedByHand(ctx, app, e.ID) {
			return
		}
		if app.Asleep || !sv.ofActive(app, e.Labels) {
			return
		}
		reps := sv.routed.get(app.Name)
		r, routed := replicaOf(reps, e.ID)
		switch e.Action {
		case engine.ActionPause:
			if routed {
				sv.thawRouted(ctx, app, r)
			}
		case engine.ActionDie:
			if !routed {
				return
			}
			sv.event(app.Name, "crashed", app.Active, "%s exited with code %d", r.Name, e.ExitCode)
			if others := without(reps, e.ID); len(others) > 0 {
				// Out of rotation at once; it comes back when it answers again.
				if _, err := sv.route(app.Name, others); err != nil {
					sv.log.Error("route around a dead replica", "app", app.Name, "err", err)
				}
			}
			died = &r
		case engine.ActionStart:
			sv.reroute(ctx, app, e.ID)
		case engine.ActionDestroy:
			if !routed {
				return
			}
			sv.replace(ctx, app, r)
		}
	})
}

// restartIfStopped starts r's container unless the engine restarts it (or
// did already) within the restart grace, or it is no longer a replica of
// the awake app's active release.
func (sv *Supervisor) restartIfStopped(ctx context.Context, appName string, r Replica) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(sv.restartGrace):
	}
	sv.withLockedApp(ctx, appName, func(app store.App) {
		if app.Asleep || app.Active != r.Release {
			return
		}
		info, err := sv.engine.Inspect(ctx, r.ID)
		if err != nil || info.Running || info.State == "restarting" {
			return
		}
		if err := sv.engine.Start(ctx, r.ID); err != nil {
			sv.log.Error("start stopped container", "app", app.Name, "replica", r.Name, "err", err)
			sv.event(app.Name, "restore-failed", r.Release, "could not start the stopped container %s: %v", r.Name, err)
			return
		}
		sv.event(app.Name, "restarted", r.Release, "%s was stopped outside plat; plat started it again", r.Name)
	})
}

// reroute puts a (re)started replica of the active release back into
// rotation once it answers: the engine may have published its port at a
// new host port.
func (sv *Supervisor) reroute(ctx context.Context, app store.App, id string) {
	reps := sv.routed.get(app.Name)
	info, err := sv.engine.Inspect(ctx, id)
	if r, ok := replicaOf(reps, id); ok && err == nil && info.HostAddr == r.Addr {
		return // the start plat itself made and routed
	}
	if err != nil || !info.Running || info.HostAddr == "" {
		// It died again already; its next start brings us back here.
		sv.log.Warn("restarted container is not serving", "app", app.Name, "id", shortID(id), "err", err)
		return
	}
	rel, err := sv.store.GetRelease(app.Name, app.Active)
	if err != nil {
		return
	}
	r, _, _, err := sv.restart(ctx, app, rel, replicaIndex(info), info)
	if err != nil {
		sv.log.Warn("restarted replica is not healthy", "app", app.Name, "id", shortID(id), "err", err)
		return
	}
	if _, err := sv.route(app.Name, append(without(reps, id), r)); err != nil {
		sv.log.Error("re-route restarted replica", "app", app.Name, "err", err)
		return
	}
	sv.event(app.Name, "restarted", app.Active, "%s runs again; traffic goes to %s", r.Name, r.Addr)
}

// replace starts a new container for a replica that was removed behind
// plat's back (docker rm -f) and routes it.
func (sv *Supervisor) replace(ctx context.Context, app store.App, gone Replica) {
	others := without(sv.routed.get(app.Name), gone.ID)
	if len(others) > 0 {
		if _, err := sv.route(app.Name, others); err != nil {
			sv.log.Error("route around a removed replica", "app", app.Name, "err", err)
		}
	}
	rel, err := sv.store.GetRelease(app.Name, app.Active)
	if err == nil {
		var c engine.ContainerInfo
		c, err = sv.startHealthy(ctx, app, rel, gone.Index, nil, io.Discard)
		if err == nil {
			_, err = sv.route(app.Name, append(others, sv.replica(app.Name, rel.Version, gone.Index, c)))
		}
	}
	if err != nil {
		sv.log.Error("replace removed replica", "app", app.Name, "err", err)
		sv.event(app.Name, "restore-failed", app.Active, "%s was removed and could not be replaced: %v", gone.Name, err)
		return
	}
	sv.event(app.Name, "recreated", app.Active, "%s was missing (removed outside plat) and was recreated", gone.Name)
}

// ofActive says whether a container's labels make it one of app's active
// release (its own, or those a standby rollback reuses).
func (sv *Supervisor) ofActive(app store.App, labels map[string]string) bool {
	if labels[engine.LabelRelease] == strconv.Itoa(app.Active) {
		return true
	}
	rel, err := sv.store.GetRelease(app.Name, app.Active)
	return err == nil && ofRelease(labels, rel)
}

// unpausedByHand handles a container of app thawed outside plat (`docker
// unpause`; plat's own thaws happen under the lock held here and leave
// nothing to do): a warm app's replica wakes the app, as a request would; a
// standby's is paused again, as a standby stays paused. It reports whether
// the event was one of these.
func (sv *Supervisor) unpausedByHand(ctx context.Context, app store.App, id string) bool {
	info, err := sv.engine.Inspect(ctx, id)
	if err != nil || info.Paused || !info.Running {
		return false
	}
	switch {
	case slices.Contains(app.Standby.IDs, id):
		if err := sv.engine.Pause(ctx, id); err != nil {
			sv.log.Warn("pause standby again", "app", app.Name, "id", shortID(id), "err", err)
			return true
		}
		sv.event(app.Name, "standby", app.Standby.Release, "%s was unpaused outside plat; paused again (it stands by)", info.Name)
		return true
	case app.Asleep && app.Warm && sv.ofActive(app, info.Labels):
		sv.event(app.Name, "unpaused", app.Active, "%s was unpaused outside plat; waking the app", info.Name)
		sv.frozen.forget(app.Name)
		if err := sv.wake(ctx, app); err != nil {
			sv.log.Warn("wake after a manual unpause", "app", app.Name, "err", err)
		}
		return true
	}
	return false
}

// thawRouted unpauses a routed replica of the awake app that was paused
// outside plat (`docker pause`): its requests would hang.
func (sv *Supervisor) thawRouted(ctx context.Context, app store.App, r Replica) {
	if err := sv.engine.Unpause(ctx, r.ID); err != nil {
		sv.log.Warn("unpause a replica paused outside plat", "app", app.Name, "replica", r.Name, "err", err)
		return
	}
	sv.event(app.Name, "unpaused", app.Active, "%s was paused outside plat; plat unpaused it (it serves)", r.Name)
}
