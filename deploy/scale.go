package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

// Scaling defaults and limits.
const (
	DefaultIdle           = 5 * time.Minute
	DefaultTarget         = 10 // in-flight requests per replica
	DefaultScaleInterval  = 250 * time.Millisecond
	DefaultScaleUpDelay   = 2 * time.Second
	DefaultScaleDownDelay = 30 * time.Second
	MaxReplicas           = 20
	MinIdle               = time.Second
	// loadSmoothing is the weight of a new in-flight sample in the moving
	// average the autoscaler decides on, so one burst does not add replicas.
	loadSmoothing = 0.3
	// wakeProbePause is the pause between health probes of a waking
	// replica: a request is waiting, and a refused connection costs little.
	wakeProbePause = 5 * time.Millisecond
	wakeAliveEvery = 100 * time.Millisecond
)

// ErrInvalidScale: the scale settings asked for are impossible.
var ErrInvalidScale = errors.New("invalid scale")

// EffectiveScale fills in the defaults: settings never set mean one
// replica, always.
func EffectiveScale(s store.Scale) store.Scale {
	if s.Max == 0 {
		s.Min, s.Max = 1, 1
	}
	if s.Idle <= 0 {
		s.Idle = DefaultIdle
	}
	if s.Target <= 0 {
		s.Target = DefaultTarget
	}
	return s
}

// awakeReplicas is how many replicas app runs while awake.
func awakeReplicas(app store.App) int {
	s := EffectiveScale(app.Scale)
	return min(max(app.Replicas, s.Min, 1), s.Max)
}

// ScaleChange changes an app's scale settings; nil fields stay as they are.
type ScaleChange struct {
	// Replicas sets a fixed number of replicas (Min = Max = Replicas),
	// unless Min or Max are given too.
	Replicas *int
	Min      *int
	Max      *int
	Idle     *time.Duration
	Target   *int
}

// Validate checks c against the current settings s without applying it.
func (c ScaleChange) Validate(s store.Scale) error {
	_, err := c.apply(s)
	return err
}

// apply returns s changed by c, or an error saying what is wrong.
func (c ScaleChange) apply(s store.Scale) (store.Scale, error) {
	s = EffectiveScale(s)
	if c.Replicas != nil {
		if *c.Replicas < 1 || *c.Replicas > MaxReplicas {
			return s, fmt.Errorf("%w: web=%d: run 1 to %d replicas; to let the app sleep when idle use --min 0", ErrInvalidScale, *c.Replicas, MaxReplicas)
		}
		s.Min, s.Max = *c.Replicas, *c.Replicas
	}
	if c.Min != nil {
		s.Min = *c.Min
		if c.Max == nil && c.Replicas == nil && s.Max < s.Min {
			s.Max = s.Min
		}
	}
	if c.Max != nil {
		s.Max = *c.Max
	}
	if c.Idle != nil {
		s.Idle = *c.Idle
	}
	if c.Target != nil {
		s.Target = *c.Target
	}
	switch {
	case s.Min < 0 || s.Min > MaxReplicas:
		return s, fmt.Errorf("%w: min %d: use 0 (sleep when idle) to %d", ErrInvalidScale, s.Min, MaxReplicas)
	case s.Max < 1 || s.Max > MaxReplicas:
		return s, fmt.Errorf("%w: max %d: use 1 to %d", ErrInvalidScale, s.Max, MaxReplicas)
	case s.Min > s.Max:
		return s, fmt.Errorf("%w: min %d is above max %d", ErrInvalidScale, s.Min, s.Max)
	case s.Idle < MinIdle:
		return s, fmt.Errorf("%w: idle %s: use at least %s", ErrInvalidScale, s.Idle, MinIdle)
	case s.Target < 1:
		return s, fmt.Errorf("%w: target %d: use at least 1 request in flight per replica", ErrInvalidScale, s.Target)
	}
	return s, nil
}

// DescribeScale says what the settings do, e.g. "web=1..3, sleeps after 5m
// idle, target 10 requests in flight per replica".
func DescribeScale(s store.Scale) string {
	s = EffectiveScale(s)
	parts := []string{fmt.Sprintf("web=%d", s.Min)}
	if s.Max != s.Min {
		parts[0] = fmt.Sprintf("web=%d..%d", s.Min, s.Max)
	}
	if s.Min == 0 {
		parts = append(parts, "sleeps after "+s.Idle.String()+" idle")
	}
	if s.Max > max(s.Min, 1) {
		parts = append(parts, fmt.Sprintf("target %d requests in flight per replica", s.Target))
	}
	return strings.Join(parts, ", ")
}

