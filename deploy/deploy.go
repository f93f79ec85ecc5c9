// Package deploy owns releases: it builds pushes into releases, runs them
// blue-green (start beside the old one, health-check, switch, drain, stop),
// and makes config changes and rollbacks into new releases through the same
// path. It knows the store and the engine, and sees the router only through
// the small Switcher interface.
package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plat-paas/plat/builder"
	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

// Defaults for Config fields left at zero.
const (
	DefaultInstance     = "plat"
	DefaultPort         = 5000
	DefaultMemoryBytes  = 512 << 20
	DefaultDrainTimeout = 30 * time.Second
	DefaultStopTimeout  = 10 * time.Second
	DefaultRetain       = 10
	crashLogLines       = 20
)

// Sentinel errors callers can map to user-facing answers.
var (
	ErrInvalidName   = errors.New("invalid app name")
	ErrInvalidConfig = errors.New("invalid config")
	ErrInvalidHealth = errors.New("invalid health check")
	ErrNoRelease     = errors.New("no such release")
	// ErrNoLease: a push came without the lease of a running git push.
	ErrNoLease = errors.New("deploys only run from a git push to the daemon")
)

// Switcher points an app's traffic at a new set of backends. It returns a
// function that waits (bounded by ctx) for the in-flight requests of the
// backends that are no longer routed.
type Switcher interface {
	Switch(app string, addrs []string) (drainOld func(ctx context.Context) error, err error)
	// Sleep routes app to no backend, such that a request wakes it (Wake).
	Sleep(app string) (drainOld func(ctx context.Context) error, err error)
	Remove(app string) (drainOld func(ctx context.Context) error)
	// Stats reports app's traffic now, for the idle timer and the autoscaler.
	Stats(app string) (TrafficStats, bool)
}

// TrafficStats is an app's traffic as the router sees it.
type TrafficStats struct {
	Backends int
	InFlight int64
	// Requests only grows while the backends stay the same; any change
	// means the app was used.
	Requests uint64
}

