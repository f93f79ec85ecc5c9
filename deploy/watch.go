package deploy

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

// Backoff between attempts to reach the engine again after its event
// stream dropped (an engine restart, usually).
const (
	watchMinBackoff = 100 * time.Millisecond
	watchMaxBackoff = 5 * time.Second
	// restartGrace is how long after a crash the engine's restart policy
	// gets before plat starts the container itself.
	restartGrace = time.Second
)

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
func (d *Deployer) Watch(ctx context.Context) {
	backoff := watchMinBackoff
	for {
		connected := time.Now()
		err := d.engine.Events(ctx, d.labels(), func(e engine.ContainerEvent) {
			go d.handleEvent(ctx, e)
		})
		if ctx.Err() != nil {
			return
		}
		if time.Since(connected) > watchMaxBackoff {
			backoff = watchMinBackoff
		}
		d.log.Warn("lost the engine's event stream; reconnecting", "err", err, "backoff", backoff)
		if !d.waitForEngine(ctx, &backoff) {
			return
		}
		d.resync(ctx)
	}
}

// waitForEngine pings the engine with growing pauses until it answers
// (true) or ctx ends (false).
func (d *Deployer) waitForEngine(ctx context.Context, backoff *time.Duration) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(*backoff):
		}
		*backoff = min(*backoff*2, watchMaxBackoff)
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := d.engine.Ping(pctx)
		cancel()
		if err == nil {
			d.log.Info("engine reachable again")
			return true
		}
	}
}

// resync re-adopts every deployed app's active container after the engine
// came back, each under its app's lock so it never races with a deploy.
// Unlike Reconcile it does not fail unfinished deploys: they are alive.
func (d *Deployer) resync(ctx context.Context) {
	apps, err := d.store.ListApps()
	if err != nil {
		d.log.Error("resync: list apps", "err", err)
		return
	}
	for _, app := range apps {
		if app.Active == 0 {
			continue
		}
		d.withLockedApp(ctx, app.Name, func(app store.App) {
			containers, err := d.engine.List(ctx, d.labels(engine.LabelApp, app.Name))
			if err != nil {
				d.log.Error("resync: list containers", "app", app.Name, "err", err)
				return
			}
			if _, err := d.adopt(ctx, app, containers); err != nil {
				d.log.Error("resync: restore app", "app", app.Name, "err", err)
				d.event(app.Name, "restore-failed", app.Active, "after the engine came back: %v", err)
			}
		})
	}
}

// handleEvent reacts to a lifecycle event of one of this daemon's containers.
// Only the active release's container matters: a deploy in progress owns
// its new container, and holds the lock that is taken here.
func (d *Deployer) handleEvent(ctx context.Context, e engine.ContainerEvent) {
	appName := e.Labels[engine.LabelApp]
	if appName == "" {
		return
	}
	d.withLockedApp(ctx, appName, func(app store.App) {
		rel, err := d.store.GetRelease(app.Name, app.Active)
		if err != nil || rel.ContainerID != e.ID {
			return
		}
		switch e.Action {
		case engine.ActionDie:
			d.event(app.Name, "crashed", rel.Version, "the container of v%d exited with code %d", rel.Version, e.ExitCode)
			d.restartIfStopped(ctx, app.Name, rel)
		case engine.ActionStart:
			d.reroute(ctx, app.Name, rel)
		case engine.ActionDestroy:
			// Removed behind plat's back: adopt recreates it.
			if _, err := d.adopt(ctx, app, nil); err != nil {
				d.log.Error("recreate removed container", "app", app.Name, "err", err)
				d.event(app.Name, "restore-failed", rel.Version, "the container of v%d was removed and could not be recreated: %v", rel.Version, err)
			}
		}
	})
}

// restartIfStopped starts rel's container unless the engine restarts it
// (or did already) within restartGrace.
func (d *Deployer) restartIfStopped(ctx context.Context, app string, rel store.Release) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(restartGrace):
	}
	info, err := d.engine.Inspect(ctx, rel.ContainerID)
	if err != nil || info.Running || info.State == "restarting" {
		return
	}
	if err := d.engine.Start(ctx, rel.ContainerID); err != nil {
		d.log.Error("start stopped container", "app", app, "release", rel.Version, "err", err)
		d.event(app, "restore-failed", rel.Version, "could not start the stopped container of v%d: %v", rel.Version, err)
		return
	}
	d.event(app, "restarted", rel.Version, "the container of v%d was stopped outside plat; plat started it again", rel.Version)
}

// reroute points app at the (re)started container of its active release.
func (d *Deployer) reroute(ctx context.Context, app string, rel store.Release) {
	info, err := d.engine.Inspect(ctx, rel.ContainerID)
	if err != nil || !info.Running || info.HostAddr == "" {
		// It died again already; its next start brings us back here.
		d.log.Warn("restarted container is not serving", "app", app, "release", rel.Version, "err", err)
		return
	}
	if info.StartedAt.Before(rel.FinishedAt) {
		return // the deploy's own start, seen after the deploy routed it
	}
	if _, err := d.switcher.Switch(app, []string{info.HostAddr}); err != nil {
		d.log.Error("re-route restarted container", "app", app, "err", err)
		return
	}
	d.event(app, "restarted", rel.Version, "the container of v%d runs again; traffic goes to %s", rel.Version, info.HostAddr)
}

// withLockedApp runs fn with app's deploy lock held and its fresh record,
// unless the app is gone or was never deployed.
func (d *Deployer) withLockedApp(ctx context.Context, appName string, fn func(store.App)) {
	unlock, err := d.locks.lock(ctx, appName, io.Discard)
	if err != nil {
		return
	}
	defer unlock()
	app, err := d.store.GetApp(appName)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			d.log.Warn("read app", "app", appName, "err", err)
		}
		return
	}
	if app.Active == 0 {
		return
	}
	fn(app)
}
