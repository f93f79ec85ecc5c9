package deploy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

// Warm sleep and warm standby: containers paused (the engine's cgroup
// freezer) keep their memory and use no CPU, and thaw in milliseconds.
//
//   - A sleeping app is warm (paused) for its cold-after time, then cold
//     (stopped). A request to a warm app unpauses it.
//   - After a deploy switched, the previous release's replicas are paused
//     for Config.Standby as the app's standby: a rollback to that release
//     unpauses them instead of starting containers. A standby is dropped
//     when its time is up, on the next deploy, or under memory pressure.
//   - When the host's available memory falls below
//     Config.MinAvailableMemory, standbys are dropped first, then warm
//     apps go cold, oldest first, one at a time.
const (
	// DefaultColdAfter is how long a sleeping app stays warm.
	DefaultColdAfter = 30 * time.Minute
	// DefaultStandby is how long the previous release stays paused after
	// a deploy (the daemon's --standby).
	DefaultStandby = 10 * time.Minute
	// DefaultMinAvailableMemory is the host's available memory under which
	// warm containers are given up (the daemon's --min-available-memory).
	DefaultMinAvailableMemory = 256 << 20
	// DefaultMeminfo is where the host's available memory is read.
	DefaultMeminfo = "/proc/meminfo"
)

// ReadMemAvailable returns MemAvailable of a /proc/meminfo file, in bytes.
func ReadMemAvailable(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("read available memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read available memory: %s: %w", path, err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read available memory: %w", err)
	}
	return 0, fmt.Errorf("read available memory: no MemAvailable line in %s", path)
}

// frozenReplicas remembers the replicas a warm sleep paused, per app, so
// that the wake thaws them without listing containers on the engine. An
// entry is used once; any doubt (a daemon restart, a cold step, another
// release) falls back to the listing.
type frozenReplicas struct {
	mu   sync.Mutex
	apps map[string]frozenSet
}

type frozenSet struct {
	release int
	reps    []Replica
}

func (f *frozenReplicas) put(app string, release int, reps []Replica) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.apps == nil {
		f.apps = map[string]frozenSet{}
	}
	f.apps[app] = frozenSet{release: release, reps: slices.Clone(reps)}
}

func (f *frozenReplicas) forget(app string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.apps, app)
}

// take returns app's paused replicas as the engine would list them, by
// index, if they are of release and there are n of them.
func (f *frozenReplicas) take(app string, release, n int) (map[int]engine.ContainerInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	set, ok := f.apps[app]
	delete(f.apps, app)
	if !ok || set.release != release || len(set.reps) != n {
		return nil, false
	}
	out := make(map[int]engine.ContainerInfo, n)
	for _, r := range set.reps {
		out[r.Index] = engine.ContainerInfo{ID: r.ID, Name: r.Name, State: "paused", Running: true, Paused: true, HostAddr: r.Addr}
	}
	return out, len(out) == n
}

// warmJobs keeps one warm-stage job (going cold, dropping a standby,
// relieving memory pressure) per key at a time: the ticker comes back every
// ScaleInterval, a stop takes seconds.
type warmJobs struct {
	mu   sync.Mutex
	busy map[string]bool
	// warned: the failure to read the available memory was logged.
	warned atomic.Bool
}

// start runs fn in wg unless a job of key is running.
func (j *warmJobs) start(wg *sync.WaitGroup, key string, fn func()) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.busy[key] {
		return
	}
	if j.busy == nil {
		j.busy = map[string]bool{}
	}
	j.busy[key] = true
	wg.Go(func() {
		defer func() {
			j.mu.Lock()
			delete(j.busy, key)
			j.mu.Unlock()
		}()
		fn()
	})
}

// warmTick runs the warm stage's timers for one sample of the apps: warm
// apps whose cold-after time is up go cold, standbys whose time is up are
// dropped, and under memory pressure one warm thing is given up.
func (sc *Scaler) warmTick(ctx context.Context, apps []store.App, now time.Time, wg *sync.WaitGroup) {
	for _, app := range apps {
		if app.Active == 0 {
			continue
		}
		if app.Asleep && app.Warm && now.Sub(app.AsleepSince) >= coldAfter(app.Scale) {
			sc.jobs.start(wg, "cold/"+app.Name, func() {
				sc.goCold(ctx, app.Name, fmt.Sprintf("warm for %s", coldAfter(app.Scale)))
			})
		}
		if app.Standby.Release != 0 && !now.Before(app.Standby.Until) {
			sc.jobs.start(wg, "standby/"+app.Name, func() {
				sc.dropStandby(ctx, app.Name, app.Standby.Release, "its time is up")
			})
		}
	}
	if sc.cfg.MinAvailableMemory > 0 {
		sc.jobs.start(wg, "pressure", func() { sc.relievePressure(ctx, apps) })
	}
}

