package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

// A staged release (an app in manual release mode) is built, started and
// health-checked like any release, then stops short of production: it
// answers only at its preview host until `plat promote` ships it with the
// app's strategy. It runs stagedReplicas replicas, sleeps when its preview
// host is idle for the app's idle period, and wakes on its next request.
// Its release command runs at the promotion, when it goes live.

// stagedReplicas is how many replicas a staged release runs: it serves
// only its testers; the promotion starts the rest.
const stagedReplicas = 1

// ErrNotStaged: the release asked for is not the app's staged release; it
// wraps ErrNoRelease.
var ErrNotStaged = fmt.Errorf("%w: not staged", ErrNoRelease)

// stagedRelease is the one staged release of an app, in memory.
type stagedRelease struct {
	release int
	reps    []Replica // none while it sleeps
	// requests and active are the idle timer's: the preview's request
	// count at the last sample, and when it last changed.
	requests uint64
	active   time.Time
}

// stagedSet remembers each app's staged release. Changes happen under the
// app's replica lock; mu guards the map for readers.
type stagedSet struct {
	mu   sync.Mutex
	apps map[string]*stagedRelease
}

// get returns app's staged release and its running replicas (none while it
// sleeps); release 0 when none is staged.
func (s *stagedSet) get(app string) (release int, reps []Replica, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.apps[app]
	if !ok {
		return 0, nil, false
	}
	return st.release, slices.Clone(st.reps), true
}

func (s *stagedSet) set(app string, release int, reps []Replica) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apps == nil {
		s.apps = map[string]*stagedRelease{}
	}
	s.apps[app] = &stagedRelease{release: release, reps: slices.Clone(reps), active: time.Now()}
}

func (s *stagedSet) forget(app string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.apps, app)
}

// idle records the preview's request count and reports how long it has
// been idle, for the staged release it still is.
func (s *stagedSet) idle(app string, release int, st TrafficStats, now time.Time) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sr, ok := s.apps[app]
	if !ok || sr.release != release || len(sr.reps) == 0 {
		return 0, false
	}
	if st.Requests != sr.requests || st.InFlight > 0 {
		sr.requests, sr.active = st.Requests, now
	}
	return now.Sub(sr.active), true
}

// StagedReplicas returns app's staged release and the addresses
// ("host:port") of its running replicas: what a shadow mirrors requests
// to. ok is false when no release is staged or it sleeps (a request to
// its preview host wakes it).
func (rs *replicaSet) StagedReplicas(app string) (release int, addrs []string, ok bool) {
	v, reps, found := rs.staged.get(app)
	if !found || len(reps) == 0 {
		return v, nil, false
	}
	for _, r := range reps {
		addrs = append(addrs, r.Addr)
	}
	return v, addrs, true
}

