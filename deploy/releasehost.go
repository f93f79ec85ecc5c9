package deploy

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// PreviewSwitcher routes the preview host of one release of an app
// (vN.APP.<domain>), apart from the app's production route: its own router
// route, with its own backends, so production traffic and the preview host
// never mix. A Switcher without it serves no previews.
type PreviewSwitcher interface {
	// SwitchPreview points release's preview host at addrs; asleep with no
	// addrs routes it to wake the release on the next request.
	SwitchPreview(app string, release int, addrs []string, asleep bool) (drainOld func(context.Context) error, err error)
	// RemovePreview takes release's preview host out of the router.
	RemovePreview(app string, release int) (drainOld func(context.Context) error)
	// PreviewStats reports the preview host's traffic (the idle timer).
	PreviewStats(app string, release int) (TrafficStats, bool)
	// PreviewURL is where users reach release's preview host.
	PreviewURL(app string, release int) string
}

// previewDrainTimeout bounds the wait for requests on a preview backend
// that left: nobody waits on it, it only closes idle connections.
const previewDrainTimeout = 10 * time.Second

// previews remembers which releases of each app have a preview route, so
// the ones that stop serving are taken out.
type previews struct {
	mu sync.Mutex
	// live maps app → the releases whose preview follows the production
	// route (the active release, and during a rolling deploy the new one).
	live map[string][]int
}

func (rs *replicaSet) previewSwitcher() (PreviewSwitcher, bool) {
	ps, ok := rs.switcher.(PreviewSwitcher)
	return ps, ok
}

// PreviewURL is where release of app answers on its own (empty when the
// switcher serves no previews).
func (rs *replicaSet) PreviewURL(app string, release int) string {
	if ps, ok := rs.previewSwitcher(); ok {
		return ps.PreviewURL(app, release)
	}
	return ""
}

// retirePreview waits in the background for a preview's old backends.
func retirePreview(drainOld func(context.Context) error) {
	if drainOld == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), previewDrainTimeout)
		defer cancel()
		_ = drainOld(ctx)
	}()
}

// syncLivePreviews makes the preview hosts of the releases the production
// route serves follow it: each release in reps answers at its own host with
// its own replicas; asleep (no reps) routes the preview of active to wake
// the app. Previews of releases that left production are removed, except
// the staged one's, which the staged set owns.
func (rs *replicaSet) syncLivePreviews(app string, reps []Replica, asleepActive int) {
	ps, ok := rs.previewSwitcher()
	if !ok {
		return
	}
	byRelease := map[int][]string{}
	for _, r := range reps {
		byRelease[r.Release] = append(byRelease[r.Release], r.Addr)
	}
	var now []int
	for v, addrs := range byRelease {
		now = append(now, v)
		drain, err := ps.SwitchPreview(app, v, addrs, false)
		if err != nil {
			rs.log.Warn("route preview", "app", app, "release", v, "err", err)
			continue
		}
		retirePreview(drain)
	}
	if len(reps) == 0 && asleepActive > 0 {
		now = append(now, asleepActive)
		drain, err := ps.SwitchPreview(app, asleepActive, nil, true)
		if err != nil {
			rs.log.Warn("route preview", "app", app, "release", asleepActive, "err", err)
		}
		retirePreview(drain)
	}
	rs.previews.mu.Lock()
	if rs.previews.live == nil {
		rs.previews.live = map[string][]int{}
	}
	old := rs.previews.live[app]
	rs.previews.live[app] = now
	rs.previews.mu.Unlock()
	staged, _, _ := rs.staged.get(app)
	for _, v := range old {
		if !slices.Contains(now, v) && v != staged {
			retirePreview(ps.RemovePreview(app, v))
		}
	}
}

// removePreviews takes every preview host of app out of the router (the
// app is destroyed).
func (rs *replicaSet) removePreviews(app string) {
	ps, ok := rs.previewSwitcher()
	if !ok {
		return
	}
	rs.previews.mu.Lock()
	old := rs.previews.live[app]
	delete(rs.previews.live, app)
	rs.previews.mu.Unlock()
	if v, _, _ := rs.staged.get(app); v != 0 {
		old = append(old, v)
	}
	rs.staged.forget(app)
	for _, v := range old {
		retirePreview(ps.RemovePreview(app, v))
	}
}

// previewHostError explains a failure to route a preview host.
func previewHostError(app string, release int, err error) error {
	return fmt.Errorf("route the preview host of %s v%d: %w", app, release, err)
}
