package router

import (
	"net/http"
	"time"
)

// serveHeld holds req while the app of rt has no backend (Route.Hold) until
// a Set gives it some, then serves it with the new route; after the
// route's hold timeout it answers 503 with Retry-After. Unlike an asleep
// app, nothing is woken: the deploy that set the hold installs the
// backends. host is req's normalized host, bucket its bucket (-1 if none).
func (r *Router) serveHeld(w http.ResponseWriter, req *http.Request, rt *route, host string, bucket int) {
	rt.asleepRequests.Add(1)
	start := time.Now()
	timer := time.NewTimer(rt.holdTimeout)
	defer timer.Stop()
	for {
		select {
		case <-rt.replaced:
		case <-req.Context().Done():
			r.logger.Debug("router: client closed request while the app was held",
				"app", rt.app, "status", StatusClientClosedRequest)
			return
		case <-timer.C:
			r.holdExpired(w, req, rt, time.Since(start))
			return
		}
		t := r.table.Load()
		if nrt := t.hosts[host]; nrt != nil && nrt.hold {
			rt = nrt // held still (e.g. a domain change): wait on the new route
			continue
		}
		r.serve(w, req, host, bucket, t)
		return
	}
}

// holdExpired answers a held request whose app got no backend in time.
func (r *Router) holdExpired(w http.ResponseWriter, req *http.Request, rt *route, waited time.Duration) {
	r.logger.Warn("router: held request timed out; the app got no backend in time", "app", rt.app,
		"status", http.StatusServiceUnavailable, "waited", waited.Round(time.Millisecond),
		"method", req.Method, "host", req.Host, "path", req.URL.Path)
	w.Header()["Retry-After"] = []string{r.retryAfter}
	page := "503 service unavailable: app " + rt.app + " is being redeployed and did not come back within " +
		rt.holdTimeout.String() + "; try again shortly, or see: plat logs " + rt.app + "\n"
	writePage(w, http.StatusServiceUnavailable, []byte(page))
}
