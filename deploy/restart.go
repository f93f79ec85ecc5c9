package deploy

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/plat-paas/plat/store"
)

// Restart replaces every replica of app with a new container of the same
// release, blue-green as a deploy does but with no new release: the new
// containers start beside the old ones under the same names (the old ones
// are renamed aside), are health-checked, get the traffic, and the old ones
// are drained, stopped and removed. A sleeping app's stopped containers are
// removed instead: the next request starts new ones. It is an event.
func (d *Deployer) Restart(ctx context.Context, appName string, out io.Writer) error {
	app, l, err := d.lockApp(ctx, appName, true, out)
	if err != nil {
		return err
	}
	defer l.Release()
	ctx = l.Context()
	if app.Active == 0 {
		return fmt.Errorf("%w: %s has never been deployed, so there is nothing to restart; push it first (git push platform main)", ErrNotDeployed, appName)
	}
	l.describe(fmt.Sprintf("restart of v%d", app.Active))
	rel, err := d.store.GetRelease(appName, app.Active)
	if err != nil {
		return fmt.Errorf("active release: %w", err)
	}
	if app.Asleep {
		return d.restartAsleep(ctx, app, out)
	}
	started := time.Now()
	old := d.routed.get(appName)
	indexes := make([]int, 0, len(old))
	for _, r := range old {
		indexes = append(indexes, r.Index)
	}
	if len(indexes) == 0 {
		for i := range awakeReplicas(app) {
			indexes = append(indexes, i+1)
		}
	}
	step(out, "Restarting %s: %d new %s of v%d", appName, len(indexes), plural(len(indexes), "replica", "replicas"), rel.Version)
	// The new containers take the replicas' names; the old ones keep
	// serving meanwhile under another name.
	token := strconv.FormatInt(time.Now().UnixNano(), 36)
	suffix := ".replaced-" + token
	// The watcher leaves the new containers (of the active release, like
	// the old ones) alone until the switch.
	ctx = context.WithValue(ctx, restartKey{}, token)
	stopPending := d.restarts.add(token)
	defer stopPending()
	renamed := map[string]string{} // ID → original name
	putBack := func() {
		for id, name := range renamed {
			if err := d.engine.Rename(context.WithoutCancel(ctx), id, name); err != nil {
				d.log.Warn("rename container back", "app", appName, "name", name, "err", err)
			}
		}
	}
	for _, r := range old {
		if err := d.engine.Rename(ctx, r.ID, r.Name+suffix); err != nil {
			putBack()
			return fmt.Errorf("rename %s aside: %w", r.Name, err)
		}
		renamed[r.ID] = r.Name
	}
	reps, err := d.startReplicas(ctx, app, rel, indexes, nil, out)
	if err != nil {
		putBack()
		d.event(appName, "restart-failed", rel.Version, "%v", err)
		return fmt.Errorf("restart failed, the old replicas keep serving: %w", err)
	}
	removeNew := func() {
		for _, r := range reps {
			d.remove(r.ID)
		}
		putBack()
	}
	unlock, err := d.locks.lockReplicas(ctx, appName)
	if err != nil {
		removeNew()
		return err
	}
	// The autoscaler or the idle timer may have acted meanwhile: the
	// replicas to replace are the ones routed now.
	if app, err = d.store.GetApp(appName); err != nil || app.Asleep || app.Active != rel.Version {
		unlock()
		removeNew()
		if err != nil {
			return fmt.Errorf("app %s: %w", appName, err)
		}
		return fmt.Errorf("%s changed during the restart (it went to sleep or another release went live); nothing was restarted", appName)
	}
	gone := d.routed.get(appName)
	for _, r := range reps {
		gone = without(gone, r.ID)
	}
	drainOld, err := d.route(appName, reps)
	if err != nil {
		unlock()
		removeNew()
		return fmt.Errorf("switch router: %w", err)
	}
	d.load.touch(appName)
	unlock()
	step(out, "Switched traffic to the new %s", plural(len(reps), "replica", "replicas"))
	d.drain(ctx, drainOld, out)
	for _, r := range gone {
		d.stopAndRemove(context.WithoutCancel(ctx), appName, r.ID)
	}
	took := roundDuration(time.Since(started))
	step(out, "Restarted %s (%s) in %s", appName, replicaNames(reps), took)
	d.event(appName, "restarted", rel.Version, "replaced %d %s with new containers in %s (plat restart)", len(reps), plural(len(reps), "replica", "replicas"), took)
	return nil
}

// restartKey is the context key of a running restart's token, which
// startHealthy puts on the containers as LabelRestart.
type restartKey struct{}

// pendingRestarts holds the tokens of the restarts that have not switched yet.
type pendingRestarts struct {
	mu     sync.Mutex
	tokens map[string]bool
}

func (p *pendingRestarts) add(token string) (done func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tokens == nil {
		p.tokens = map[string]bool{}
	}
	p.tokens[token] = true
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.tokens, token)
	}
}

func (p *pendingRestarts) has(token string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokens[token]
}

// restartAsleep removes the stopped containers of a sleeping app's active
// release: the wake that the next request brings creates new ones.
func (d *Deployer) restartAsleep(ctx context.Context, app store.App, out io.Writer) error {
	unlock, err := d.locks.lockReplicas(ctx, app.Name)
	if err != nil {
		return err
	}
	defer unlock()
	if a, err := d.store.GetApp(app.Name); err != nil || !a.Asleep {
		return fmt.Errorf("%s woke during the restart; run plat restart again", app.Name)
	}
	d.frozen.forget(app.Name)
	cs, err := d.releaseContainers(ctx, app.Name, app.Active)
	if err != nil {
		return err
	}
	for _, c := range cs {
		d.stopPaused(ctx, app.Name, c)
		d.remove(c.ID)
	}
	if err := d.store.UpdateApp(app.Name, func(a *store.App) error { a.Warm = false; return nil }); err != nil {
		d.log.Error("record cold sleep", "app", app.Name, "err", err)
	}
	step(out, "%s sleeps: its stopped containers were removed, the next request starts new ones", app.Name)
	d.event(app.Name, "restarted", app.Active, "removed %d stopped %s of the sleeping app; the next request starts new ones (plat restart)", len(cs), plural(len(cs), "container", "containers"))
	return nil
}
