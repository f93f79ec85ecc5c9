// Package deploy owns releases: it builds pushes into releases, ships them
// with the app's release strategy (blue-green by default: start beside the
// old one, health-check, switch, drain, stop; or rolling, or in-place), and
// makes config changes and rollbacks into new releases through the same
// path. It knows the store and
// the engine, and sees the router only through the small Switcher interface.
//
// Where things are:
//   - containers.go: containers, the only code that starts and stops app
//     containers; replicas.go: replicaSet, the only code that moves traffic.
//   - strategy.go: the Strategy interface and the Rollout a strategy works
//     through; one file per strategy: bluegreen.go, rolling.go, inplace.go,
//     canary.go (steps, analysis, abort); liverollout.go: the rollouts in
//     progress (status, promote, abort without the release lock).
//   - release.go, rollout.go, retention.go: Releases (push, config,
//     rollback, destroy; the release command; image retention).
//   - staged.go, releasehost.go: staged releases (manual release mode: stage,
//     promote, unstage, their sleep and wake, their restore at start-up)
//     and the vN.APP preview hosts of running releases (PreviewSwitcher).
//   - reconcile.go, watch.go: Supervisor (start-up and crash recovery).
//   - scale.go, sleep.go, autoscale.go, load.go: Scaler (scale, sleep and
//     wake, autoscale) and its load model; warm.go: the warm stage (paused
//     sleepers, standbys, memory pressure); standby.go: Retire and the
//     rollback that thaws a standby.
//   - lock.go, lease.go: guard (the app locks and the leases that hold them).
//   - deploy.go: Deployer, the facade the daemon wires.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
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
	// ErrUnknownRelease: the version asked for was never made; it wraps
	// ErrNoRelease.
	ErrUnknownRelease = fmt.Errorf("%w: unknown version", ErrNoRelease)
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

	// Standby is how long the previous release's replicas stay paused
	// after a deploy, for a fast rollback; 0 turns standbys off (the
	// daemon's flag defaults to DefaultStandby).
	Standby time.Duration
	// MinAvailableMemory: below it (bytes of the host's MemAvailable)
	// standbys are dropped and warm apps go cold; 0 turns the check off
	// (the daemon's flag defaults to DefaultMinAvailableMemory).
	MinAvailableMemory int64
	// AvailableMemory reads the host's available memory; nil reads
	// DefaultMeminfo.
	AvailableMemory func() (int64, error)

	// BaseImages are the base images, by stack, of the Dockerfiles plat
	// generates for pushes without one (builder.DefaultBaseImages).
	BaseImages builder.BaseImages

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

// Deployer runs releases. It wires the components: the replica set (the
// only code that starts and stops containers and moves traffic) and the
// release strategies that use it.
type Deployer struct {
	// The store, engine, config and logger are the replica set's; they
	// are shared, never copied.
	*replicaSet
	*guard
	*Scaler
	*Supervisor
	*Releases
	oneOffs  *oneOffs
	builder  *builder.Builder
	progress progressLogs
	load     appLoads
	hostCap  capacityCache
	restarts pendingRestarts
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
	cfg = cfg.withDefaults()
	rs := &replicaSet{
		containers: &containers{
			recorder: recorder{store: s, log: log},
			specs:    &specs{engine: e, cfg: cfg},
			probe:    &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
		},
		switcher: sw,
	}
	g := &guard{store: s, log: log}
	d := &Deployer{replicaSet: rs, guard: g, builder: builder.New(e, builder.WithMaxBuilds(cfg.MaxBuilds), builder.WithTimeout(cfg.BuildTimeout)), oneOffs: &oneOffs{containers: rs.containers}}
	d.Releases = &Releases{replicaSet: rs, guard: g, builder: d.builder, oneOffs: d.oneOffs, progress: &d.progress, load: &d.load}
	d.Scaler = &Scaler{replicaSet: rs, guard: g, load: &d.load}
	d.Supervisor = &Supervisor{replicaSet: rs, guard: g, restarts: &d.restarts, restartGrace: defaultRestartGrace,
		wake: func(ctx context.Context, app store.App) error { return d.Scaler.wakeLocked(ctx, app, io.Discard) }}
	d.progress.save = d.keepProgress
	return d
}

// step writes one progress line in the style pushers know from Heroku.
func step(out io.Writer, format string, args ...any) {
	fmt.Fprintf(out, "-----> "+format+"\n", args...)
}

// recorder records an app's events in the store and the log.
type recorder struct {
	store *store.Store
	log   *slog.Logger
}

func (r recorder) event(app, kind string, release int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.log.Info("deploy "+kind, "app", app, "release", release, "msg", msg)
	if err := r.store.AddEvent(store.Event{App: app, Kind: kind, Release: release, Message: msg}); err != nil {
		r.log.Warn("record event", "app", app, "err", err)
	}
}

// NetworkName is the Docker network of an app's containers: each app has its
// own, so an app cannot reach another app's containers except through the
// router.
func NetworkName(instance, app string) string {
	return instance + "-" + app
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
