package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

// Reconcile brings the engine and the router in line with the store at
// daemon start-up, after a clean stop or a crash at any point of a deploy:
//   - releases left "deploying" are marked failed (their deploy died with
//     the daemon) and their containers removed: the stable release serves
//     alone, whether the deploy was blue-green, rolling (a mix of old and
//     new replicas) or in-place (the old replicas stopped);
//   - the active release's running replicas are adopted into the router as
//     they are (not restarted); stopped ones are started, missing ones
//     recreated; a sleeping app stays asleep, warm (paused) or cold
//     (stopped) as it was;
//   - a standby whose time is not up is kept (paused), else removed;
//   - every other plat container (old, failed, extra, or of a deleted app)
//     is removed.
func (sv *Supervisor) Reconcile(ctx context.Context) error {
	stale, err := sv.store.DeployingReleases()
	if err != nil {
		return fmt.Errorf("list unfinished deploys: %w", err)
	}
	for _, r := range stale {
		why := errors.New("interrupted: the plat daemon stopped during this deploy; push again")
		if step := sv.canaryStep(r); step != "" {
			// The router started empty: the stable release serves alone below.
			why = fmt.Errorf("aborted: the daemon restarted during %s", step)
		}
		sv.fail(context.Background(), r, "", why)
	}
	containers, err := sv.engine.List(ctx, sv.labels())
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	// An interrupted deploy's containers go first: a rolling deploy leaves
	// a mix of old and new replicas, and the stable release's missing
	// ones are recreated below without exceeding the app's replicas.
	containers = sv.removeInterrupted(containers, stale)
	apps, err := sv.store.ListApps()
	if err != nil {
		return fmt.Errorf("list apps: %w", err)
	}
	keep := map[string]bool{}
	for _, app := range apps {
		ids, err := sv.adopt(ctx, app, containers)
		for _, id := range append(ids, sv.adoptStaged(ctx, app, containers)...) {
			keep[id] = true
		}
		if errors.Is(err, errImageMissing) {
			sv.log.Warn("the image of the active release is missing; it will be rebuilt from its git commit", "app", app.Name, "release", app.Active)
			continue
		}
		if err != nil {
			sv.log.Error("restore app", "app", app.Name, "err", err)
			sv.event(app.Name, "restore-failed", app.Active, "%v", err)
		}
	}
	sv.removeUnless(ctx, containers, slices.Collect(maps.Keys(keep)))
	// One-off containers (plat run, a release phase) lost their caller
	// with the daemon: nobody reads their output or waits for them.
	runs, err := sv.engine.List(ctx, map[string]string{engine.LabelRole: engine.RoleRun, engine.LabelInstance: sv.cfg.Instance})
	if err != nil {
		return fmt.Errorf("list one-off containers: %w", err)
	}
	sv.removeUnless(ctx, runs, nil)
	return nil
}

// removeInterrupted removes the containers of the interrupted releases
// and returns the others.
func (sv *Supervisor) removeInterrupted(containers []engine.ContainerInfo, stale []store.Release) []engine.ContainerInfo {
	return slices.DeleteFunc(containers, func(c engine.ContainerInfo) bool {
		for _, r := range stale {
			if c.Labels[engine.LabelApp] == r.App && c.Labels[engine.LabelRelease] == strconv.Itoa(r.Version) {
				sv.log.Info("removing a container of an interrupted deploy", "name", c.Name, "app", r.App, "release", r.Version)
				sv.remove(c.ID)
				return true
			}
		}
		return false
	})
}

// removeUnless removes the containers whose IDs are not in keep.
func (sv *Supervisor) removeUnless(_ context.Context, containers []engine.ContainerInfo, keep []string) {
	for _, c := range containers {
		if !slices.Contains(keep, c.ID) {
			sv.log.Info("removing leftover container", "name", c.Name, "app", c.Labels[engine.LabelApp])
			sv.remove(c.ID)
		}
	}
}