// Scale changes app's scale settings and applies them: replicas are added
// (healthy before they get traffic) or removed (drained first), a sleeping
// app whose minimum is now above zero is woken. Scale settings belong to the
// app, not to a release, so a rollback keeps them; each change is an event.
func (d *Deployer) Scale(ctx context.Context, appName string, change ScaleChange, out io.Writer) (store.App, error) {
	_, l, err := d.lockApp(ctx, appName, false, out)
	if err != nil {
		return store.App{}, err
	}
	defer l.Release()
	ctx = l.Context()
	unlock, err := d.locks.lockReplicas(ctx, appName)
	if err != nil {
		return store.App{}, err
	}
	defer unlock()
	// Read under both locks: a wake or a sleep may have come in between.
	app, err := d.store.GetApp(appName)
	if err != nil {
		return store.App{}, fmt.Errorf("app %s: %w", appName, err)
	}
	s, err := change.apply(app.Scale)
	if err != nil {
		return app, err
	}
	n := min(max(app.Replicas, s.Min, 1), s.Max)
	if change.Replicas != nil {
		n = min(max(*change.Replicas, s.Min, 1), s.Max)
	}
	// The replicas change first; the settings are saved only when that
	// worked, so a failed scale-up leaves the app as it was, settings too.
	app.Scale, app.Replicas = s, n
	step(out, "Scale of %s: %s", appName, DescribeScale(s))
	switch {
	case app.Active == 0:
		step(out, "Saved; it takes effect with the first push")
	case app.Asleep && s.Min > 0:
		step(out, "Waking %s: its minimum is now %d", appName, s.Min)
		err = d.wakeLocked(ctx, app, out)
	case app.Asleep:
		step(out, "%s sleeps; the next request wakes it with %d %s", appName, n, plural(n, "replica", "replicas"))
	default:
		d.load.touch(appName)
		err = d.resize(ctx, app, n, out)
	}
	if err != nil {
		return app, fmt.Errorf("scale unchanged: %w", err)
	}
	if err := d.store.UpdateApp(appName, func(a *store.App) error { a.Scale, a.Replicas = s, n; return nil }); err != nil {
		return app, err
	}
	d.event(appName, "scaled", app.Active, "%s", DescribeScale(s))
	return d.store.GetApp(appName)
}

// SleepingReplicas lists the stopped containers of a sleeping app's active
// release, as the replicas they become on a wake.
func (d *Deployer) SleepingReplicas(ctx context.Context, appName string) []Replica {
	app, err := d.store.GetApp(appName)
	if err != nil || app.Active == 0 || !app.Asleep {
		return nil
	}
	byIndex, err := d.releaseContainers(ctx, app.Name, app.Active)
	if err != nil {
		return nil
	}
	var reps []Replica
	for idx, c := range byIndex {
		reps = append(reps, d.replica(app.Name, app.Active, idx, c))
	}
	slices.SortFunc(reps, func(a, b Replica) int { return a.Index - b.Index })
	return reps
}

// Wake starts a sleeping app and routes it; the router calls it, once at a
// time per app, for requests to a sleeping app and holds them meanwhile. It
// takes only the replica lock: a deploy of the app (its build, its health
// check) does not hold it up.
func (d *Deployer) Wake(ctx context.Context, appName string) error {
	unlock, err := d.locks.lockReplicas(ctx, appName)
	if err != nil {
		return err
	}
	defer unlock()
	app, err := d.store.GetApp(appName)
	if err != nil {
		return fmt.Errorf("app %s: %w", appName, err)
	}
	switch {
	case app.Active == 0:
		return fmt.Errorf("%w: %s has not been deployed yet", ErrNoRelease, appName)
	case !app.Asleep:
		return nil // a deploy or an earlier wake was first
	}
	return d.wakeLocked(ctx, app, io.Discard)
}