// relievePressure gives up one warm thing when the host's available memory
// is below the minimum: the oldest standby first (a rollback can start
// containers), else the warm app asleep longest.
func (sc *Scaler) relievePressure(ctx context.Context, apps []store.App) {
	avail, err := sc.availableMemory()
	if err != nil {
		if !sc.jobs.warned.Swap(true) { // once: it fails the same way every tick
			sc.log.Warn("memory pressure check off: cannot read the available memory", "err", err)
		}
		return
	}
	if avail >= sc.cfg.MinAvailableMemory {
		return
	}
	why := fmt.Sprintf("memory pressure: %d MiB available, below the minimum of %d MiB", avail>>20, sc.cfg.MinAvailableMemory>>20)
	app, standby, ok := pressureVictim(apps)
	switch {
	case !ok:
		return
	case standby:
		sc.dropStandby(ctx, app.Name, app.Standby.Release, why)
	default:
		sc.goCold(ctx, app.Name, why)
	}
}

// pressureVictim picks what memory pressure gives up first: the standby
// made first, else the warm app asleep longest.
func pressureVictim(apps []store.App) (app store.App, standby, ok bool) {
	var standbys, warm []store.App
	for _, a := range apps {
		if a.Active == 0 {
			continue
		}
		if a.Standby.Release != 0 {
			standbys = append(standbys, a)
		}
		if a.Asleep && a.Warm {
			warm = append(warm, a)
		}
	}
	if len(standbys) > 0 {
		return slices.MinFunc(standbys, func(a, b store.App) int { return a.Standby.Until.Compare(b.Standby.Until) }), true, true
	}
	if len(warm) > 0 {
		return slices.MinFunc(warm, func(a, b store.App) int { return a.AsleepSince.Compare(b.AsleepSince) }), false, true
	}
	return store.App{}, false, false
}

func (sc *Scaler) availableMemory() (int64, error) {
	if sc.cfg.AvailableMemory != nil {
		return sc.cfg.AvailableMemory()
	}
	return ReadMemAvailable(DefaultMeminfo)
}

// goCold stops the paused containers of a warm app: it stays asleep, cold.
func (sc *Scaler) goCold(ctx context.Context, appName, why string) {
	sc.withLockedApp(ctx, appName, func(app store.App) {
		if !app.Asleep || !app.Warm {
			return
		}
		sc.frozen.forget(app.Name)
		byIndex, err := sc.releaseContainers(ctx, app.Name, app.Active)
		if err != nil {
			sc.log.Warn("go cold", "app", app.Name, "err", err)
			return
		}
		for _, c := range byIndex {
			if c.Running {
				sc.stopPaused(ctx, app.Name, c)
			}
		}
		if err := sc.store.UpdateApp(app.Name, func(a *store.App) error { a.Warm = false; return nil }); err != nil {
			sc.log.Error("record cold sleep", "app", app.Name, "err", err)
			return
		}
		sc.event(app.Name, "sleeping-cold", app.Active, "%s: stopped %d paused %s", why, len(byIndex), plural(len(byIndex), "replica", "replicas"))
	})
}

// stopPaused stops a container (thawed first, so the app gets its SIGTERM)
// and keeps it for a wake.
func (ct *containers) stopPaused(ctx context.Context, app string, c engine.ContainerInfo) {
	if c.Paused {
		if err := ct.engine.Unpause(ctx, c.ID); err != nil && !errors.Is(err, engine.ErrNotFound) {
			ct.log.Warn("unpause container", "app", app, "id", shortID(c.ID), "err", err)
		}
	}
	ct.stopKeep(ctx, app, c.ID)
}

// dropStandby removes app's standby if it is still of release.
func (sc *Scaler) dropStandby(ctx context.Context, appName string, release int, why string) {
	sc.withLockedApp(ctx, appName, func(app store.App) {
		if app.Standby.Release != release {
			return
		}
		sc.removeStandby(ctx, app, why)
	})
}

// removeStandby removes app's standby containers and forgets it; the
// caller holds the replica lock.
func (rs *replicaSet) removeStandby(ctx context.Context, app store.App, why string) {
	sb := app.Standby
	if sb.Release == 0 {
		return
	}
	if err := rs.store.UpdateApp(app.Name, func(a *store.App) error { a.Standby = store.Standby{}; return nil }); err != nil {
		rs.log.Error("record standby dropped", "app", app.Name, "err", err)
		return
	}
	for _, id := range sb.IDs {
		rs.remove(id)
	}
	rs.event(app.Name, "standby-dropped", sb.Release, "%s: removed the %d paused %s of v%d", why, len(sb.IDs), plural(len(sb.IDs), "replica", "replicas"), sb.Release)
}

// standbyFor returns app's standby if a rollback to version can use it.
func standbyFor(app store.App, version int, now time.Time) (store.Standby, bool) {
	sb := app.Standby
	return sb, sb.Release != 0 && sb.Release == version && len(sb.IDs) > 0 && now.Before(sb.Until)
}
