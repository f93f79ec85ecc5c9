package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

// Reconcile brings the engine and the router in line with the store at
// daemon start-up, after a clean stop or a crash at any point of a deploy:
//   - releases left "deploying" are marked failed (their deploy died with the daemon);
//   - the active release's running container is adopted into the router as it
//     is (not restarted); a stopped one is started; a missing one is recreated;
//   - every other plat container (old, failed, or of a deleted app) is removed.
func (d *Deployer) Reconcile(ctx context.Context) error {
	stale, err := d.store.DeployingReleases()
	if err != nil {
		return fmt.Errorf("list unfinished deploys: %w", err)
	}
	for _, r := range stale {
		d.fail(r, errors.New("interrupted: the plat daemon stopped during this deploy; push again"))
	}
	containers, err := d.engine.List(ctx, d.labels())
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	apps, err := d.store.ListApps()
	if err != nil {
		return fmt.Errorf("list apps: %w", err)
	}
	keep := map[string]bool{}
	for _, app := range apps {
		id, err := d.adopt(ctx, app, containers)
		if err != nil {
			d.log.Error("restore app", "app", app.Name, "err", err)
			d.event(app.Name, "restore-failed", app.Active, "%v", err)
			continue
		}
		keep[id] = true
	}
	for _, c := range containers {
		if !keep[c.ID] {
			d.log.Info("removing leftover container", "name", c.Name, "app", c.Labels[engine.LabelApp])
			d.remove(c.ID)
		}
	}
	return nil
}

// adopt routes app to its active release's container and returns its ID.
func (d *Deployer) adopt(ctx context.Context, app store.App, containers []engine.ContainerInfo) (string, error) {
	if app.Active == 0 {
		_, err := d.switcher.Switch(app.Name, nil)
		return "", err
	}
	rel, err := d.store.GetRelease(app.Name, app.Active)
	if err != nil {
		return "", fmt.Errorf("active release v%d: %w", app.Active, err)
	}
	var found *engine.ContainerInfo
	for i, c := range containers {
		if c.Labels[engine.LabelApp] == app.Name && c.Labels[engine.LabelRelease] == strconv.Itoa(rel.Version) {
			found = &containers[i]
			break
		}
	}
	var info engine.ContainerInfo
	switch {
	case found != nil && found.Running && found.HostAddr != "":
		info = *found
		d.log.Info("adopted running container", "app", app.Name, "release", rel.Version, "addr", info.HostAddr)
	case found != nil:
		if err := d.engine.Start(ctx, found.ID); err != nil {
			return "", fmt.Errorf("start stopped container of v%d: %w", rel.Version, err)
		}
		if info, err = d.engine.Inspect(ctx, found.ID); err != nil {
			return "", err
		}
		d.event(app.Name, "restarted", rel.Version, "started the stopped container of v%d", rel.Version)
	default:
		info, err = d.recreate(ctx, app, rel)
		if err != nil {
			return "", err
		}
	}
	if _, err := d.switcher.Switch(app.Name, []string{info.HostAddr}); err != nil {
		return info.ID, err
	}
	if d.onSwitch != nil {
		d.onSwitch(app.Name, info.ID) // log followers move to a recreated container too
	}
	if info.ID != rel.ContainerID {
		_ = d.store.UpdateRelease(app.Name, rel.Version, func(r *store.Release) error { r.ContainerID = info.ID; return nil })
	}
	return info.ID, nil
}

// recreate starts a new container for the active release when its own is
// gone (removed by hand, or an engine reset), and waits for it to be healthy.
func (d *Deployer) recreate(ctx context.Context, app store.App, rel store.Release) (engine.ContainerInfo, error) {
	c, err := d.startHealthy(ctx, app, rel, newTimings(), io.Discard)
	if err != nil {
		return c, fmt.Errorf("recreate container of v%d: %w", rel.Version, err)
	}
	d.event(app.Name, "recreated", rel.Version, "the container of v%d was missing and was recreated", rel.Version)
	return c, nil
}
