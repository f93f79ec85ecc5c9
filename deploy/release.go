package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/plat-paas/plat/builder"
	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

// Releases makes an app's releases: from a push, a config or resource
// change, or a rollback. It records each one, runs its release command and
// ships it with the app's strategy, and keeps the images of the last ones.
type Releases struct {
	*replicaSet
	*guard
	builder  *builder.Builder
	oneOffs  *oneOffs
	progress *progressLogs
	load     *appLoads
	// live are the rollouts in progress (canary), for status, promote and abort.
	live liveRollouts
}

// PushRequest is one pushed commit to build and deploy.
type PushRequest struct {
	App    string
	GitSHA string
	// CommittedAt is the commit time of GitSHA (zero: unknown).
	CommittedAt time.Time
	Source      io.Reader // tar of the commit (git archive)
	// Lease is the ID of the git push's lease (NewLease): the deploy runs
	// under it, and the lease keeps the release lock until git recorded
	// the branch update.
	Lease string
	// Check, if set, runs once the release lock is held, before anything
	// starts: the git endpoint refuses a push whose branch moved while it
	// was built.
	Check func() error
}

// Push builds req into a new release and deploys it under the git push's
// lease. The build runs without any lock: other deploys, wakes and crash
// recovery of the app go on meanwhile. Then the release lock is taken for
// start, health check and switch; Push leaves it to the lease's owner.
func (rl *Releases) Push(ctx context.Context, req PushRequest, out io.Writer) (store.Release, error) {
	l, err := rl.lease(req.Lease, req.App)
	if err != nil {
		return store.Release{}, err
	}
	stopUse, err := l.use()
	if err != nil {
		return store.Release{}, ErrNoLease
	}
	defer stopUse()
	ctx, cancel := l.bind(ctx)
	defer cancel(nil)
	app, err := rl.store.GetApp(req.App)
	if err != nil {
		return store.Release{}, fmt.Errorf("app %s: %w", req.App, err)
	}
	rel, err := rl.store.CreateRelease(store.Release{
		App: app.Name, Cause: store.CausePush, Status: store.StatusDeploying,
		GitSHA: req.GitSHA, CommittedAt: req.CommittedAt, Env: app.Env, Resources: app.Resources,
	})
	if err != nil {
		return store.Release{}, fmt.Errorf("create release: %w", err)
	}
	l.describe(fmt.Sprintf("v%d (push of %s)", rel.Version, short(req.GitSHA)))
	out, done := rl.progress.track(app.Name, rel.Version, out)
	defer done()
	rl.event(app.Name, "started", rel.Version, "push of %s", short(req.GitSHA))
	step(out, "Building %s v%d from %s", app.Name, rel.Version, short(req.GitSHA))

	var buildLog bytes.Buffer
	started := time.Now()
	tm := newTimings()
	built, err := rl.builder.BuildRelease(ctx, builder.Request{
		App: app.Name, Version: rel.Version, GitSHA: req.GitSHA, Source: req.Source, Instance: rl.cfg.Instance,
		BaseImages: rl.cfg.BaseImages, BuildArgs: app.Build.Args, Secrets: app.Build.Secrets, Target: app.Build.Target,
		OnGenerate: rl.generated(rel, io.MultiWriter(out, &buildLog)),
	}, io.MultiWriter(indent(out), &buildLog))
	imageID := built.ImageID
	if logErr := rl.store.SetBuildLog(app.Name, rel.Version, buildLog.Bytes()); logErr != nil {
		rl.log.Warn("saving build log", "app", app.Name, "release", rel.Version, "err", logErr)
	}
	if err != nil {
		return rl.fail(ctx, rel, "the build", fmt.Errorf("build failed: %w", err))
	}
	step(out, "Built image %s in %s", shortID(imageID), time.Since(started).Round(time.Millisecond))
	rl.event(app.Name, "built", rel.Version, "image %s", shortID(imageID))
	if err := rl.store.UpdateRelease(app.Name, rel.Version, func(r *store.Release) error {
		r.ImageID, r.Procfile = imageID, built.Procfile
		return nil
	}); err != nil {
		return rl.fail(ctx, rel, "the build", fmt.Errorf("record image: %w", err))
	}
	rel.ImageID, rel.Procfile = imageID, built.Procfile
	tm.mark("build")

	if err := l.Lock(ctx, out); err != nil {
		return rl.fail(ctx, rel, "the wait for another deploy", err)
	}
	if req.Check != nil {
		if err := req.Check(); err != nil {
			return rl.fail(ctx, rel, "", err)
		}
	}
	// The config may have changed during the build: the release runs with
	// the app's config as it is now.
	if app, err = rl.store.GetApp(req.App); err != nil {
		return rl.fail(ctx, rel, "", fmt.Errorf("app %s: %w", req.App, err))
	}
	if !maps.Equal(app.Env, rel.Env) {
		if err := rl.store.UpdateRelease(app.Name, rel.Version, func(r *store.Release) error { r.Env = app.Env; return nil }); err != nil {
			return rl.fail(ctx, rel, "", fmt.Errorf("record config: %w", err))
		}
		rel.Env = app.Env
	}
	if app.Manual() {
		return rl.stage(ctx, app, rel, tm, out)
	}
	return rl.run(ctx, strategyFor(app), app, rel, tm, out)
}

