package deploy

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/plat-paas/plat/store"
)

// autoscale moves the awake app to n replicas, within its bounds.
func (sc *Scaler) autoscale(ctx context.Context, appName string, n int, why string) {
	sc.withLockedApp(ctx, appName, func(app store.App) {
		s := EffectiveScale(app.Scale)
		n = min(max(n, s.Min, 1), s.Max)
		reps := sc.routed.get(appName)
		cur := len(reps)
		if app.Asleep || n == cur || cur == 0 || midRollout(reps, app.Active) {
			return
		}
		if err := sc.resize(ctx, app, n, io.Discard); err != nil {
			sc.event(appName, "autoscale-failed", app.Active, "web=%d → %d: %v", cur, n, err)
			return
		}
		if err := sc.store.UpdateApp(appName, func(a *store.App) error { a.Replicas = n; return nil }); err != nil {
			sc.log.Error("record replicas", "app", appName, "err", err)
		}
		sc.event(appName, "autoscaled", app.Active, "web=%d → %d: %s", cur, n, why)
	})
}

// Autoscale runs the idle timer and the autoscaler until ctx ends: every
// ScaleInterval it reads each awake app's traffic from the router; an app
// with minimum 0 and no request for its idle period is put to sleep; an app
// whose in-flight requests per replica stay above its target for
// ScaleUpDelay gets more replicas (up to its maximum), and one whose load
// would fit in fewer replicas for ScaleDownDelay gets fewer. It returns
// once the sleeps and scalings it started have finished.
func (sc *Scaler) Autoscale(ctx context.Context) {
	t := time.NewTicker(sc.cfg.ScaleInterval)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			sc.scaleTick(ctx, now, &wg)
		}
	}
}

// scaleTick samples every app once; what it decides runs in goroutines of wg.
func (sc *Scaler) scaleTick(ctx context.Context, now time.Time, wg *sync.WaitGroup) {
	apps, err := sc.store.ListApps()
	if err != nil {
		sc.log.Warn("autoscaler: list apps", "err", err)
		return
	}
	sc.warmTick(ctx, apps, now, wg)
	for _, app := range apps {
		sc.stagedTick(ctx, app, now, wg)
		if app.Active == 0 || app.Asleep {
			sc.load.forget(app.Name)
			continue
		}
		st, ok := sc.switcher.Stats(app.Name)
		if !ok || st.Backends == 0 {
			continue
		}
		s := EffectiveScale(app.Scale)
		dec := sc.load.observe(app.Name, st, now, s, sc.cfg)
		switch {
		case dec.sleep:
			wg.Go(func() { sc.sleep(ctx, app.Name, dec.idle) })
		case dec.replicas != 0:
			wg.Go(func() {
				defer sc.load.done(app.Name)
				sc.autoscale(ctx, app.Name, dec.replicas, dec.why)
			})
		}
	}
}
