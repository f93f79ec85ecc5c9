package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/plat-paas/plat/store"
)

// Health-check defaults, used for every field an app leaves at zero.
const (
	DefaultHealthPath     = "/"
	DefaultHealthTimeout  = 2 * time.Second
	DefaultHealthInterval = 200 * time.Millisecond
	DefaultHealthDeadline = 60 * time.Second
	// firstProbeInterval is the pause after the first failed probe; it
	// doubles up to the configured interval, so an app that is ready in
	// 30ms is not made to wait a whole interval.
	firstProbeInterval = 20 * time.Millisecond
)

// Health-check bounds (ValidateHealth). A shorter interval turns the probe
// loop into a busy loop on the daemon; a longer deadline keeps a failing
// deploy (and the app's deploy lock) for that long.
const (
	MinHealthInterval = 100 * time.Millisecond
	MinHealthTimeout  = 100 * time.Millisecond
	MaxHealthTimeout  = 60 * time.Second
	MaxHealthDeadline = 15 * time.Minute
	MaxHealthPathLen  = 1024
)

// withHealthDefaults fills the zero fields of hc with the defaults and
// brings out-of-bounds values (stored before the bounds existed) within
// them, so an old setting cannot make the daemon spin.
func withHealthDefaults(hc store.HealthCheck) store.HealthCheck {
	if hc.Path == "" || validateHealthPath(hc.Path) != nil {
		hc.Path = DefaultHealthPath
	}
	if hc.Timeout <= 0 {
		hc.Timeout = DefaultHealthTimeout
	}
	if hc.Interval <= 0 {
		hc.Interval = DefaultHealthInterval
	}
	if hc.Deadline <= 0 {
		hc.Deadline = DefaultHealthDeadline
	}
	hc.Timeout = min(max(hc.Timeout, MinHealthTimeout), MaxHealthTimeout)
	hc.Deadline = min(hc.Deadline, MaxHealthDeadline)
	hc.Interval = min(max(hc.Interval, MinHealthInterval), hc.Deadline)
	hc.Deadline = max(hc.Deadline, hc.Interval)
	return hc
}

// ClampHealth brings the set fields of hc within the bounds and keeps zero
// fields zero ("the default"): what an app stored before the bounds existed
// becomes a setting ValidateHealth accepts.
func ClampHealth(hc store.HealthCheck) store.HealthCheck {
	eff := withHealthDefaults(hc)
	if hc.Path != "" {
		hc.Path = eff.Path
	}
	if hc.Timeout != 0 {
		hc.Timeout = eff.Timeout
	}
	if hc.Interval != 0 {
		hc.Interval = eff.Interval
	}
	if hc.Deadline != 0 {
		hc.Deadline = eff.Deadline
	}
	return hc
}

// errExited is wrapped by healthChecker.wait when the container stopped
// during the check: waiting longer cannot help.
var errExited = errors.New("container exited")

// healthChecker probes one new container until it answers or gives up.
type healthChecker struct {
	check store.HealthCheck
	// probe makes one attempt; nil error and status < 500 means healthy.
	probe func(ctx context.Context) (status int, err error)
	// alive reports whether the container still runs; a non-nil error
	// (wrapping errExited) ends the check at once.
	alive func(ctx context.Context) error
	// pause is the wait after failed attempt n (from 1); nil: probePause.
	pause func(attempt int) time.Duration
	// aliveEvery spaces the alive checks when probes come fast (each one
	// asks the engine); 0 checks before every probe. With aliveEvery set,
	// the first check comes after that time: the caller just saw it run.
	aliveEvery time.Duration
}

// httpProbe returns a probe that GETs path on addr.
func httpProbe(client *http.Client, addr, path string) func(ctx context.Context) (int, error) {
	url := "http://" + addr + path
	return func(ctx context.Context) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("User-Agent", "plat-health-check")
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return resp.StatusCode, nil
	}
}

// wait returns nil once a probe succeeds, or an error saying why the
// container never became healthy: it exited, or the deadline passed (with
// the last probe result).
func (h healthChecker) wait(parent context.Context) error {
	hc := withHealthDefaults(h.check)
	ctx, cancel := context.WithTimeout(parent, hc.Deadline)
	defer cancel()
	var last string
	var lastAlive time.Time
	if h.aliveEvery > 0 {
		lastAlive = time.Now()
	}
	for attempt := 1; ; attempt++ {
		if time.Since(lastAlive) >= h.aliveEvery {
			if err := h.alive(ctx); err != nil {
				return err
			}
			lastAlive = time.Now()
		}
		actx, acancel := context.WithTimeout(ctx, hc.Timeout)
		status, err := h.probe(actx)
		acancel()
		switch {
		case err == nil && status < 500:
			return nil
		case err == nil:
			last = fmt.Sprintf("GET %s answered %d", hc.Path, status)
		default:
			last = fmt.Sprintf("GET %s: %v", hc.Path, err)
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return parent.Err()
			}
			if err := h.alive(context.WithoutCancel(ctx)); err != nil {
				return err
			}
			return fmt.Errorf("not healthy after %s (%d attempts); last: %s", hc.Deadline, attempt, last)
		case <-time.After(h.pauseAfter(attempt, hc.Interval)):
		}
	}
}

func (h healthChecker) pauseAfter(attempt int, interval time.Duration) time.Duration {
	if h.pause != nil {
		return h.pause(attempt)
	}
	return probePause(attempt, interval)
}

// probePause is the pause after failed attempt n (from 1): 20ms, 40ms, ...
// up to interval.
func probePause(attempt int, interval time.Duration) time.Duration {
	p := firstProbeInterval << min(attempt-1, 16)
	return min(p, interval)
}
