package daemon

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/internal/latency"
	"github.com/plat-paas/plat/logs"
	"github.com/plat-paas/plat/metrics"
	"github.com/plat-paas/plat/router"
	"github.com/plat-paas/plat/store"
)

// Metrics settings.
const (
	// defaultMetricsSince is the window GET .../metrics answers without ?since.
	defaultMetricsSince = time.Hour
)

// metricsRoutes adds the metrics endpoints to the API mux.
func (s *server) metricsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/apps/{app}/metrics", s.appMetrics)
	mux.HandleFunc("PUT /api/apps/{app}/router-logs", s.setRouterLogs)
}

// appMetrics answers an app's traffic: ?since=1h (up to the retention,
// 24h), ?step=5m (whole minutes; default one point per minute).
func (s *server) appMetrics(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	sm := s.sampler
	since, step := defaultMetricsSince, sm.Interval()
	for name, dst := range map[string]*time.Duration{"since": &since, "step": &step} {
		v := r.URL.Query().Get(name)
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s=%q: give a positive duration like 1h, 30m or 24h", name, v))
			return
		}
		*dst = d
	}
	if since > sm.Retention() {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("since=%s is beyond what plat keeps: give %s or less", since, sm.Retention()))
		return
	}
	now := time.Now()
	out := api.AppMetrics{
		App: app.Name, Since: api.Duration(since), Step: api.Duration(step),
		Interval: api.Duration(sm.Interval()), Retention: api.Duration(sm.Retention()), Now: now,
		Points: []metrics.Point{}, Releases: []metrics.Series{},
		RouterLogs: !app.RouterLogsOff, RouterLogsDropped: s.switcher.router.RequestLogDropped(),
	}
	series, _ := sm.Query(app.Name, since, step, now)
	for _, sr := range series {
		if sr.Release == "" {
			out.Totals, out.Points = sr.Totals, sr.Points
		} else {
			out.Releases = append(out.Releases, sr)
		}
	}
	out.Step = api.Duration(max(sm.Interval(), (step+sm.Interval()-1)/sm.Interval()*sm.Interval()))
	writeJSON(w, http.StatusOK, out)
}

// forgetTraffic drops a destroyed app's router lines and traffic history:
// an app created later under the same name starts without them.
func (s *server) forgetTraffic(app string) {
	s.logHub.Forget(app)
	s.sampler.Forget(app)
}

