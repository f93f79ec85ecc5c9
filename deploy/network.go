package deploy

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

// LegacyNetwork is the one network every app of every instance shared
// before each app got its own (NetworkName). plat never removes it: other
// daemons on the engine may still use it; `docker network rm plat` once
// nothing is attached.
const LegacyNetwork = "plat"

// MigrateNetworks moves apps whose containers are not on their own network
// (deployed by a plat that ran every app on LegacyNetwork) onto it, one app
// at a time under its lock, until done or ctx ends. Start-up adopts such
// containers as they are, so the daemon serves at once; this then replaces
// them blue-green: new replicas of the same release start on the app's
// network, are health-checked, take the traffic, and the old ones are
// drained and removed, so no request fails. A container cannot change
// network in place without its published port changing under the router.
// A sleeping app's stopped containers are removed: its next wake creates
// them on its network.
func (d *Deployer) MigrateNetworks(ctx context.Context) {
	apps, err := d.store.ListApps()
	if err != nil {
		d.log.Error("network migration: list apps", "err", err)
		return
	}
	for _, a := range apps {
		if ctx.Err() != nil {
			return
		}
		if err := d.migrateLocked(ctx, a.Name); err != nil {
			d.log.Error("move app to its own network", "app", a.Name, "err", err)
			d.event(a.Name, "migrate-failed", a.Active, "moving to network %s: %v; the next deploy moves it", NetworkName(d.cfg.Instance, a.Name), err)
		}
	}
}

// migrateLocked migrates app under its release lock (the move is a
// blue-green switch of its own, so no deploy may run beside it) and its
// replica lock.
func (d *Deployer) migrateLocked(ctx context.Context, appName string) error {
	app, l, err := d.lockApp(ctx, appName, false, io.Discard)
	if err != nil {
		return err
	}
	defer l.Release()
	ctx = l.Context()
	unlock, err := d.locks.lockReplicas(ctx, appName)
	if err != nil {
		return err
	}
	defer unlock()
	return d.migrateNetwork(ctx, app)
}

// migrateNetwork replaces app's replicas that are not on its network; the
// caller holds app's lock.
func (d *Deployer) migrateNetwork(ctx context.Context, app store.App) error {
	netName := NetworkName(d.cfg.Instance, app.Name)
	byIndex, err := d.releaseContainers(ctx, app.Name, app.Active)
	if err != nil {
		return err
	}
	elsewhere := map[string]engine.ContainerInfo{}
	for _, c := range byIndex {
		if !slices.Contains(c.Networks, netName) {
			elsewhere[c.ID] = c
		}
	}
	if len(elsewhere) == 0 {
		return nil
	}
	if app.Asleep {
		d.frozen.forget(app.Name)
		for _, c := range elsewhere {
			d.remove(c.ID)
		}
		d.event(app.Name, "migrated", app.Active, "removed %d stopped %s on a shared network; the next wake starts them on %s",
			len(elsewhere), plural(len(elsewhere), "container", "containers"), netName)
		return nil
	}
	rel, err := d.store.GetRelease(app.Name, app.Active)
	if err != nil {
		return fmt.Errorf("active release: %w", err)
	}
	cur := d.routed.get(app.Name)
	var old []Replica
	for _, r := range cur {
		if _, ok := elsewhere[r.ID]; ok {
			old = append(old, r)
		}
	}
	if len(old) == 0 {
		return nil // not serving (crashed): its recovery creates it on netName
	}
	// The new replicas take the names; the old ones keep serving meanwhile.
	renamed := old[:0:0]
	undo := func() {
		for _, r := range renamed {
			if err := d.engine.Rename(context.WithoutCancel(ctx), r.ID, r.Name); err != nil {
				d.log.Warn("rename container back", "app", app.Name, "container", r.Name, "err", err)
			}
		}
	}
	for _, r := range old {
		if err := d.engine.Rename(ctx, r.ID, r.Name+"-"+shortID(r.ID)); err != nil {
			undo()
			return fmt.Errorf("rename %s: %w", r.Name, err)
		}
		renamed = append(renamed, r)
	}
	indexes := make([]int, len(old))
	for i, r := range old {
		indexes[i] = r.Index
	}
	added, err := d.startReplicas(ctx, app, rel, indexes, nil, io.Discard)
	if err != nil {
		undo()
		return err
	}
	next := slices.Clone(cur)
	for _, a := range added {
		i := slices.IndexFunc(next, func(r Replica) bool { return r.Index == a.Index })
		next[i] = a
	}
	drainOld, err := d.route(app.Name, next)
	if err != nil {
		for _, r := range added {
			d.remove(r.ID)
		}
		undo()
		return fmt.Errorf("switch router: %w", err)
	}
	d.drain(ctx, drainOld, io.Discard)
	for _, r := range old {
		d.stopAndRemove(context.WithoutCancel(ctx), app.Name, r.ID)
	}
	d.event(app.Name, "migrated", app.Active, "moved %s from a shared network to %s (new containers, no downtime)", replicaNames(old), netName)
	return nil
}
