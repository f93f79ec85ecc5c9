package router

import (
	"bufio"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/plat-paas/plat/internal/latency"
)

// ReleaseStats are the counters of one release of an app since it was
// first routed (in either group of a split), for a canary analysis: take
// two and subtract to judge a step.
//
// A client request counts once, in the release whose group it was sent to,
// even when it was retried on another backend (retries stay in the group).
type ReleaseStats struct {
	Requests uint64 // client requests sent to the release (in flight included)
	// Responses by status class. Status5xx includes the 502/504 the router
	// answered itself (ProxyErrors), so the error rate is Status5xx/Requests.
	Status1xx, Status2xx, Status3xx, Status4xx, Status5xx uint64
	// NoStatus counts requests that ended without a response: the client
	// went away first.
	NoStatus uint64
	// ProxyErrors counts the requests the router answered 502 or 504
	// itself because the release's backends did not answer (connection
	// refused or reset, timeout, response head too large).
	ProxyErrors  uint64
	BytesWritten uint64 // response body bytes sent to clients
	InFlight     int64
	// Latency is the time from the router receiving the request to the
	// end of the response, of every request except upgrades (websockets).
	Latency latency.Snapshot
}

// releaseStats are a release's live counters.
type releaseStats struct {
	requests    atomic.Uint64
	status      [6]atomic.Uint64 // [0]: no status; [1..5]: 1xx..5xx
	proxyErrors atomic.Uint64
	bytes       atomic.Uint64
	inFlight    atomic.Int64
	latency     latency.Histogram
}

// statsOf returns the counters rt keeps for release, or new ones if rt is
// nil or does not route release.
func (rt *route) statsOf(release string) *releaseStats {
	if rt != nil {
		if rt.stable.release == release {
			return rt.stable.stats
		}
		if rt.canary != nil && rt.canary.release == release {
			return rt.canary.stats
		}
	}
	return new(releaseStats)
}

// ReleaseStats returns the counters of release in app's route; false if the
// route does not route release (in either group). Counters of a release
// end when it leaves the route: read them before the Set that removes it.
func (r *Router) ReleaseStats(app, release string) (ReleaseStats, bool) {
	rt, ok := r.table.Load().apps[app]
	if !ok {
		return ReleaseStats{}, false
	}
	var st *releaseStats
	switch {
	case rt.stable.release == release:
		st = rt.stable.stats
	case rt.canary != nil && rt.canary.release == release:
		st = rt.canary.stats
	default:
		return ReleaseStats{}, false
	}
	return st.snapshot(), true
}

// AppStats returns the counters of all of app's requests, whatever their
// release, since the app was first routed (they carry over every Set until
// Remove); false if no route has app. They never go back, so a sampler can
// subtract two to get an interval across deploys.
func (r *Router) AppStats(app string) (ReleaseStats, bool) {
	rt, ok := r.table.Load().apps[app]
	if !ok {
		return ReleaseStats{}, false
	}
	return rt.appStats.snapshot(), true
}

// Releases returns the release labels app's route has now: the stable
// group's first, then the canary's; unlabelled groups are left out.
func (r *Router) Releases(app string) []string {
	rt, ok := r.table.Load().apps[app]
	if !ok {
		return nil
	}
	var out []string
	if rt.stable.release != "" {
		out = append(out, rt.stable.release)
	}
	if rt.canary != nil && rt.canary.release != "" {
		out = append(out, rt.canary.release)
	}
	return out
}

// Apps returns the names of the apps the router has a route for.
func (r *Router) Apps() []string {
	t := r.table.Load()
	out := make([]string, 0, len(t.apps))
	for a := range t.apps {
		out = append(out, a)
	}
	return out
}

// snapshot reads st's counters.
func (st *releaseStats) snapshot() ReleaseStats {
	// In flight first: a request counted there is already in Requests.
	out := ReleaseStats{InFlight: st.inFlight.Load()}
	out.Status1xx = st.status[1].Load()
	out.Status2xx = st.status[2].Load()
	out.Status3xx = st.status[3].Load()
	out.Status4xx = st.status[4].Load()
	out.Status5xx = st.status[5].Load()
	out.NoStatus = st.status[0].Load()
	out.ProxyErrors = st.proxyErrors.Load()
	out.BytesWritten = st.bytes.Load()
	out.Latency = st.latency.Snapshot()
	out.Requests = st.requests.Load()
	return out
}

// recorder is the ResponseWriter the proxy writes to: it notes the status
// and body bytes for the release's counters and adds the bucket cookie to
// the final response head. Pooled: one per request in flight.
type recorder struct {
	w         http.ResponseWriter
	g         *group
	start     time.Time
	status    int
	bytes     uint64
	setCookie string
	// backend, method, path and client are set when the request is
	// logged (RequestLog); path without the query.
	backend, method, path, client string
}

func (r *Router) startRecording(w http.ResponseWriter, g *group, setCookie string) *recorder {
	rec, _ := r.recorders.Get().(*recorder)
	if rec == nil {
		rec = new(recorder)
	}
	*rec = recorder{w: w, g: g, start: time.Now(), setCookie: setCookie}
	for _, st := range [2]*releaseStats{g.stats, g.appStats} {
		st.requests.Add(1)
		st.inFlight.Add(1)
	}
	return rec
}

func (r *Router) endRecording(rec *recorder) {
	class := min(rec.status/100, 5)
	took := time.Since(rec.start)
	for _, st := range [2]*releaseStats{rec.g.stats, rec.g.appStats} {
		st.status[class].Add(1)
		if rec.bytes > 0 {
			st.bytes.Add(rec.bytes)
		}
		if class != 1 {
			st.latency.Record(took)
		}
		st.inFlight.Add(-1)
	}
	if rec.backend != "" {
		r.logRequest(rec, took)
	}
	*rec = recorder{}
	r.recorders.Put(rec)
}

func (rec *recorder) Header() http.Header { return rec.w.Header() }

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 && code >= 200 { // 1xx (e.g. 103 Early Hints) are not final
		rec.status = code
		if rec.setCookie != "" {
			h := rec.w.Header()
			h["Set-Cookie"] = append(h["Set-Cookie"], rec.setCookie)
		}
	}
	rec.w.WriteHeader(code)
}

func (rec *recorder) Write(p []byte) (int, error) {
	if rec.status == 0 {
		rec.WriteHeader(http.StatusOK)
	}
	n, err := rec.w.Write(p)
	rec.bytes += uint64(n)
	return n, err
}

// Unwrap lets http.ResponseController (which ReverseProxy uses to flush
// and to hijack) reach the server's writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.w }

// Hijack hands over the connection of an upgrade (websocket): the 101
// goes straight onto it, so note it here.
func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(rec.w).Hijack()
	if err == nil && rec.status == 0 {
		rec.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}