// Config holds deploy settings; zero fields take the defaults above.
type Config struct {
	// Instance names this daemon on the engine: it prefixes container names
	// and labels them, and only labelled containers are ever touched.
	Instance     string
	Port         int
	MemoryBytes  int64
	DrainTimeout time.Duration
	StopTimeout  time.Duration
	Retain       int // releases per app whose images are kept
	// ReleaseTimeout bounds a release command (DefaultReleaseTimeout).
	ReleaseTimeout time.Duration

	// ScaleInterval is how often the autoscaler samples traffic.
	ScaleInterval time.Duration
	// ScaleUpDelay and ScaleDownDelay are how long the load must stay above
	// (below) the target before a replica is added (removed).
	ScaleUpDelay   time.Duration
	ScaleDownDelay time.Duration

	// MaxBuilds is how many builds run at once (builder.DefaultMaxBuilds);
	// BuildTimeout bounds each (builder.DefaultBuildTimeout).
	MaxBuilds    int
	BuildTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Instance == "" {
		c.Instance = DefaultInstance
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.MemoryBytes == 0 {
		c.MemoryBytes = DefaultMemoryBytes
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	if c.Retain <= 0 {
		c.Retain = DefaultRetain
	}
	if c.ReleaseTimeout <= 0 {
		c.ReleaseTimeout = DefaultReleaseTimeout
	}
	if c.ScaleInterval <= 0 {
		c.ScaleInterval = DefaultScaleInterval
	}
	if c.ScaleUpDelay <= 0 {
		c.ScaleUpDelay = DefaultScaleUpDelay
	}
	if c.ScaleDownDelay <= 0 {
		c.ScaleDownDelay = DefaultScaleDownDelay
	}
	return c
}

// Deployer runs releases.
type Deployer struct {
	store    *store.Store
	engine   engine.Engine
	builder  *builder.Builder
	switcher Switcher
	cfg      Config
	log      *slog.Logger
	locks    appLocks
	leases   leases
	probe    *http.Client
	progress progressLogs
	onSwitch func(app string, replicas []Replica)
	routed   routedReplicas
	load     appLoads
	hostCap  capacityCache
	shells   shellCache
	runs     runsInUse
	restarts pendingRestarts
	// restartGrace is how long after a crash the engine's restart policy
	// gets before plat starts the container itself.
	restartGrace time.Duration
}

// OnSwitch registers fn to be called after traffic of app moved to another
// set of replicas (the log hub follows them); none while the app sleeps.
// Call it before deploying.
func (d *Deployer) OnSwitch(fn func(app string, replicas []Replica)) {
	d.onSwitch = fn
}

// New returns a Deployer.
func New(s *store.Store, e engine.Engine, sw Switcher, cfg Config, log *slog.Logger) *Deployer {
	if log == nil {
		log = slog.Default()
	}
	return &Deployer{
		store:    s,
		engine:   e,
		builder:  builder.New(e, builder.WithMaxBuilds(cfg.MaxBuilds), builder.WithTimeout(cfg.BuildTimeout)),
		switcher: sw,
		cfg:      cfg.withDefaults(),
		log:      log,
		probe:    &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},

		restartGrace: defaultRestartGrace,
	}
}

// step writes one progress line in the style pushers know from Heroku.
func step(out io.Writer, format string, args ...any) {
	fmt.Fprintf(out, "-----> "+format+"\n", args...)
}

// PushRequest is one pushed commit to build and deploy.
type PushRequest struct {
	App    string
	GitSHA string
	Source io.Reader // tar of the commit (git archive)
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
func (d *Deployer) Push(ctx context.Context, req PushRequest, out io.Writer) (store.Release, error) {
	l, err := d.lease(req.Lease, req.App)
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
	app, err := d.store.GetApp(req.App)
	if err != nil {
		return store.Release{}, fmt.Errorf("app %s: %w", req.App, err)
	}
	rel, err := d.store.CreateRelease(store.Release{
		App: app.Name, Cause: store.CausePush, Status: store.StatusDeploying,
		GitSHA: req.GitSHA, Env: app.Env, Resources: app.Resources,
	})
	if err != nil {
		return store.Release{}, fmt.Errorf("create release: %w", err)
	}
	l.describe(fmt.Sprintf("v%d (push of %s)", rel.Version, short(req.GitSHA)))
	out, done := d.progress.track(app.Name, rel.Version, out)
	defer done()
	d.event(app.Name, "started", rel.Version, "push of %s", short(req.GitSHA))
	step(out, "Building %s v%d from %s", app.Name, rel.Version, short(req.GitSHA))

	var buildLog bytes.Buffer
	started := time.Now()
	tm := newTimings()
	built, err := d.builder.BuildRelease(ctx, builder.Request{
		App: app.Name, Version: rel.Version, GitSHA: req.GitSHA, Source: req.Source, Instance: d.cfg.Instance,
		BuildArgs: app.Build.Args, Secrets: app.Build.Secrets, Target: app.Build.Target,
	}, io.MultiWriter(indent(out), &buildLog))
	imageID := built.ImageID
	if logErr := d.store.SetBuildLog(app.Name, rel.Version, buildLog.Bytes()); logErr != nil {
		d.log.Warn("saving build log", "app", app.Name, "release", rel.Version, "err", logErr)
	}
	if err != nil {
		return d.fail(ctx, rel, "the build", fmt.Errorf("build failed: %w", err))
	}
	step(out, "Built image %s in %s", shortID(imageID), time.Since(started).Round(time.Millisecond))
	d.event(app.Name, "built", rel.Version, "image %s", shortID(imageID))
	if err := d.store.UpdateRelease(app.Name, rel.Version, func(r *store.Release) error {
		r.ImageID, r.Procfile = imageID, built.Procfile
		return nil
	}); err != nil {
		return d.fail(ctx, rel, "the build", fmt.Errorf("record image: %w", err))
	}
	rel.ImageID, rel.Procfile = imageID, built.Procfile
	tm.mark("build")

	if err := l.Lock(ctx, out); err != nil {
		return d.fail(ctx, rel, "the wait for another deploy", err)
	}
	if req.Check != nil {
		if err := req.Check(); err != nil {
			return d.fail(ctx, rel, "", err)
		}
	}
	// The config may have changed during the build: the release runs with
	// the app's config as it is now.
	if app, err = d.store.GetApp(req.App); err != nil {
		return d.fail(ctx, rel, "", fmt.Errorf("app %s: %w", req.App, err))
	}
	if !maps.Equal(app.Env, rel.Env) {
		if err := d.store.UpdateRelease(app.Name, rel.Version, func(r *store.Release) error { r.Env = app.Env; return nil }); err != nil {
			return d.fail(ctx, rel, "", fmt.Errorf("record config: %w", err))
		}
		rel.Env = app.Env
	}
	return d.run(ctx, app, rel, tm, out)
}

// ConfigChange sets and unsets config vars.
type ConfigChange struct {
	Set   map[string]string
	Unset []string
}

// SetConfig applies a config change as a new release (same image, new env)
// through the blue-green path. If the app was never deployed the config is
// only saved, for the first push, and the returned release is zero.
func (d *Deployer) SetConfig(ctx context.Context, appName string, change ConfigChange, out io.Writer) (store.Release, error) {
	app, l, err := d.lockApp(ctx, appName, true, out)
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
		err := d.store.UpdateApp(appName, func(a *store.App) error { a.Env = env; return nil })
		step(out, "Config saved; it takes effect with the first push")
		return store.Release{}, err
	}
	return d.redeploy(ctx, l, app, releaseChange{
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
// lease l, and deploys it through the blue-green path, without a rebuild.
func (d *Deployer) redeploy(ctx context.Context, l *Lease, app store.App, change releaseChange, out io.Writer) (store.Release, error) {
	active, err := d.store.GetRelease(app.Name, app.Active)
	if err != nil {
		return store.Release{}, fmt.Errorf("active release: %w", err)
	}
	rel, err := d.store.CreateRelease(store.Release{
		App: app.Name, Cause: change.cause, Status: store.StatusDeploying,
		ImageID: active.ImageID, GitSHA: active.GitSHA, Env: change.env, Resources: change.resources,
		Procfile: active.Procfile, Reason: change.reason,
	})
	if err != nil {
		return store.Release{}, fmt.Errorf("create release: %w", err)
	}
	l.describe(fmt.Sprintf("v%d (%s: %s)", rel.Version, change.kind, rel.Reason))
	out, done := d.progress.track(app.Name, rel.Version, out)
	defer done()
	d.event(app.Name, "started", rel.Version, "%s: %s", change.kind, rel.Reason)
	step(out, "Deploying %s v%d: %s (%s of v%d, no rebuild)", app.Name, rel.Version, rel.Reason, change.reused, active.Version)
	return d.run(ctx, app, rel, newTimings(), out)
}

// Rollback deploys the image and config of an earlier release as a new
// release. version 0 means the newest release before the active one that
// went live.
func (d *Deployer) Rollback(ctx context.Context, appName string, version int, out io.Writer) (store.Release, error) {
	app, l, err := d.lockApp(ctx, appName, true, out)
	if err != nil {
		return store.Release{}, err
	}
	defer l.Release()
	ctx = l.Context()
	target, err := d.rollbackTarget(ctx, app, version)
	if err != nil {
		return store.Release{}, err
	}
	rel, err := d.store.CreateRelease(store.Release{
		App: appName, Cause: store.CauseRollback, Status: store.StatusDeploying,
		ImageID: target.ImageID, GitSHA: target.GitSHA, Env: target.Env, Resources: target.Resources,
		Procfile: target.Procfile, Reason: fmt.Sprintf("rollback to v%d", target.Version),
	})
	if err != nil {
		return store.Release{}, fmt.Errorf("create release: %w", err)
	}
	l.describe(fmt.Sprintf("v%d (rollback to v%d)", rel.Version, target.Version))
	out, done := d.progress.track(appName, rel.Version, out)
	defer done()
	d.event(appName, "started", rel.Version, "rollback to v%d", target.Version)
	step(out, "Rolling back %s to v%d as v%d (no rebuild)", appName, target.Version, rel.Version)
	return d.run(ctx, app, rel, newTimings(), out)
}

func (d *Deployer) rollbackTarget(ctx context.Context, app store.App, version int) (store.Release, error) {
	if app.Active == 0 {
		return store.Release{}, fmt.Errorf("%w: %s has never been deployed, so there is nothing to roll back to", ErrNoRelease, app.Name)
	}
	releases, err := d.store.ListReleases(app.Name)
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
			return store.Release{}, fmt.Errorf("%w: %s has no release v%d; see `plat releases %s`", ErrNoRelease, app.Name, version, app.Name)
		case version == app.Active:
			return store.Release{}, fmt.Errorf("%w: v%d is already the active release of %s", ErrNoRelease, version, app.Name)
		case target.ImageID == "" || target.Status == store.StatusFailed:
			return store.Release{}, fmt.Errorf("%w: v%d never went live (%s), so it cannot be rolled back to", ErrNoRelease, version, target.Reason)
		}
	}
	ok, err := d.engine.ImageExists(ctx, target.ImageID)
	if err != nil {
		return store.Release{}, fmt.Errorf("check image of v%d: %w", target.Version, err)
	}
	if !ok {
		return store.Release{}, fmt.Errorf("%w: the image of v%d was removed (plat keeps the images of the last %d releases); pick a newer release", ErrNoRelease, target.Version, d.cfg.Retain)
	}
	return *target, nil
}

// run deploys rel (whose image is built) blue-green, under the app's
// release lock. On any failure the new containers are removed, rel is
// marked failed and the old release keeps serving. Only the switch step
// takes the replica lock, so wakes and crash recovery go on meanwhile; a
// cancelled ctx stops it up to the switch.
func (d *Deployer) run(ctx context.Context, app store.App, rel store.Release, tm *timings, out io.Writer) (store.Release, error) {
	// The release phase comes before any new replica exists, so none can
	// take traffic before it succeeded.
	if ran, err := d.releasePhase(ctx, app.Name, rel, out); err != nil {
		return d.fail(ctx, rel, "the release command", err)
	} else if ran {
		tm.mark("release")
	}
	n := awakeReplicas(app)
	indexes := make([]int, n)
	for i := range indexes {
		indexes[i] = i + 1
	}
	reps, err := d.startReplicas(ctx, app, rel, indexes, tm, out)
	if err != nil {
		return d.fail(ctx, rel, "the start and health check", err)
	}
	rel.ContainerID = reps[0].ID
	removeNew := func() {
		for _, r := range reps {
			d.remove(r.ID)
		}
	}

	unlockReplicas, err := d.locks.lockReplicas(ctx, app.Name)
	if err != nil {
		removeNew()
		return d.fail(ctx, rel, "the switch", err)
	}
	defer unlockReplicas()
	// A wake or a sleep may have changed the record since run began.
	if app, err = d.store.GetApp(app.Name); err != nil {
		removeNew()
		return d.fail(ctx, rel, "the switch", fmt.Errorf("app %s: %w", rel.App, err))
	}
	// The switch comes before the store says "active": if the daemon dies in
	// between, start-up sees the old release active and its container still
	// running (old containers are stopped only after this point), so the old
	// version is served again.
	drainOld, err := d.route(app.Name, reps)
	if err != nil {
		removeNew()
		return d.fail(ctx, rel, "the switch", fmt.Errorf("switch router: %w", err))
	}
	d.load.touch(app.Name)
	tm.mark("switch")
	if err := d.store.ActivateRelease(app.Name, rel.Version); err != nil {
		// Traffic already flows to the new container; say so rather than
		// pretend it failed.
		d.log.Error("activate release", "app", app.Name, "release", rel.Version, "err", err)
		return rel, fmt.Errorf("v%d serves but could not be recorded as active: %w", rel.Version, err)
	}
	if rel.Cause != store.CausePush || !maps.Equal(app.Env, rel.Env) || app.Resources != rel.Resources || app.Asleep {
		// A deploy wakes a sleeping app: it runs until it is idle again.
		if err := d.store.UpdateApp(app.Name, func(a *store.App) error {
			a.Env, a.Resources, a.Asleep = rel.Env, rel.Resources, false
			return nil
		}); err != nil {
			d.log.Error("save config", "app", app.Name, "err", err)
		}
	}
	unlockReplicas()
	tm.mark("record")
	step(out, "Switched traffic to v%d (%d %s)", rel.Version, n, plural(n, "replica", "replicas"))
	d.event(app.Name, "switched", rel.Version, "traffic now goes to %s", replicaNames(reps))
	if rel.Cause == store.CauseRollback {
		d.event(app.Name, "rolled back", rel.Version, "%s", rel.Reason)
	}

	// From here on the release is live: cancelling no longer applies.
	d.drain(ctx, drainOld, out)
	tm.mark("drain")
	d.stopOldReleases(context.WithoutCancel(ctx), app.Name, rel.Version)
	d.pruneImages(context.WithoutCancel(ctx), app.Name)
	tm.mark("cleanup")
	step(out, "Timings: %s", tm)
	d.event(app.Name, "timings", rel.Version, "%s", tm)

	rel, err = d.store.GetRelease(app.Name, rel.Version)
	if err != nil {
		return rel, fmt.Errorf("read release: %w", err)
	}
	return rel, nil
}

// startHealthy starts rel's container and waits until it is healthy, then
// turns on its restart policy. On failure the container is removed and its
// last output written to out.
func (d *Deployer) startHealthy(ctx context.Context, app store.App, rel store.Release, index int, tm *timings, out io.Writer) (engine.ContainerInfo, error) {
	name := d.containerName(app.Name, rel.Version, index)
	step(out, "Starting %s", name)
	started := time.Now()
	cmd, err := d.webCommand(ctx, rel)
	if err != nil {
		return engine.ContainerInfo{}, err
	}
	spec := d.isolation(app.Name, rel)
	spec.Name, spec.Port, spec.Cmd = name, d.cfg.Port, cmd
	spec.Labels = map[string]string{
		engine.LabelManaged:  "true",
		engine.LabelRole:     engine.RoleApp,
		engine.LabelInstance: d.cfg.Instance,
		engine.LabelApp:      app.Name,
		engine.LabelRelease:  strconv.Itoa(rel.Version),
		engine.LabelReplica:  strconv.Itoa(index),
		engine.LabelGitSHA:   rel.GitSHA,
	}
	if token, ok := ctx.Value(restartKey{}).(string); ok {
		spec.Labels[engine.LabelRestart] = token
	}
	c, err := d.engine.Run(ctx, spec)
	if errors.Is(err, engine.ErrNameInUse) {
		// A container of this name can only be a leftover of a killed
		// daemon; looking for one only then keeps the usual path short.
		d.removeByName(ctx, app.Name, name)
		c, err = d.engine.Run(ctx, spec)
	}
	if err != nil {
		return c, fmt.Errorf("start container: %w", err)
	}
	if index == 1 {
		if err := d.store.UpdateRelease(app.Name, rel.Version, func(r *store.Release) error {
			r.ContainerID = c.ID
			return nil
		}); err != nil {
			d.remove(c.ID)
			return c, fmt.Errorf("record container: %w", err)
		}
	}
	tm.mark("start")
	hc := withHealthDefaults(app.Health)
	step(out, "Waiting for %s to answer GET %s on port %d (deadline %s)", name, hc.Path, d.cfg.Port, hc.Deadline)
	checker := healthChecker{
		check: hc,
		probe: httpProbe(d.probe, c.HostAddr, hc.Path),
		alive: func(ctx context.Context) error { return d.alive(ctx, c.ID) },
	}
	if err := checker.wait(ctx); err != nil {
		logs := d.lastLogs(c.ID)
		d.remove(c.ID)
		if logs != "" {
			step(out, "Last output of %s:", name)
			io.WriteString(indent(out), logs)
		}
		return c, fmt.Errorf("health check failed: %w", err)
	}
	step(out, "Healthy after %s", time.Since(started).Round(time.Millisecond))
	d.event(app.Name, "healthy", rel.Version, "%s answered on %s", name, c.HostAddr)
	if err := d.engine.SetRestart(ctx, c.ID); err != nil {
		d.remove(c.ID)
		return c, fmt.Errorf("set restart policy: %w", err)
	}
	tm.mark("health")
	return c, nil
}

// fail records rel as failed and returns the error for the caller. When
// ctx was cancelled, the reason is the cancellation's cause ("cancelled by
// admin during the build"), not the context error it made.
func (d *Deployer) fail(ctx context.Context, rel store.Release, during string, cause error) (store.Release, error) {
	if ctx.Err() != nil {
		if c := context.Cause(ctx); errors.Is(c, ErrCancelled) {
			cause = c
			if during != "" {
				cause = fmt.Errorf("%w during %s", c, during)
			}
		}
	}
	if err := d.store.FailRelease(rel.App, rel.Version, cause.Error()); err != nil {
		d.log.Error("mark release failed", "app", rel.App, "release", rel.Version, "err", err)
	}
	d.event(rel.App, "failed", rel.Version, "%v", cause)
	rel.Status, rel.Reason = store.StatusFailed, cause.Error()
	return rel, cause
}

// alive returns an error wrapping errExited when the container stopped.
func (d *Deployer) alive(ctx context.Context, id string) error {
	info, err := d.engine.Inspect(ctx, id)
	if err != nil {
		return fmt.Errorf("inspect container: %w", err)
	}
	if !info.Running || info.Restarts > 0 {
		return fmt.Errorf("%w with code %d", errExited, info.ExitCode)
	}
	return nil
}

func (d *Deployer) lastLogs(id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var buf bytes.Buffer
	if err := d.engine.Logs(ctx, id, crashLogLines, false, &buf); err != nil {
		return ""
	}
	return buf.String()
}

// remove force-removes a container, logging instead of failing: it runs on
// paths that already report another error.
func (d *Deployer) remove(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.engine.Remove(ctx, id); err != nil && !errors.Is(err, engine.ErrNotFound) {
		d.log.Warn("remove container", "id", shortID(id), "err", err)
	}
}

func (d *Deployer) removeByName(ctx context.Context, app, name string) {
	cs, err := d.engine.List(ctx, d.labels(engine.LabelApp, app))
	if err != nil {
		return
	}
	for _, c := range cs {
		if c.Name == name {
			d.remove(c.ID)
		}
	}
}

// stopOldReleases stops and removes every container of app that is not of
// release version (the one that just went live).
func (d *Deployer) stopOldReleases(ctx context.Context, app string, version int) {
	cs, err := d.engine.List(ctx, d.labels(engine.LabelApp, app))
	if err != nil {
		d.log.Warn("list containers", "app", app, "err", err)
		return
	}
	keep := map[string]bool{}
	for _, c := range cs {
		if c.Labels[engine.LabelRelease] == strconv.Itoa(version) {
			keep[c.ID] = true
		}
	}
	d.stopOthers(ctx, app, keep)
}

// stopOthers stops and removes every container of app not in keep.
func (d *Deployer) stopOthers(ctx context.Context, app string, keep map[string]bool) {
	cs, err := d.engine.List(ctx, d.labels(engine.LabelApp, app))
	if err != nil {
		d.log.Warn("list containers", "app", app, "err", err)
		return
	}
	d.stopContainers(ctx, app, cs, keep)
}

func (d *Deployer) stopContainers(ctx context.Context, app string, cs []engine.ContainerInfo, keep map[string]bool) {
	for _, c := range cs {
		if keep[c.ID] {
			continue
		}
		if c.Running {
			d.stopAndRemove(ctx, app, c.ID)
		} else {
			d.remove(c.ID)
		}
	}
}

// pruneImages removes the images of releases older than the newest
// cfg.Retain, unless a kept release (or the active one) uses the same image.
// It removes the tags the builds gave them, not the image IDs: an image
// another app's build shares (same source, same ID) keeps that app's tag
// and stays; an image goes with its last tag.
func (d *Deployer) pruneImages(ctx context.Context, app string) {
	releases, err := d.store.ListReleases(app)
	if err != nil {
		return
	}
	a, err := d.store.GetApp(app)
	if err != nil {
		return
	}
	keep := map[string]bool{}
	cut := len(releases) - d.cfg.Retain
	for i, r := range releases {
		if i >= cut || r.Version == a.Active {
			keep[r.ImageID] = true
		}
	}
	for i, r := range releases {
		if i >= cut || r.Cause != store.CausePush || r.ImageID == "" || keep[r.ImageID] {
			continue
		}
		tag := builder.InstanceTag(d.cfg.Instance, app, r.Version)
		if err := d.engine.RemoveImage(ctx, tag); err != nil {
			if !errors.Is(err, engine.ErrNotFound) {
				d.log.Warn("remove old image", "app", app, "release", r.Version, "tag", tag, "err", err)
			}
			continue
		}
		d.log.Info("removed old image", "app", app, "release", r.Version, "tag", tag, "image", shortID(r.ImageID))
	}
}

// Destroy removes an app: its route, containers, images and records. Its
// running deploys are cancelled first.
func (d *Deployer) Destroy(ctx context.Context, appName string) error {
	for _, l := range d.leases.ofApp(appName, false) {
		l.cancel(fmt.Errorf("%w: the app is being destroyed", ErrCancelled))
	}
	_, l, err := d.lockApp(ctx, appName, false, io.Discard)
	if err != nil {
		return err
	}
	defer l.Release()
	unlock, err := d.locks.lockReplicas(l.Context(), appName)
	if err != nil {
		return err
	}
	defer unlock()
	releases, err := d.store.ListReleases(appName)
	if err != nil {
		return fmt.Errorf("app %s: %w", appName, err)
	}
	d.switcher.Remove(appName)
	d.routed.set(appName, nil)
	d.load.forget(appName)
	d.stopOthers(ctx, appName, nil)
	// By tag, as pruneImages does: an image shared with another app keeps
	// that app's tag.
	for _, r := range releases {
		if r.Cause != store.CausePush || r.ImageID == "" {
			continue
		}
		tag := builder.InstanceTag(d.cfg.Instance, appName, r.Version)
		if err := d.engine.RemoveImage(ctx, tag); err != nil && !errors.Is(err, engine.ErrNotFound) {
			d.log.Warn("remove image", "app", appName, "tag", tag, "err", err)
		}
	}
	if err := d.engine.RemoveNetwork(ctx, NetworkName(d.cfg.Instance, appName)); err != nil && !errors.Is(err, engine.ErrNotFound) {
		d.log.Warn("remove network", "app", appName, "err", err)
	}
	if err := d.store.DeleteApp(appName); err != nil {
		return fmt.Errorf("delete app %s: %w", appName, err)
	}
	return nil
}

func (d *Deployer) event(app, kind string, release int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.log.Info("deploy "+kind, "app", app, "release", release, "msg", msg)
	if err := d.store.AddEvent(store.Event{App: app, Kind: kind, Release: release, Message: msg}); err != nil {
		d.log.Warn("record event", "app", app, "err", err)
	}
}

// NetworkName is the Docker network of an app's containers: each app has its
// own, so an app cannot reach another app's containers except through the
// router.
func NetworkName(instance, app string) string {
	return instance + "-" + app
}

func (d *Deployer) containerName(app string, version, replica int) string {
	return fmt.Sprintf("%s-%s-v%d.%d", d.cfg.Instance, app, version, replica)
}

func replicaNames(reps []Replica) string {
	names := make([]string, len(reps))
	for i, r := range reps {
		names[i] = r.Name
	}
	return strings.Join(names, ", ")
}

// labels selects this daemon's app containers, plus the given key/value pairs.
func (d *Deployer) labels(kv ...string) map[string]string {
	m := map[string]string{engine.LabelRole: engine.RoleApp, engine.LabelInstance: d.cfg.Instance}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func containerEnv(env map[string]string, port int) []string {
	out := make([]string, 0, len(env)+1)
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return append(out, "PORT="+strconv.Itoa(port))
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

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