// stage starts rel (built; its config recorded) as app's staged release,
// under the app's release lock: one healthy replica routed at its preview
// host, the production route untouched. The release staged before it is
// stopped once rel is healthy; on failure rel is marked failed and the
// older one stays.
func (rl *Releases) stage(ctx context.Context, app store.App, rel store.Release, tm *timings, out io.Writer) (store.Release, error) {
	reps, err := rl.startReplicas(ctx, app, rel, replicaIndexes(stagedReplicas), tm, out)
	if err != nil {
		return rl.fail(ctx, rel, "the start and health check", err)
	}
	unlock, err := rl.locks.lockReplicas(ctx, app.Name)
	if err != nil {
		rl.removeReplicas(reps)
		return rl.fail(ctx, rel, "the switch", err)
	}
	if ps, ok := rl.previewSwitcher(); ok {
		drain, err := ps.SwitchPreview(app.Name, rel.Version, replicaAddrs(reps), false)
		if err != nil {
			unlock()
			rl.removeReplicas(reps)
			return rl.fail(ctx, rel, "the switch", previewHostError(app.Name, rel.Version, err))
		}
		retirePreview(drain)
	}
	rl.staged.set(app.Name, rel.Version, reps)
	err = rl.store.UpdateRelease(app.Name, rel.Version, func(r *store.Release) error {
		r.Status, r.ContainerID = store.StatusStaged, reps[0].ID
		return nil
	})
	unlock()
	if err != nil {
		rl.removeStaged(ctx, app.Name, rel.Version)
		return rl.fail(ctx, rel, "", fmt.Errorf("record staged release: %w", err))
	}
	tm.mark("stage")
	rel.Status, rel.ContainerID = store.StatusStaged, reps[0].ID

	// At most one staged release per app: the older one goes now that
	// this one answers.
	releases, err := rl.store.ListReleases(app.Name)
	if err != nil {
		rl.log.Warn("list releases", "app", app.Name, "err", err)
	}
	for _, r := range releases {
		if r.Status == store.StatusStaged && r.Version != rel.Version {
			rl.unstage(ctx, app.Name, r.Version, fmt.Sprintf("replaced by v%d", rel.Version))
			step(out, "Stopped v%d, staged before", r.Version)
		}
	}
	rl.pruneImages(context.WithoutCancel(ctx), app.Name)
	url := rl.PreviewURL(app.Name, rel.Version)
	rl.event(app.Name, "staged", rel.Version, "serves only its preview host %s; production stays on v%d", url, app.Active)
	step(out, "Timings: %s", tm)
	step(out, "Staged v%d (release mode manual); production stays on %s", rel.Version, versionOrNone(app.Active))
	return rel, nil
}

func (rs *replicaSet) removeReplicas(reps []Replica) {
	for _, r := range reps {
		rs.remove(r.ID)
	}
}

func replicaAddrs(reps []Replica) []string {
	addrs := make([]string, len(reps))
	for i, r := range reps {
		addrs[i] = r.Addr
	}
	return addrs
}

// removeStaged takes release's preview host out of the router and removes
// its containers, without recording anything.
func (rl *Releases) removeStaged(ctx context.Context, app string, release int) {
	if v, _, ok := rl.staged.get(app); ok && v == release {
		rl.staged.forget(app)
	}
	if ps, ok := rl.previewSwitcher(); ok {
		retirePreview(ps.RemovePreview(app, release))
	}
	cs, err := rl.releaseContainers(context.WithoutCancel(ctx), app, release)
	if err != nil {
		rl.log.Warn("list staged containers", "app", app, "release", release, "err", err)
		return
	}
	for _, c := range cs {
		if c.Running {
			rl.stopAndRemove(context.WithoutCancel(ctx), app, c.ID)
		} else {
			rl.remove(c.ID)
		}
	}
}

// unstage stops the staged release of app and records it unstaged.
func (rl *Releases) unstage(ctx context.Context, app string, release int, why string) {
	if unlock, err := rl.locks.lockReplicas(context.WithoutCancel(ctx), app); err == nil {
		rl.removeStaged(ctx, app, release)
		unlock()
	}
	if err := rl.store.UpdateRelease(app, release, func(r *store.Release) error {
		r.Status, r.Reason, r.FinishedAt = store.StatusUnstaged, why, time.Now()
		return nil
	}); err != nil {
		rl.log.Error("record unstaged release", "app", app, "release", release, "err", err)
	}
	rl.event(app, "unstaged", release, "%s; its containers are stopped", why)
}

// stagedTarget returns release version of app if it is staged, or an error
// that says why it cannot be promoted or unstaged.
func (rl *Releases) stagedTarget(app store.App, version int) (store.Release, error) {
	if version <= 0 {
		return store.Release{}, fmt.Errorf("%w: give a release number like v8; see `plat releases %s`", ErrUnknownRelease, app.Name)
	}
	rel, err := rl.store.GetRelease(app.Name, version)
	if errors.Is(err, store.ErrNotFound) {
		return store.Release{}, fmt.Errorf("%w: %s has no release v%d; see `plat releases %s`", ErrUnknownRelease, app.Name, version, app.Name)
	}
	if err != nil {
		return store.Release{}, err
	}
	switch rel.Status {
	case store.StatusStaged:
		return rel, nil
	case store.StatusActive:
		return rel, fmt.Errorf("%w: v%d is already the active release of %s", ErrNotStaged, version, app.Name)
	case store.StatusSuperseded:
		return rel, fmt.Errorf("%w: v%d was live before and is not staged; to bring it back: plat rollback %s v%d", ErrNotStaged, version, app.Name, version)
	case store.StatusFailed:
		return rel, fmt.Errorf("%w: v%d failed (%s); push again to stage a new release", ErrNotStaged, version, rel.Reason)
	case store.StatusUnstaged:
		return rel, fmt.Errorf("%w: v%d was unstaged (%s); push again to stage a new release", ErrNotStaged, version, rel.Reason)
	}
	return rel, fmt.Errorf("%w: v%d is %s, not staged; wait for its deploy to finish", ErrNotStaged, version, rel.Status)
}