// setRouterLogs turns an app's router request lines on or off.
func (s *server) setRouterLogs(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	var body struct {
		Enabled *bool `json:"enabled"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	if body.Enabled == nil {
		writeError(w, http.StatusBadRequest, `say whether router logs are on: {"enabled": true} or {"enabled": false}`)
		return
	}
	off := !*body.Enabled
	if err := s.store.UpdateApp(app.Name, func(a *store.App) error { a.RouterLogsOff = off; return nil }); err != nil {
		s.internalError(w, err)
		return
	}
	if err := s.switcher.Rehost(app.Name); err != nil {
		s.internalError(w, err)
		return
	}
	s.log.Info("router logs set", "app", app.Name, "enabled", !off)
	writeJSON(w, http.StatusOK, api.RouterLogs{App: app.Name, Enabled: !off})
}

// requestLogFlush is how often the log loop collects the router's request
// records. Polling, not a receive per record: a goroutine wake-up per
// request would cost the router more than the line itself. The router's
// buffer (router.DefaultRequestLogBuffer) holds what comes in meanwhile.
const requestLogFlush = 50 * time.Millisecond

// runRequestLog turns the router's request records into router lines of
// the apps' log feeds until ctx ends, a batch every requestLogFlush.
func runRequestLog(ctx context.Context, rt *router.Router, dep *deploy.Deployer, hub *logs.Hub) {
	ch := rt.RequestLog()
	t := time.NewTicker(requestLogFlush)
	defer t.Stop()
	var batch []logs.RouterLine
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		batch = drainRequestLog(ch, batch[:0], func(rec router.RequestRecord) string {
			return replicaLabel(dep, rec.App, rec.Backend)
		})
		if len(batch) > 0 {
			hub.AddRouterLines(batch)
		}
	}
}

// drainRequestLog appends a line for each record waiting on ch (at most
// its capacity: new ones wait for the next round).
func drainRequestLog(ch <-chan router.RequestRecord, batch []logs.RouterLine, replica func(router.RequestRecord) string) []logs.RouterLine {
	for range cap(ch) {
		select {
		case rec := <-ch:
			batch = append(batch, logs.RouterLine{App: routeApp(rec.App), Time: rec.Time, Text: rec.Format(replica(rec))})
		default:
			return batch
		}
	}
	return batch
}

// replicaLabel names the replica at addr ("" if it is no longer routed).
func replicaLabel(dep *deploy.Deployer, app, addr string) string {
	for _, r := range dep.Replicas(app) {
		if r.Addr == addr {
			return r.Label
		}
	}
	return ""
}

// checkMetricsAddr accepts only a loopback address: /metrics is served
// there without a token.
func checkMetricsAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--metrics-addr %q: give host:port, like 127.0.0.1:9100", addr)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--metrics-addr %q: /metrics is served there without a token, so it must be a loopback address like 127.0.0.1:9100; elsewhere scrape the API's /metrics with a token", addr)
	}
	return nil
}

// promHandler serves the Prometheus metrics: the apps' traffic, deploys
// and wakes, and the daemon's Go and process metrics.
func promHandler(rt *router.Router, st *store.Store, fast func() router.FastStats) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&platCollector{rt: rt, store: st, fast: fast},
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// platCollector reads the router's counters and the store's releases at
// each scrape: nothing on the request path.
type platCollector struct {
	rt    *router.Router
	store *store.Store
	fast  func() router.FastStats // the router's fast front ends, summed
}

var (
	descRequests = prometheus.NewDesc("plat_http_requests_total",
		"Requests the router proxied to the app, by status class (none: the client left before a response).",
		[]string{"app", "status_class"}, nil)
	descReleaseRequests = prometheus.NewDesc("plat_http_release_requests_total",
		"Requests of each release the app's route has now (counters end when the release leaves the route).",
		[]string{"app", "release", "status_class"}, nil)
	descProxyErrors = prometheus.NewDesc("plat_http_proxy_errors_total",
		"Requests the router answered 502/504 itself because the app did not answer.", []string{"app"}, nil)
	descBytes = prometheus.NewDesc("plat_http_response_bytes_total",
		"Response body bytes sent to clients.", []string{"app"}, nil)
	descInFlight = prometheus.NewDesc("plat_http_requests_in_flight",
		"Requests of the app in flight now.", []string{"app"}, nil)
	descDuration = prometheus.NewDesc("plat_http_request_duration_seconds",
		"Time from the router receiving a request to the end of its response (upgrades excluded).", []string{"app"}, nil)
	descFastPath = prometheus.NewDesc("plat_router_fast_path_total",
		"What the router's fast front end did: requests it answered itself (served), connections it gave to net/http (handed_over).",
		[]string{"outcome"}, nil)
	descLogDropped = prometheus.NewDesc("plat_router_log_lines_dropped_total",
		"Router request lines dropped because the log hand-over was full.", nil, nil)
	descWakes = prometheus.NewDesc("plat_wakes_total",
		"Wakes of a sleeping app, by outcome (woken, failed).", []string{"app", "outcome"}, nil)
	descWakeDuration = prometheus.NewDesc("plat_wake_duration_seconds",
		"How long waking a sleeping app took.", []string{"app"}, nil)
	descDeploys = prometheus.NewDesc("plat_deploys_total",
		"Finished releases (deploys, config changes, rollbacks) by cause and outcome (succeeded, failed).",
		[]string{"app", "cause", "outcome"}, nil)
	descDeployDuration = prometheus.NewDesc("plat_deploy_duration_seconds",
		"Time from a release's start to its end (live or failed), of releases not caused by a rollback.",
		[]string{"app", "outcome"}, nil)
	descRollbackDuration = prometheus.NewDesc("plat_rollback_duration_seconds",
		"Time from a rollback's start to its end (live or failed).", []string{"app", "outcome"}, nil)
)

// latencyBounds are the le bounds of the request and wake histograms:
// powers of two nanoseconds from ~0.26ms to ~34s, bucket boundaries of
// internal/latency, so the counts are exact.
var latencyBounds = func() []time.Duration {
	var out []time.Duration
	for k := 18; k <= 35; k++ {
		out = append(out, time.Duration(1)<<k)
	}
	return out
}()

// deployBounds are the le bounds (seconds) of the deploy durations.
var deployBounds = []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800}

func (c *platCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descReleaseRequests, descProxyErrors, descBytes, descInFlight,
		descDuration, descFastPath, descLogDropped, descWakes, descWakeDuration, descDeploys, descDeployDuration, descRollbackDuration} {
		ch <- d
	}
}

func (c *platCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	classes := func(d *prometheus.Desc, st router.ReleaseStats, labels ...string) {
		for i, n := range []uint64{st.NoStatus, st.Status1xx, st.Status2xx, st.Status3xx, st.Status4xx, st.Status5xx} {
			class := "none"
			if i > 0 {
				class = fmt.Sprintf("%dxx", i)
			}
			counter(d, n, append(labels, class)...)
		}
	}
	for _, app := range (appsOnly{c.rt}).Apps() {
		st, ok := c.rt.AppStats(app)
		if !ok {
			continue
		}
		classes(descRequests, st, app)
		counter(descProxyErrors, st.ProxyErrors, app)
		counter(descBytes, st.BytesWritten, app)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(st.InFlight), app)
		ch <- latencyHistogram(descDuration, st.Latency, app)
		for _, rel := range c.rt.Releases(app) {
			if rs, ok := c.rt.ReleaseStats(app, rel); ok {
				classes(descReleaseRequests, rs, app, rel)
			}
		}
	}
	counter(descLogDropped, c.rt.RequestLogDropped())
	fs := c.fast()
	counter(descFastPath, fs.Served, "served")
	counter(descFastPath, fs.HandedOver, "handed_over")
	for app, ws := range c.rt.WakeStats() {
		counter(descWakes, ws.Woken, app, "woken")
		counter(descWakes, ws.Failed, app, "failed")
		ch <- latencyHistogram(descWakeDuration, ws.Latency, app)
	}
	c.collectDeploys(ch)
}

// collectDeploys counts the finished releases of every app in the store.
func (c *platCollector) collectDeploys(ch chan<- prometheus.Metric) {
	apps, err := c.store.ListApps()
	if err != nil {
		return
	}
	type hist struct {
		count uint64
		sum   float64
		le    map[float64]uint64
	}
	for _, a := range apps {
		rels, err := c.store.ListReleases(a.Name)
		if err != nil {
			continue
		}
		counts := map[[2]string]uint64{}
		durations := map[[2]string]*hist{} // {metric kind, outcome}
		for _, r := range rels {
			outcome := ""
			switch r.Status {
			case store.StatusActive, store.StatusSuperseded:
				outcome = "succeeded"
			case store.StatusFailed:
				outcome = "failed"
			default:
				continue // still deploying
			}
			counts[[2]string{string(r.Cause), outcome}]++
			if r.FinishedAt.IsZero() || r.CreatedAt.IsZero() {
				continue
			}
			kind := "deploy"
			if r.Cause == store.CauseRollback {
				kind = "rollback"
			}
			k := [2]string{kind, outcome}
			h := durations[k]
			if h == nil {
				h = &hist{le: map[float64]uint64{}}
				durations[k] = h
			}
			secs := r.FinishedAt.Sub(r.CreatedAt).Seconds()
			h.count++
			h.sum += secs
			for _, b := range deployBounds {
				if secs <= b {
					h.le[b]++
				}
			}
		}
		for k, n := range counts {
			ch <- prometheus.MustNewConstMetric(descDeploys, prometheus.CounterValue, float64(n), a.Name, k[0], k[1])
		}
		for k, h := range durations {
			d := descDeployDuration
			if k[0] == "rollback" {
				d = descRollbackDuration
			}
			ch <- prometheus.MustNewConstHistogram(d, h.count, h.sum, h.le, a.Name, k[1])
		}
	}
}

// latencyHistogram converts s to a Prometheus histogram at latencyBounds.
func latencyHistogram(d *prometheus.Desc, s latency.Snapshot, labels ...string) prometheus.Metric {
	le := make(map[float64]uint64, len(latencyBounds))
	for _, b := range latencyBounds {
		le[b.Seconds()] = s.CountBelow(b)
	}
	return prometheus.MustNewConstHistogram(d, s.Count(), s.Sum.Seconds(), le, labels...)
}

// metricsOnly serves /metrics and nothing else (the --metrics-addr listener).
func metricsOnly(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	return mux
}
