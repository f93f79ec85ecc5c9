package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

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
	if s.ColdAfter == 0 {
		s.ColdAfter = DefaultColdAfter
	}
	return s
}

// coldAfter is how long a sleeping app with settings s stays warm; 0: it
// goes cold at once (store.Scale keeps that as a negative ColdAfter).
func coldAfter(s store.Scale) time.Duration {
	return max(EffectiveScale(s).ColdAfter, 0)
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
	// ColdAfter is how long a sleeping app stays warm (paused) before it
	// is stopped; 0: stop at once, no warm stage.
	ColdAfter *time.Duration
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
	if c.ColdAfter != nil {
		if *c.ColdAfter < 0 {
			return s, fmt.Errorf("%w: cold-after %s: use 0 (stop at once) or a positive duration", ErrInvalidScale, *c.ColdAfter)
		}
		s.ColdAfter = *c.ColdAfter
		if s.ColdAfter == 0 {
			s.ColdAfter = -1 // stored: at once, not the default
		}
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
		sleep := "sleeps after " + s.Idle.String() + " idle"
		if ca := coldAfter(s); ca > 0 {
			sleep += " (paused, stopped after " + ca.String() + ")"
		}
		parts = append(parts, sleep)
	}
	if s.Max > max(s.Min, 1) {
		parts = append(parts, fmt.Sprintf("target %d requests in flight per replica", s.Target))
	}
	return strings.Join(parts, ", ")
}

// Scaler changes how many replicas an app runs: by hand (Scale), to none
// when it is idle (sleep) and back on a request (Wake), and with its load
// (Autoscale).
type Scaler struct {
	*replicaSet
	*guard
	load *appLoads
	jobs warmJobs
}

// Scale changes app's scale settings and applies them: replicas are added
// (healthy before they get traffic) or removed (drained first), a sleeping
// app whose minimum is now above zero is woken. Scale settings belong to the
// app, not to a release, so a rollback keeps them; each change is an event.
func (sc *Scaler) Scale(ctx context.Context, appName string, change ScaleChange, out io.Writer) (store.App, error) {
	_, l, err := sc.lockApp(ctx, appName, false, out)
	if err != nil {
		return store.App{}, err
	}
	defer l.Release()
	ctx = l.Context()
	unlock, err := sc.locks.lockReplicas(ctx, appName)
	if err != nil {
		return store.App{}, err
	}
	defer unlock()
	// Read under both locks: a wake or a sleep may have come in between.
	app, err := sc.store.GetApp(appName)
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
		err = sc.wakeLocked(ctx, app, out)
	case app.Asleep:
		step(out, "%s sleeps; the next request wakes it with %d %s", appName, n, plural(n, "replica", "replicas"))
	default:
		sc.load.touch(appName)
		err = sc.resize(ctx, app, n, out)
	}
	if err != nil {
		return app, fmt.Errorf("scale unchanged: %w", err)
	}
	if err := sc.store.UpdateApp(appName, func(a *store.App) error { a.Scale, a.Replicas = s, n; return nil }); err != nil {
		return app, err
	}
	sc.event(appName, "scaled", app.Active, "%s", DescribeScale(s))
	return sc.store.GetApp(appName)
}