// wakeLocked starts the stopped replicas of app's active release (or new
// ones where they are gone), waits until they answer, and routes them. On
// failure the app stays asleep: the next request tries again.
func (d *Deployer) wakeLocked(ctx context.Context, app store.App, out io.Writer) error {
	started := time.Now()
	rel, err := d.store.GetRelease(app.Name, app.Active)
	if err != nil {
		return fmt.Errorf("active release: %w", err)
	}
	byIndex, err := d.releaseContainers(ctx, app.Name, rel.Version)
	if err != nil {
		return err
	}
	n := awakeReplicas(app)
	reps := make([]Replica, n)
	errs := make([]error, n)
	var engineTime, readyTime time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		idx := i + 1
		c, found := byIndex[idx]
		wg.Go(func() {
			r, startTook, readyTook, _, err := d.bringUp(ctx, app, rel, idx, c, found)
			reps[i], errs[i] = r, err
			mu.Lock()
			engineTime, readyTime = max(engineTime, startTook), max(readyTime, readyTook)
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		// Back to sleep as a whole, including a replica that started but
		// never answered: the next request tries again.
		for _, r := range reps {
			if r.ID != "" {
				d.stopKeep(context.WithoutCancel(ctx), app.Name, r.ID)
			}
		}
		d.event(app.Name, "wake-failed", rel.Version, "%v", err)
		return fmt.Errorf("wake %s: %w", app.Name, err)
	}
	if _, err := d.route(app.Name, reps); err != nil {
		return fmt.Errorf("route woken replicas: %w", err)
	}
	took := time.Since(started)
	d.load.touch(app.Name)
	if err := d.store.UpdateApp(app.Name, func(a *store.App) error { a.Asleep = false; return nil }); err != nil {
		d.log.Error("record wake", "app", app.Name, "err", err)
	}
	step(out, "Woke %s in %s", app.Name, roundDuration(took))
	d.event(app.Name, "woke", rel.Version, "%d %s serving after %s (engine start %s, app ready %s later)",
		n, plural(n, "replica", "replicas"), roundDuration(took), roundDuration(engineTime), roundDuration(readyTime))
	return nil
}

// restart starts a stopped replica again and waits until it answers. The
// probes come close together: a request is waiting.
func (d *Deployer) restart(ctx context.Context, app store.App, rel store.Release, idx int, c engine.ContainerInfo) (r Replica, startTook, readyTook time.Duration, err error) {
	t0 := time.Now()
	if !c.Running {
		if err := d.engine.Start(ctx, c.ID); err != nil {
			return Replica{}, 0, 0, fmt.Errorf("start %s: %w", c.Name, err)
		}
	}
	info, err := d.engine.Inspect(ctx, c.ID)
	if err != nil {
		return Replica{}, 0, 0, fmt.Errorf("inspect %s: %w", c.Name, err)
	}
	r = d.replica(app.Name, rel.Version, idx, info)
	if info.HostAddr == "" {
		return r, 0, 0, fmt.Errorf("%s is not running (state %s)", c.Name, info.State)
	}
	t1 := time.Now()
	hc := withHealthDefaults(app.Health)
	checker := healthChecker{
		check:      hc,
		probe:      httpProbe(d.probe, info.HostAddr, hc.Path),
		alive:      func(ctx context.Context) error { return d.alive(ctx, c.ID) },
		pause:      func(int) time.Duration { return wakeProbePause },
		aliveEvery: wakeAliveEvery,
	}
	if err := checker.wait(ctx); err != nil {
		return r, 0, 0, fmt.Errorf("%s: health check failed: %w", r.Name, err)
	}
	return r, t1.Sub(t0), time.Since(t1), nil
}

// sleep stops app's replicas (keeping the containers) and routes its hosts
// to wake it, if it still qualifies: minimum 0, awake, idle long enough.
func (d *Deployer) sleep(ctx context.Context, appName string, idle time.Duration) {
	d.withLockedApp(ctx, appName, func(app store.App) {
		s := EffectiveScale(app.Scale)
		if app.Asleep || s.Min > 0 || d.load.idleFor(appName, time.Now()) < s.Idle {
			return
		}
		// Asleep is recorded first: the containers' exits that follow must
		// not look like crashes, and a daemon that dies halfway finishes
		// putting the app to sleep when it starts again.
		if err := d.store.UpdateApp(appName, func(a *store.App) error { a.Asleep = true; return nil }); err != nil {
			d.log.Error("record sleep", "app", appName, "err", err)
			return
		}
		reps := d.routed.get(appName)
		drainOld, err := d.routeAsleep(appName)
		if err != nil {
			d.log.Error("route sleeping app", "app", appName, "err", err)
			return
		}
		d.drain(ctx, drainOld, io.Discard)
		for _, r := range reps {
			d.stopKeep(ctx, appName, r.ID)
		}
		d.event(appName, "sleeping", app.Active, "no requests for %s; stopped %d %s, the next request wakes it",
			idle.Round(time.Second), len(reps), plural(len(reps), "replica", "replicas"))
	})
}

// stopKeep stops a container and keeps it for a wake.
func (d *Deployer) stopKeep(ctx context.Context, app, id string) {
	if err := d.engine.Stop(ctx, id, d.cfg.StopTimeout); err != nil && !errors.Is(err, engine.ErrNotFound) {
		d.log.Warn("stop container", "app", app, "id", shortID(id), "err", err)
	}
}

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

// appLoads is the autoscaler's memory of each app's recent traffic.
type appLoads struct {
	mu   sync.Mutex
	apps map[string]*appLoad
}

type appLoad struct {
	requests   uint64
	backends   int
	lastActive time.Time
	avg        float64   // moving average of requests in flight
	highSince  time.Time // avg per replica above target since
	lowSince   time.Time // avg fits in fewer replicas since
	busy       bool      // an autoscale is running
	sleeping   bool      // a sleep was started
}

// decision is what the autoscaler should do for one app.
type decision struct {
	sleep    bool
	idle     time.Duration
	replicas int // 0: no change
	why      string
}

func (l *appLoads) get(app string, now time.Time) *appLoad {
	if l.apps == nil {
		l.apps = map[string]*appLoad{}
	}
	a, ok := l.apps[app]
	if !ok {
		a = &appLoad{lastActive: now}
		l.apps[app] = a
	}
	return a
}

// touch records activity that the router does not count (a deploy, a wake).
func (l *appLoads) touch(app string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.get(app, time.Now())
	a.lastActive, a.sleeping = time.Now(), false
}

func (l *appLoads) forget(app string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.apps, app)
}