// adopt routes app to the replicas of its active release and returns their
// container IDs. Running replicas are taken as they are (not restarted, so a
// daemon restart costs no request); stopped ones are started and missing
// ones recreated, each healthy before it gets traffic; extra ones are left
// for the caller to remove. A sleeping app keeps its stopped containers and
// is routed to wake on the next request.
func (sv *Supervisor) adopt(ctx context.Context, app store.App, containers []engine.ContainerInfo) ([]string, error) {
	if app.Active == 0 {
		_, err := sv.switcher.Switch(app.Name, nil)
		return nil, err
	}
	rel, err := sv.store.GetRelease(app.Name, app.Active)
	if err != nil {
		return nil, fmt.Errorf("active release v%d: %w", app.Active, err)
	}
	byIndex := byReplica(containers, app.Name, rel)
	if len(byIndex) == 0 {
		// No container means no image either, perhaps: then RebuildMissing
		// builds it again, rather than every replica failing to start here.
		if missing, err := sv.imageMissing(ctx, rel); err == nil && missing {
			_, err := sv.switcher.Switch(app.Name, nil)
			return nil, errors.Join(errImageMissing, err)
		}
	}
	sv.frozen.forget(app.Name) // the engine may have restarted them
	standby := sv.adoptStandby(ctx, app, containers)
	if app.Asleep {
		ids := sv.adoptAsleep(ctx, app, byIndex)
		_, err := sv.routeAsleep(app.Name)
		return append(ids, standby...), err
	}
	n := awakeReplicas(app)
	reps := make([]Replica, 0, n)
	var errs []error
	for idx := 1; idx <= n; idx++ {
		c, found := byIndex[idx]
		if found && c.Paused {
			// Paused outside plat, or by a daemon that died putting the
			// app to sleep: thawed, it serves as it is.
			if err := sv.engine.Unpause(ctx, c.ID); err == nil {
				c.Paused = false
			}
		}
		if found && c.Running && !c.Paused && c.HostAddr != "" {
			// Taken as it is: a daemon restart costs no request.
			reps = append(reps, sv.replica(app.Name, rel.Version, idx, c))
			sv.log.Info("adopted running container", "app", app.Name, "release", rel.Version, "replica", idx, "addr", c.HostAddr)
			continue
		}
		r, _, _, created, err := sv.bringUp(ctx, app, rel, idx, c, found)
		switch {
		case err == nil && created:
			sv.event(app.Name, "recreated", rel.Version, "%s was missing and was recreated", r.Name)
		case err == nil:
			sv.event(app.Name, "restarted", rel.Version, "started the stopped container %s", r.Name)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("replica %d of v%d: %w", idx, rel.Version, err))
			continue
		}
		reps = append(reps, r)
	}
	ids := make([]string, len(reps))
	for i, r := range reps {
		ids[i] = r.ID
	}
	ids = append(ids, standby...)
	if len(reps) == 0 {
		return standby, errors.Join(errs...)
	}
	if _, err := sv.route(app.Name, reps); err != nil {
		return ids, err
	}
	if reps[0].Index == 1 && reps[0].ID != rel.ContainerID {
		_ = sv.store.UpdateRelease(app.Name, rel.Version, func(r *store.Release) error { r.ContainerID = reps[0].ID; return nil })
	}
	return ids, errors.Join(errs...)
}

// adoptAsleep keeps a sleeping app's containers in its sleep stage: a warm
// app's are paused (a running one, which the engine restarted after its
// own restart, is paused again), a cold app's stopped. A warm app none of
// whose containers could be kept paused is cold.
func (sv *Supervisor) adoptAsleep(ctx context.Context, app store.App, byIndex map[int]engine.ContainerInfo) []string {
	var ids []string
	warm := false
	for _, c := range byIndex {
		ids = append(ids, c.ID)
		switch {
		case app.Warm && c.Paused:
			warm = true
		case app.Warm && c.Running:
			if err := sv.engine.Pause(ctx, c.ID); err == nil {
				warm = true
				continue
			}
			sv.stopKeep(ctx, app.Name, c.ID)
		case c.Running:
			sv.stopPaused(ctx, app.Name, c)
		}
	}
	if app.Warm && !warm {
		if err := sv.store.UpdateApp(app.Name, func(a *store.App) error { a.Warm = false; return nil }); err != nil {
			sv.log.Error("record cold sleep", "app", app.Name, "err", err)
		}
	}
	return ids
}

// adoptStandby keeps app's standby while its time lasts and its containers
// are still there (paused again if the engine restarted them), and returns
// their IDs; otherwise it forgets the standby, whose containers the caller
// then removes as leftovers.
func (sv *Supervisor) adoptStandby(ctx context.Context, app store.App, containers []engine.ContainerInfo) []string {
	sb := app.Standby
	if sb.Release == 0 {
		return nil
	}
	ok := time.Now().Before(sb.Until)
	for _, id := range sb.IDs {
		i := slices.IndexFunc(containers, func(c engine.ContainerInfo) bool { return c.ID == id })
		switch {
		case !ok:
		case i < 0 || !containers[i].Running:
			ok = false
		case !containers[i].Paused:
			ok = sv.engine.Pause(ctx, id) == nil
		}
	}
	if ok {
		return sb.IDs
	}
	if err := sv.store.UpdateApp(app.Name, func(a *store.App) error { a.Standby = store.Standby{}; return nil }); err != nil {
		sv.log.Error("record standby dropped", "app", app.Name, "err", err)
	}
	sv.event(app.Name, "standby-dropped", sb.Release, "at start-up: its time was up or its containers were gone")
	return nil
}
