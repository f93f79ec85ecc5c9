package deploy

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/plat-paas/plat/store"
)

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