// ConfigChange sets and unsets config vars.
type ConfigChange struct {
	Set   map[string]string
	Unset []string
}

// SetConfig applies a config change as a new release (same image, new env)
// with the app's strategy. If the app was never deployed the config is
// only saved, for the first push, and the returned release is zero.
func (rl *Releases) SetConfig(ctx context.Context, appName string, change ConfigChange, out io.Writer) (store.Release, error) {
	app, l, err := rl.lockApp(ctx, appName, true, out)
	if err != nil {
		return store.Release{}, err
	}
	defer l.Release()
	ctx = l.Context()
	env, err := ValidateConfigChange(app.Env, change)
	if err != nil {
		return store.Release{}, err
	}
	if app.Active == 0 {
		err := rl.store.UpdateApp(appName, func(a *store.App) error { a.Env = env; return nil })
		step(out, "Config saved; it takes effect with the first push")
		return store.Release{}, err
	}
	if app.Manual() {
		// The next release's config: the staged one shows it, a later
		// push keeps it.
		if err := rl.store.UpdateApp(appName, func(a *store.App) error { a.Env = env; return nil }); err != nil {
			return store.Release{}, fmt.Errorf("save config: %w", err)
		}
	}
	return rl.redeploy(ctx, l, app, releaseChange{
		cause: store.CauseConfig, env: env, resources: app.Resources,
		kind: "config change", reason: describeChange(change), reused: "image",
	}, out)
}

// releaseChange is a new release that reuses the active release's image
// (and Procfile) with other config or limits.
type releaseChange struct {
	cause     store.Cause
	env       map[string]string
	resources store.Resources
	kind      string // names the change in progress lines and events ("config change")
	reason    string
	reused    string // what the progress line says is kept ("image")
}

// redeploy records change as a new release of app, the caller holding its
// lease l, and deploys it with the app's strategy, without a rebuild.
func (rl *Releases) redeploy(ctx context.Context, l *Lease, app store.App, change releaseChange, out io.Writer) (store.Release, error) {
	base := app.Active
	if v := rl.stagedVersion(app.Name); app.Manual() && v != 0 {
		base = v // a staged push's code, with the new config
	}
	active, err := rl.store.GetRelease(app.Name, base)
	if err != nil {
		return store.Release{}, fmt.Errorf("base release v%d: %w", base, err)
	}
	rel, err := rl.store.CreateRelease(store.Release{
		App: app.Name, Cause: change.cause, Status: store.StatusDeploying,
		ImageID: active.ImageID, GitSHA: active.GitSHA, CommittedAt: active.CommittedAt, Env: change.env, Resources: change.resources,
		Procfile: active.Procfile, Dockerfile: active.Dockerfile, Reason: change.reason,
	})
	if err != nil {
		return store.Release{}, fmt.Errorf("create release: %w", err)
	}
	l.describe(fmt.Sprintf("v%d (%s: %s)", rel.Version, change.kind, rel.Reason))
	out, done := rl.progress.track(app.Name, rel.Version, out)
	defer done()
	rl.event(app.Name, "started", rel.Version, "%s: %s", change.kind, rel.Reason)
	step(out, "Deploying %s v%d: %s (%s of v%d, no rebuild)", app.Name, rel.Version, rel.Reason, change.reused, active.Version)
	if app.Manual() {
		return rl.stage(ctx, app, rel, newTimings(), out)
	}
	return rl.run(ctx, strategyFor(app), app, rel, newTimings(), out)
}