// CheckPromote says, without the app's lock, whether version of appName is
// staged, so the API can refuse a promotion before it streams.
func (rl *Releases) CheckPromote(appName string, version int) error {
	app, err := rl.store.GetApp(appName)
	if err != nil {
		return fmt.Errorf("app %s: %w", appName, err)
	}
	_, err = rl.stagedTarget(app, version)
	return err
}

// Promote releases the staged version of appName through the app's
// strategy: its release command runs, then the strategy ships it. Blue-green
// takes the staged replicas as they run (starting only the rest); the
// other strategies stop them and start their own. A failure marks the
// release failed and leaves production as it was.
func (rl *Releases) Promote(ctx context.Context, appName string, version int, out io.Writer) (store.Release, error) {
	app, l, err := rl.lockApp(ctx, appName, true, out)
	if err != nil {
		return store.Release{}, err
	}
	defer l.Release()
	ctx = l.Context()
	rel, err := rl.stagedTarget(app, version)
	if err != nil {
		return store.Release{}, err
	}
	l.describe(fmt.Sprintf("v%d (promotion)", rel.Version))
	out, done := rl.progress.track(appName, rel.Version, out)
	defer done()

	s := strategyFor(app)
	unlock, err := rl.locks.lockReplicas(ctx, appName)
	if err != nil {
		return store.Release{}, err
	}
	_, reps, _ := rl.staged.get(appName)
	if _, ok := s.(blueGreen); !ok {
		reps = nil
	}
	rl.staged.forget(appName)
	// Deploying again, not yet live: FinishedAt becomes the time it goes
	// live (DORA counts the promotion, not the staging).
	err = rl.store.UpdateRelease(appName, rel.Version, func(r *store.Release) error {
		r.Status, r.FinishedAt = store.StatusDeploying, time.Time{}
		return nil
	})
	if err == nil {
		// The containers the strategy does not take would clash with the
		// names of those it starts.
		rl.removeOtherStaged(ctx, appName, rel.Version, reps)
	}
	unlock()
	if err != nil {
		return store.Release{}, fmt.Errorf("record promotion: %w", err)
	}
	rel.Status, rel.FinishedAt = store.StatusDeploying, time.Time{}
	rl.event(appName, "started", rel.Version, "promotion of the staged v%d (%s)", rel.Version, s.Name())
	if len(reps) > 0 {
		step(out, "Promoting %s v%d with %s, from its running staged replica", appName, rel.Version, s.Name())
	} else {
		step(out, "Promoting %s v%d with %s", appName, rel.Version, s.Name())
	}
	got, err := rl.runStaged(ctx, s, app, rel, reps, newTimings(), out)
	if err != nil && got.Status != store.StatusActive {
		if ps, ok := rl.previewSwitcher(); ok && app.Active != rel.Version {
			retirePreview(ps.RemovePreview(appName, rel.Version))
		}
	}
	return got, err
}

// removeOtherStaged removes the containers of release except keep.
func (rl *Releases) removeOtherStaged(ctx context.Context, app string, release int, keep []Replica) {
	cs, err := rl.releaseContainers(context.WithoutCancel(ctx), app, release)
	if err != nil {
		rl.log.Warn("list staged containers", "app", app, "release", release, "err", err)
		return
	}
	for _, c := range cs {
		if _, kept := replicaOf(keep, c.ID); !kept {
			rl.stopAndRemove(context.WithoutCancel(ctx), app, c.ID)
		}
	}
}