func (l *appLoads) done(app string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a, ok := l.apps[app]; ok {
		a.busy = false
	}
}

func (l *appLoads) idleFor(app string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return now.Sub(l.get(app, now).lastActive)
}

// observe takes one traffic sample and decides.
func (l *appLoads) observe(app string, st TrafficStats, now time.Time, s store.Scale, cfg Config) decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.get(app, now)
	if st.Requests != a.requests || st.InFlight > 0 || st.Backends != a.backends {
		a.lastActive, a.sleeping = now, false
	}
	a.requests, a.backends = st.Requests, st.Backends
	a.avg += loadSmoothing * (float64(st.InFlight) - a.avg)

	if idle := now.Sub(a.lastActive); s.Min == 0 && idle >= s.Idle && !a.sleeping {
		a.sleeping = true
		return decision{sleep: true, idle: idle}
	}
	floor := max(s.Min, 1)
	if s.Max <= floor || a.busy {
		a.highSince, a.lowSince = time.Time{}, time.Time{}
		return decision{}
	}
	target := float64(s.Target)
	n := st.Backends
	// The replicas the smoothed load needs at the target, within bounds.
	need := min(max(int(math.Ceil(a.avg/target)), floor), s.Max)
	var dec decision
	switch {
	case need > n:
		if a.highSince.IsZero() {
			a.highSince = now
		}
		a.lowSince = time.Time{}
		if now.Sub(a.highSince) >= cfg.ScaleUpDelay {
			dec = decision{replicas: need, why: fmt.Sprintf("%.1f requests in flight on %d %s for %s, target %d per replica",
				a.avg, n, plural(n, "replica", "replicas"), now.Sub(a.highSince).Round(100*time.Millisecond), s.Target)}
		}
	case need < n:
		if a.lowSince.IsZero() {
			a.lowSince = now
		}
		a.highSince = time.Time{}
		if now.Sub(a.lowSince) >= cfg.ScaleDownDelay {
			// One step down at a time: load that just fell may come back.
			dec = decision{replicas: n - 1, why: fmt.Sprintf("%.1f requests in flight for %s fit in %d %s at target %d",
				a.avg, now.Sub(a.lowSince).Round(time.Second), n-1, plural(n-1, "replica", "replicas"), s.Target)}
		}
	default:
		a.highSince, a.lowSince = time.Time{}, time.Time{}
	}
	if dec.replicas != 0 {
		a.busy, a.highSince, a.lowSince = true, time.Time{}, time.Time{}
	}
	return dec
}