// Rollback deploys the image and config of an earlier release as a new
// release. version 0 means the newest release before the active one that
// went live.
func (rl *Releases) Rollback(ctx context.Context, appName string, version int, out io.Writer) (store.Release, error) {
	// A rollout in progress holds the release lock until it ends: abort it
	// (traffic back on stable) rather than wait for its steps.
	if _, err := rl.AbortRollout(ctx, appName, "a rollback"); err == nil {
		step(out, "Aborted the rollout in progress; all traffic is back on the stable release")
	}
	app, l, err := rl.lockApp(ctx, appName, true, out)
	if err != nil {
		return store.Release{}, err
	}
	defer l.Release()
	ctx = l.Context()
	target, err := rl.rollbackTarget(ctx, app, version)
	if err != nil {
		return store.Release{}, err
	}
	// A rollback to the release standing by thaws its paused replicas.
	var s Strategy = blueGreen{}
	containersOf := 0
	if sb, ok := standbyFor(app, target.Version, time.Now()); ok {
		s, containersOf = fromStandby{sb: sb}, target.Version
		if target.ContainersOf != 0 {
			containersOf = target.ContainersOf
		}
	}
	rel, err := rl.store.CreateRelease(store.Release{
		App: appName, Cause: store.CauseRollback, Status: store.StatusDeploying,
		ImageID: target.ImageID, GitSHA: target.GitSHA, Env: target.Env, Resources: target.Resources,
		Procfile: target.Procfile, Dockerfile: target.Dockerfile, Reason: fmt.Sprintf("rollback to v%d", target.Version),
		RolledBackTo: target.Version, CommittedAt: target.CommittedAt, ContainersOf: containersOf,
	})
	if err != nil {
		return store.Release{}, fmt.Errorf("create release: %w", err)
	}
	l.describe(fmt.Sprintf("v%d (rollback to v%d)", rel.Version, target.Version))
	out, done := rl.progress.track(appName, rel.Version, out)
	defer done()
	rl.event(appName, "started", rel.Version, "rollback to v%d", target.Version)
	from := ""
	if containersOf != 0 {
		from = ", from its paused standby"
	}
	step(out, "Rolling back %s to v%d as v%d (no rebuild%s)", appName, target.Version, rel.Version, from)
	// A rollback is a recovery, not an experiment: always one switch of
	// all traffic, blue-green or from the standby.
	return rl.run(ctx, s, app, rel, newTimings(), out)
}

// CheckRollback says, without taking the app's lock, whether a rollback of
// appName to version (0: the previous release) would find its target, so
// the API can refuse it before it starts streaming. Rollback checks again
// under the lock.
func (rl *Releases) CheckRollback(ctx context.Context, appName string, version int) error {
	app, err := rl.store.GetApp(appName)
	if err != nil {
		return fmt.Errorf("app %s: %w", appName, err)
	}
	_, err = rl.rollbackTarget(ctx, app, version)
	return err
}

