package deploy

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/plat-paas/plat/store"
)

// autoscale moves the awake app to n replicas, within its bounds.
func (d *Deployer) autoscale(ctx context.Context, appName string, n int, why string) {
	d.withLockedApp(ctx, appName, func(app store.App) {
		s := EffectiveScale(app.Scale)
		n = min(max(n, s.Min, 1), s.Max)
		cur := len(d.routed.get(appName))
		if app.Asleep || n == cur || cur == 0 {
			return
		}
		if err := d.resize(ctx, app, n, io.Discard); err != nil {
			d.event(appName, "autoscale-failed", app.Active, "web=%d → %d: %v", cur, n, err)
			return
		}
		if err := d.store.UpdateApp(appName, func(a *store.App) error { a.Replicas = n; return nil }); err != nil {
			d.log.Error("record replicas", "app", appName, "err", err)
		}
		d.event(appName, "autoscaled", app.Active, "web=%d → %d: %s", cur, n, why)
	})
}

// Autoscale runs the idle timer and the autoscaler until ctx ends: every
// ScaleInterval it reads each awake app's traffic from the router; an app
// with minimum 0 and no request for its idle period is put to sleep; an app
// whose in-flight requests per replica stay above its target for
// ScaleUpDelay gets more replicas (up to its maximum), and one whose load
// would fit in fewer replicas for ScaleDownDelay gets fewer. It returns
// once the sleeps and scalings it started have finished.
func (d *Deployer) Autoscale(ctx context.Context) {
	t := time.NewTicker(d.cfg.ScaleInterval)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			d.scaleTick(ctx, now, &wg)
		}
	}
}

// scaleTick samples every app once; what it decides runs in goroutines of wg.
func (d *Deployer) scaleTick(ctx context.Context, now time.Time, wg *sync.WaitGroup) {
	apps, err := d.store.ListApps()
	if err != nil {
		d.log.Warn("autoscaler: list apps", "err", err)
		return
	}
	for _, app := range apps {
		if app.Active == 0 || app.Asleep {
			d.load.forget(app.Name)
			continue
		}
		st, ok := d.switcher.Stats(app.Name)
		if !ok || st.Backends == 0 {
			continue
		}
		s := EffectiveScale(app.Scale)
		dec := d.load.observe(app.Name, st, now, s, d.cfg)
		switch {
		case dec.sleep:
			wg.Go(func() { d.sleep(ctx, app.Name, dec.idle) })
		case dec.replicas != 0:
			wg.Go(func() {
				defer d.load.done(app.Name)
				d.autoscale(ctx, app.Name, dec.replicas, dec.why)
			})
		}
	}
}