// Unstage stops the staged version of appName and records it unstaged.
func (rl *Releases) Unstage(ctx context.Context, appName string, version int, out io.Writer) (store.Release, error) {
	app, l, err := rl.lockApp(ctx, appName, false, out)
	if err != nil {
		return store.Release{}, err
	}
	defer l.Release()
	rel, err := rl.stagedTarget(app, version)
	if err != nil {
		return store.Release{}, err
	}
	rl.unstage(l.Context(), appName, version, "unstaged by request")
	step(out, "Stopped the staged v%d of %s", version, appName)
	return rl.store.GetRelease(appName, rel.Version)
}

// WakePreview wakes what the preview host of release serves: the staged
// release itself, or the whole app when release is its active one. The
// router calls it, once at a time per preview host.
func (sc *Scaler) WakePreview(ctx context.Context, appName string, release int) error {
	if v, _, ok := sc.staged.get(appName); !ok || v != release {
		return sc.Wake(ctx, appName)
	}
	unlock, err := sc.locks.lockReplicas(ctx, appName)
	if err != nil {
		return err
	}
	defer unlock()
	v, reps, ok := sc.staged.get(appName)
	if !ok || v != release {
		return fmt.Errorf("%w: v%d of %s is no longer staged", ErrNoRelease, release, appName)
	}
	if len(reps) > 0 {
		return nil // an earlier wake was first
	}
	app, err := sc.store.GetApp(appName)
	if err != nil {
		return fmt.Errorf("app %s: %w", appName, err)
	}
	rel, err := sc.store.GetRelease(appName, release)
	if err != nil {
		return fmt.Errorf("staged release: %w", err)
	}
	byIndex, err := sc.releaseContainers(ctx, appName, release)
	if err != nil {
		return err
	}
	started := time.Now()
	for idx := 1; idx <= stagedReplicas; idx++ {
		c, found := byIndex[idx]
		r, _, _, _, err := sc.bringUp(ctx, app, rel, idx, c, found)
		if err != nil {
			for _, r := range reps {
				sc.stopKeep(context.WithoutCancel(ctx), appName, r.ID)
			}
			sc.event(appName, "wake-failed", release, "staged v%d: %v", release, err)
			return fmt.Errorf("wake staged v%d: %w", release, err)
		}
		reps = append(reps, r)
	}
	if ps, ok := sc.previewSwitcher(); ok {
		drain, err := ps.SwitchPreview(appName, release, replicaAddrs(reps), false)
		if err != nil {
			return previewHostError(appName, release, err)
		}
		retirePreview(drain)
	}
	sc.staged.set(appName, release, reps)
	sc.event(appName, "woke", release, "staged v%d serving its preview host after %s", release, roundDuration(time.Since(started)))
	return nil
}

// stagedTick puts app's staged release to sleep once its preview host was
// idle for the app's idle period.
func (sc *Scaler) stagedTick(ctx context.Context, app store.App, now time.Time, wg *sync.WaitGroup) {
	v, _, ok := sc.staged.get(app.Name)
	ps, canPreview := sc.previewSwitcher()
	if !ok || !canPreview {
		return
	}
	st, ok := ps.PreviewStats(app.Name, v)
	if !ok {
		return
	}
	idle, ok := sc.staged.idle(app.Name, v, st, now)
	if limit := EffectiveScale(app.Scale).Idle; ok && idle >= limit {
		wg.Go(func() { sc.sleepStaged(ctx, app.Name, v, idle) })
	}
}

// sleepStaged stops the staged release's replicas (keeping the containers)
// and routes its preview host to wake it.
func (sc *Scaler) sleepStaged(ctx context.Context, appName string, release int, idle time.Duration) {
	unlock, err := sc.locks.lockReplicas(ctx, appName)
	if err != nil {
		return
	}
	defer unlock()
	v, reps, ok := sc.staged.get(appName)
	ps, canPreview := sc.previewSwitcher()
	if !ok || v != release || len(reps) == 0 || !canPreview {
		return
	}
	drain, err := ps.SwitchPreview(appName, release, nil, true)
	if err != nil {
		sc.log.Error("route sleeping staged release", "app", appName, "release", release, "err", err)
		return
	}
	sc.staged.set(appName, release, nil)
	sc.drain(ctx, drain, io.Discard)
	for _, r := range reps {
		sc.stopKeep(ctx, appName, r.ID)
	}
	sc.event(appName, "sleeping", release, "staged v%d had no requests for %s; the next request to its preview host wakes it", release, idle.Round(time.Second))
}