func (rl *Releases) rollbackTarget(ctx context.Context, app store.App, version int) (store.Release, error) {
	if app.Active == 0 {
		return store.Release{}, fmt.Errorf("%w: %s has never been deployed, so there is nothing to roll back to", ErrNoRelease, app.Name)
	}
	releases, err := rl.store.ListReleases(app.Name)
	if err != nil {
		return store.Release{}, err
	}
	var target *store.Release
	if version == 0 {
		for i := len(releases) - 1; i >= 0; i-- {
			r := releases[i]
			if r.Version < app.Active && r.Status == store.StatusSuperseded {
				target = &releases[i]
				break
			}
		}
		if target == nil {
			return store.Release{}, fmt.Errorf("%w: %s has no earlier release that went live; see `plat releases %s`", ErrNoRelease, app.Name, app.Name)
		}
	} else {
		for i := range releases {
			if releases[i].Version == version {
				target = &releases[i]
			}
		}
		switch {
		case target == nil:
			return store.Release{}, fmt.Errorf("%w: %s has no release v%d; see `plat releases %s`", ErrUnknownRelease, app.Name, version, app.Name)
		case version == app.Active:
			return store.Release{}, fmt.Errorf("%w: v%d is already the active release of %s", ErrNoRelease, version, app.Name)
		case target.Status == store.StatusStaged:
			return store.Release{}, fmt.Errorf("%w: v%d is staged and never went live; release it with `plat promote %s v%d`", ErrNoRelease, version, app.Name, version)
		case target.Status == store.StatusUnstaged || target.Status == store.StatusDeploying:
			return store.Release{}, fmt.Errorf("%w: v%d never went live (%s), so it cannot be rolled back to", ErrNoRelease, version, target.Status)
		case target.ImageID == "" || target.Status == store.StatusFailed:
			return store.Release{}, fmt.Errorf("%w: v%d never went live (%s), so it cannot be rolled back to", ErrNoRelease, version, target.Reason)
		}
	}
	ok, err := rl.engine.ImageExists(ctx, target.ImageID)
	if err != nil {
		return store.Release{}, fmt.Errorf("check image of v%d: %w", target.Version, err)
	}
	if !ok {
		return store.Release{}, fmt.Errorf("%w: the image of v%d was removed (plat keeps the images of the last %d releases); pick a newer release", ErrNoRelease, target.Version, rl.cfg.Retain)
	}
	return *target, nil
}

// Destroy removes an app: its route, containers, images and records. Its
// running deploys are cancelled first.
func (rl *Releases) Destroy(ctx context.Context, appName string) error {
	for _, l := range rl.leases.ofApp(appName, false) {
		l.cancel(fmt.Errorf("%w: the app is being destroyed", ErrCancelled))
	}
	_, l, err := rl.lockApp(ctx, appName, false, io.Discard)
	if err != nil {
		return err
	}
	defer l.Release()
	unlock, err := rl.locks.lockReplicas(l.Context(), appName)
	if err != nil {
		return err
	}
	defer unlock()
	releases, err := rl.store.ListReleases(appName)
	if err != nil {
		return fmt.Errorf("app %s: %w", appName, err)
	}
	rl.switcher.Remove(appName)
	rl.removePreviews(appName)
	rl.routed.set(appName, nil)
	rl.load.forget(appName)
	rl.frozen.forget(appName)
	rl.stopOthers(ctx, appName, nil)
	// By tag, as pruneImages does: an image shared with another app keeps
	// that app's tag.
	for _, r := range releases {
		if r.Cause != store.CausePush || r.ImageID == "" {
			continue
		}
		tag := builder.InstanceTag(rl.cfg.Instance, appName, r.Version)
		if err := rl.engine.RemoveImage(ctx, tag); err != nil && !errors.Is(err, engine.ErrNotFound) {
			rl.log.Warn("remove image", "app", appName, "tag", tag, "err", err)
		}
	}
	if err := rl.engine.RemoveNetwork(ctx, NetworkName(rl.cfg.Instance, appName)); err != nil && !errors.Is(err, engine.ErrNotFound) {
		rl.log.Warn("remove network", "app", appName, "err", err)
	}
	if err := rl.store.DeleteApp(appName); err != nil {
		return fmt.Errorf("delete app %s: %w", appName, err)
	}
	return nil
}

func describeChange(c ConfigChange) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c.Set)) {
		parts = append(parts, "set "+k)
	}
	for _, k := range c.Unset {
		parts = append(parts, "unset "+k)
	}
	return strings.Join(parts, ", ")
}
