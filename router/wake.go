package router

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/plat-paas/plat/internal/latency"
)

// wakeCall is one run of the waker for an app, shared by every request
// that arrives while it runs.
type wakeCall struct {
	done chan struct{} // closed when the waker returned
	err  error         // the waker's error; set before done is closed
}

// errWakeWaitTimeout is what a request that waited WakeTimeout reports.
var errWakeWaitTimeout = errors.New("it is still starting")

// wokenAlready is the call a request joins when the app was woken between
// its table load and its wake: nothing to wait for.
var wokenAlready = func() *wakeCall {
	c := &wakeCall{done: make(chan struct{})}
	close(c.done)
	return c
}()

// SetWaker installs the function the router calls to wake an asleep app.
// It must block until the app's new backends are installed with Set (then
// return nil) or the wake failed (error). The router calls it at most once
// at a time per app: concurrent requests for a sleeping app share one call.
// The call's context is not any request's (a client that goes away must
// not cancel the wake for the others): it is context.Background with
// Options.WakeTimeout.
func (r *Router) SetWaker(wake func(ctx context.Context, app string) error) {
	r.wakeMu.Lock()
	defer r.wakeMu.Unlock()
	r.waker = wake
}

// serveAsleep holds req while the app of rt, asleep, is woken, then proxies
// it to the backends the waker installed. host is req's normalized host,
// bucket its bucket cookie (-1 if none).
func (r *Router) serveAsleep(w http.ResponseWriter, req *http.Request, rt *route, host string, bucket int) {
	rt.asleepRequests.Add(1)
	call := r.wake(rt.app)
	if call == nil { // no waker: nobody can start the app
		r.unavailable(w, rt)
		return
	}
	timer := time.NewTimer(r.wakeTimeout)
	defer timer.Stop()
	select {
	case <-call.done:
	case <-req.Context().Done():
		r.logger.Debug("router: client closed request while the app woke up",
			"app", rt.app, "status", StatusClientClosedRequest)
		return
	case <-timer.C:
		r.wakeFailed(w, req, rt.app, errWakeWaitTimeout)
		return
	}
	if call.err != nil {
		r.wakeFailed(w, req, rt.app, call.err)
		return
	}
	t := r.table.Load()
	rt = t.hosts[host]
	var cookie string
	if rt != nil && rt.canary != nil && bucket < 0 {
		bucket, cookie = newBucket(req)
	}
	rt, g, i := r.pickIn(t, host, selector{bucket: bucket}, nil)
	switch {
	case rt == nil: // the app was removed meanwhile
		r.notFound(w, host)
	case i < 0: // the waker reported success but routed nothing
		r.unavailable(w, rt)
	default:
		r.proxy(w, req, g, i, cookie)
	}
}

// wake returns the running wake of app, starting one if none runs, or nil
// if no waker is installed.
func (r *Router) wake(app string) *wakeCall {
	r.wakeMu.Lock()
	defer r.wakeMu.Unlock()
	if r.waker == nil {
		return nil
	}
	if c, ok := r.wakes[app]; ok {
		return c
	}
	// A wake that just finished installed the backends before it left the
	// map: a request that saw the asleep route before that must not start
	// another one.
	if rt, ok := r.table.Load().apps[app]; ok && !rt.asleep {
		return wokenAlready
	}
	c := &wakeCall{done: make(chan struct{})}
	r.wakes[app] = c
	go r.runWake(app, r.waker, c)
	return c
}

// runWake calls wake for app and publishes its result to the requests
// waiting on c.
func (r *Router) runWake(app string, wake func(context.Context, string) error, c *wakeCall) {
	ctx, cancel := context.WithTimeout(context.Background(), r.wakeTimeout)
	defer cancel()
	start := time.Now()
	err := wake(ctx, app)
	if err != nil {
		r.logger.Error("router: app did not wake up", "app", app, "duration", time.Since(start), "error", err)
	} else {
		r.logger.Info("router: app woke up", "app", app, "duration", time.Since(start))
	}
	c.err = err
	r.wakeMu.Lock()
	wc := r.wakeStats[app]
	if wc == nil {
		wc = new(wakeCounters)
		r.wakeStats[app] = wc
	}
	if err != nil {
		wc.failed++
	} else {
		wc.ok++
	}
	wc.latency.Record(time.Since(start))
	delete(r.wakes, app)
	r.wakeMu.Unlock()
	close(c.done)
}

// wakeFailed answers a request whose app could not be woken in time.
func (r *Router) wakeFailed(w http.ResponseWriter, req *http.Request, app string, err error) {
	r.logger.Warn("router: request for a sleeping app failed", "app", app,
		"status", http.StatusGatewayTimeout, "method", req.Method, "host", req.Host, "path", req.URL.Path, "error", err)
	page := "504 gateway timeout: app " + app + " did not wake up within " + r.wakeTimeout.String() +
		": " + err.Error() + "; see what it says with: plat logs " + app + "\n"
	writePage(w, http.StatusGatewayTimeout, []byte(page))
}

// wakeCounters count an app's wakes.
type wakeCounters struct {
	ok, failed uint64
	latency    latency.Histogram
}

// WakeStats are an app's wakes since the router started.
type WakeStats struct {
	Woken, Failed uint64
	// Latency of every wake, woken or failed: from the first request that
	// found the app asleep to the waker's return.
	Latency latency.Snapshot
}

// WakeStats returns the wakes of every app that was woken at least once.
func (r *Router) WakeStats() map[string]WakeStats {
	r.wakeMu.Lock()
	defer r.wakeMu.Unlock()
	out := make(map[string]WakeStats, len(r.wakeStats))
	for app, c := range r.wakeStats {
		out[app] = WakeStats{Woken: c.ok, Failed: c.failed, Latency: c.latency.Snapshot()}
	}
	return out
}