// adoptStaged restores app's staged release at start-up: its running
// replicas are routed at its preview host as they are; when none runs, the
// host wakes it. Older staged releases (a daemon that died between staging
// and stopping the one before) are recorded unstaged. It returns the IDs of
// the containers to keep.
func (sv *Supervisor) adoptStaged(ctx context.Context, app store.App, containers []engine.ContainerInfo) []string {
	releases, err := sv.store.ListReleases(app.Name)
	if err != nil {
		return nil
	}
	var staged []store.Release
	for _, r := range releases {
		if r.Status == store.StatusStaged {
			staged = append(staged, r)
		}
	}
	if len(staged) == 0 {
		return nil
	}
	rel := staged[len(staged)-1]
	for _, old := range staged[:len(staged)-1] {
		_ = sv.store.UpdateRelease(app.Name, old.Version, func(r *store.Release) error {
			r.Status, r.Reason, r.FinishedAt = store.StatusUnstaged, fmt.Sprintf("replaced by v%d", rel.Version), time.Now()
			return nil
		})
	}
	var ids []string
	var reps []Replica
	for idx, c := range byReplica(containers, app.Name, rel) {
		ids = append(ids, c.ID)
		if c.Running && c.HostAddr != "" && idx <= stagedReplicas {
			reps = append(reps, sv.replica(app.Name, rel.Version, idx, c))
		}
	}
	if len(reps) < stagedReplicas {
		// Asleep, or its containers stopped with the host: a request to
		// its preview host starts them again.
		for _, r := range reps {
			sv.stopKeep(ctx, app.Name, r.ID)
		}
		reps = nil
	}
	if ps, ok := sv.previewSwitcher(); ok {
		if _, err := ps.SwitchPreview(app.Name, rel.Version, replicaAddrs(reps), len(reps) == 0); err != nil {
			sv.log.Error("route staged release", "app", app.Name, "release", rel.Version, "err", err)
		}
	}
	sv.staged.set(app.Name, rel.Version, reps)
	sv.log.Info("restored staged release", "app", app.Name, "release", rel.Version, "running", len(reps))
	return ids
}

// stagedIDs lists the containers of app's staged release, running or not.
func (rs *replicaSet) stagedIDs(ctx context.Context, app string) []string {
	v := rs.stagedVersion(app)
	if v == 0 {
		return nil
	}
	cs, err := rs.releaseContainers(ctx, app, v)
	if err != nil {
		rs.log.Warn("list staged containers", "app", app, "release", v, "err", err)
		return nil
	}
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

// stagedVersion is app's staged release, 0 if none.
func (rs *replicaSet) stagedVersion(app string) int {
	v, _, _ := rs.staged.get(app)
	return v
}

// previewKey names the router route of release's preview host: "@" cannot
// be in an app name, so it never meets an app's own route.
func PreviewKey(app string, release int) string {
	return app + "@v" + strconv.Itoa(release)
}

// ParsePreviewKey is PreviewKey's inverse; ok is false for an app's own
// route.
func ParsePreviewKey(key string) (app string, release int, ok bool) {
	i := len(key) - 1
	for i >= 0 && key[i] != '@' {
		i--
	}
	if i <= 0 || i+2 > len(key) || key[i+1] != 'v' {
		return "", 0, false
	}
	n, err := strconv.Atoi(key[i+2:])
	if err != nil || n <= 0 {
		return "", 0, false
	}
	return key[:i], n, true
}

func versionOrNone(v int) string {
	if v == 0 {
		return "nothing (no release is live yet)"
	}
	return "v" + strconv.Itoa(v)
}
