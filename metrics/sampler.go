// Package metrics keeps an app's recent traffic: every Interval (a
// minute) a Sampler reads the router's cumulative counters of each app and
// of each release it routes, and stores the difference since the last
// sample as one bucket. Buckets older than Retention (24 hours) are
// dropped, so memory is bounded by the number of apps and releases routed
// in that time, not by traffic. Everything is in memory only: a restart of
// the daemon starts the history afresh.
package metrics

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/internal/latency"
	"github.com/plat-paas/plat/router"
)

// Defaults for Options fields left zero.
const (
	DefaultInterval  = time.Minute
	DefaultRetention = 24 * time.Hour
)

// Source is where the sampler reads cumulative counters: the router.
type Source interface {
	Apps() []string
	AppStats(app string) (router.ReleaseStats, bool)
	Releases(app string) []string
	ReleaseStats(app, release string) (router.ReleaseStats, bool)
}

// Options tune a Sampler.
type Options struct {
	Interval  time.Duration // 0 → DefaultInterval
	Retention time.Duration // 0 → DefaultRetention
}

// Sampler turns cumulative counters into a bounded history of buckets.
type Sampler struct {
	src  Source
	opts Options

	mu     sync.Mutex
	last   time.Time // of the last sample (or of New)
	series map[key]*series
}

// key names a series: an app's totals (release "") or one release's.
type key struct{ app, release string }

// series is one app's or release's history.
type series struct {
	prev    router.ReleaseStats // cumulative counters at the last sample
	live    bool                // the source had it at the last sample
	buckets []bucket            // oldest first
	// final is the last reading Keep took, for a release that may leave
	// the route before the next sample (its counters end with it).
	final    router.ReleaseStats
	hasFinal bool
}

// bucket is the traffic of one interval.
type bucket struct {
	end         time.Time
	requests    uint64
	status      [6]uint64 // [0]: no status; [1..5]: 1xx..5xx
	proxyErrors uint64
	bytes       uint64
	inFlight    int64 // at the end of the interval
	latSum      time.Duration
	lat         []bin // the latency histogram's non-empty buckets
}

// bin is one non-empty latency histogram bucket.
type bin struct {
	i uint16
	n uint32
}

// New returns a sampler of src; its first bucket starts now.
func New(src Source, opts Options) *Sampler {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	return &Sampler{src: src, opts: opts, last: time.Now(), series: map[key]*series{}}
}

// Interval is the length of a bucket.
func (s *Sampler) Interval() time.Duration { return s.opts.Interval }

// Retention is how far back buckets are kept.
func (s *Sampler) Retention() time.Duration { return s.opts.Retention }

// Run samples every Interval until ctx ends.
func (s *Sampler) Run(ctx context.Context) {
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.Sample(now)
		}
	}
}

// Sample stores one bucket per app and per routed release: the traffic
// since the last sample, ending at now. It drops buckets that ended more
// than Retention before now and series left with none.
func (s *Sampler) Sample(now time.Time) {
	type reading struct {
		k  key
		st router.ReleaseStats
	}
	var readings []reading
	for _, app := range s.src.Apps() {
		if st, ok := s.src.AppStats(app); ok {
			readings = append(readings, reading{key{app, ""}, st})
		}
		for _, rel := range s.src.Releases(app) {
			if st, ok := s.src.ReleaseStats(app, rel); ok {
				readings = append(readings, reading{key{app, rel}, st})
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	read := map[key]bool{}
	for _, r := range readings {
		read[r.k] = true
	}
	for k, sr := range s.series {
		sr.live = false
		if sr.hasFinal && !read[k] {
			// It left the route since the last sample: its last reading.
			readings = append(readings, reading{k, sr.final})
		}
		sr.hasFinal = false
	}
	for _, r := range readings {
		sr := s.series[r.k]
		if sr == nil {
			sr = &series{}
			s.series[r.k] = sr
		}
		b := diff(r.st, sr.prev, now)
		sr.buckets = append(sr.buckets, b)
		sr.prev, sr.live = r.st, read[r.k]
	}
	cutoff := now.Add(-s.opts.Retention)
	for k, sr := range s.series {
		if !sr.live {
			sr.prev = router.ReleaseStats{} // a release that comes back starts from zero
		}
		i := 0
		for i < len(sr.buckets) && !sr.buckets[i].end.After(cutoff) {
			i++
		}
		if i > 0 {
			sr.buckets = slices.Delete(sr.buckets, 0, i)
		}
		if len(sr.buckets) == 0 && !sr.live {
			delete(s.series, k)
		}
	}
	s.last = now
}

// Keep reads the counters of app's releases now: call it before a route
// change that may drop a release (whose counters end then), so the
// release's traffic since the last sample still counts.
func (s *Sampler) Keep(app string) {
	type reading struct {
		k  key
		st router.ReleaseStats
	}
	var readings []reading
	for _, rel := range s.src.Releases(app) {
		if st, ok := s.src.ReleaseStats(app, rel); ok {
			readings = append(readings, reading{key{app, rel}, st})
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range readings {
		sr := s.series[r.k]
		if sr == nil {
			sr = &series{live: true}
			s.series[r.k] = sr
		}
		sr.final, sr.hasFinal = r.st, true
	}
}

// Forget drops app's history (it was destroyed).
func (s *Sampler) Forget(app string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.series {
		if k.app == app {
			delete(s.series, k)
		}
	}
}

// diff returns the bucket of the traffic between prev and cur (cumulative
// counters of one series). Counters that went back (the source started
// over: the app was removed and routed again) count from zero.
func diff(cur, prev router.ReleaseStats, end time.Time) bucket {
	if cur.Requests < prev.Requests {
		prev = router.ReleaseStats{}
	}
	sub := func(a, b uint64) uint64 {
		if a < b {
			return a
		}
		return a - b
	}
	b := bucket{
		end:         end,
		requests:    sub(cur.Requests, prev.Requests),
		proxyErrors: sub(cur.ProxyErrors, prev.ProxyErrors),
		bytes:       sub(cur.BytesWritten, prev.BytesWritten),
		inFlight:    cur.InFlight,
	}
	b.status[0] = sub(cur.NoStatus, prev.NoStatus)
	b.status[1] = sub(cur.Status1xx, prev.Status1xx)
	b.status[2] = sub(cur.Status2xx, prev.Status2xx)
	b.status[3] = sub(cur.Status3xx, prev.Status3xx)
	b.status[4] = sub(cur.Status4xx, prev.Status4xx)
	b.status[5] = sub(cur.Status5xx, prev.Status5xx)
	lat := cur.Latency.Sub(prev.Latency)
	b.latSum = lat.Sum
	for i, n := range lat.Counts {
		if n > 0 {
			b.lat = append(b.lat, bin{uint16(i), uint32(min(n, 1<<32-1))})
		}
	}
	return b
}

// Buckets returns how many buckets the sampler holds in all (for tests and
// the memory bound).
func (s *Sampler) Buckets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sr := range s.series {
		n += len(sr.buckets)
	}
	return n
}

// Point is the traffic of one window (or of a whole query: Totals); it is
// the API's wire type.
type Point = api.MetricsPoint

// Series is a query's answer for an app or one of its releases.
type Series = api.MetricsSeries

// Query returns app's traffic since now-since in windows of step (rounded
// up to whole intervals): the app's totals first, then each release seen
// in that time. The current interval, not yet sampled, is read live and
// counts in the last window (Partial). ok is false if the sampler knows
// nothing of app.
func (s *Sampler) Query(app string, since, step time.Duration, now time.Time) (out []Series, ok bool) {
	iv := s.opts.Interval
	step = max(iv, (step+iv-1)/iv*iv)
	since = min(max(since, iv), s.opts.Retention)
	from := now.Add(-since)

	// The live partial bucket of each series, read before the lock.
	live := map[key]router.ReleaseStats{}
	if st, ok := s.src.AppStats(app); ok {
		live[key{app, ""}] = st
		for _, rel := range s.src.Releases(app) {
			if st, ok := s.src.ReleaseStats(app, rel); ok {
				live[key{app, rel}] = st
			}
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	keys := []key{}
	for k := range s.series {
		if k.app == app {
			keys = append(keys, k)
		}
	}
	for k := range live {
		if s.series[k] == nil {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, false
	}
	slices.SortFunc(keys, func(a, b key) int {
		switch {
		case a.release == b.release:
			return 0
		case a.release == "":
			return -1
		case b.release == "":
			return 1
		}
		return compareReleases(a.release, b.release)
	})
	for _, k := range keys {
		var buckets []bucket
		var prev router.ReleaseStats
		if sr := s.series[k]; sr != nil {
			for _, b := range sr.buckets {
				if b.end.After(from) {
					buckets = append(buckets, b)
				}
			}
			if sr.live {
				prev = sr.prev
			}
		}
		partial := -1
		if sr := s.series[k]; sr != nil && sr.hasFinal {
			if _, ok := live[k]; !ok {
				live[k] = sr.final // gone since the last sample: its last reading
			}
		}
		if st, ok := live[k]; ok && now.After(s.last) {
			buckets = append(buckets, diff(st, prev, now))
			partial = len(buckets) - 1
		}
		if len(buckets) == 0 {
			continue
		}
		out = append(out, aggregate(k.release, buckets, partial, int(step/iv)))
	}
	return out, len(out) > 0
}

// aggregate sums buckets into points of step/interval buckets each,
// counted back from the newest full one; the partial bucket (index
// partial, the last, or -1) is a point of its own.
func aggregate(release string, buckets []bucket, partial int, per int) Series {
	sr := Series{Release: release, Points: []Point{}}
	var total acc
	full := buckets
	if partial >= 0 {
		full = buckets[:partial]
	}
	first := len(full) % per // the oldest window may be short
	for i := 0; i < len(full); {
		n := per
		if i == 0 && first > 0 {
			n = first
		}
		var w acc
		for _, b := range full[i : i+n] {
			w.add(b, false)
			total.add(b, false)
		}
		sr.Points = append(sr.Points, w.point())
		i += n
	}
	if partial >= 0 {
		var w acc
		w.add(buckets[partial], true)
		total.add(buckets[partial], true)
		sr.Points = append(sr.Points, w.point())
	}
	sr.Totals = total.point()
	sr.Totals.Partial = false
	return sr
}

// acc sums buckets.
type acc struct {
	b       bucket
	end     time.Time
	lat     latency.Snapshot
	partial bool
}

func (a *acc) add(b bucket, partial bool) {
	a.b.requests += b.requests
	for i := range b.status {
		a.b.status[i] += b.status[i]
	}
	a.b.proxyErrors += b.proxyErrors
	a.b.bytes += b.bytes
	a.b.inFlight = max(a.b.inFlight, b.inFlight)
	a.end = b.end
	a.lat.Sum += b.latSum
	for _, x := range b.lat {
		a.lat.Counts[x.i] += uint64(x.n)
	}
	a.partial = a.partial || partial
}

func (a *acc) point() Point {
	ms := func(q float64) float64 {
		return float64(a.lat.Quantile(q).Microseconds()) / 1000
	}
	p := Point{
		Time: a.end, Requests: a.b.requests,
		Status1xx: a.b.status[1], Status2xx: a.b.status[2], Status3xx: a.b.status[3],
		Status4xx: a.b.status[4], Status5xx: a.b.status[5], NoStatus: a.b.status[0],
		ProxyErrors: a.b.proxyErrors, Bytes: a.b.bytes, InFlight: a.b.inFlight,
		P50Ms: ms(0.5), P95Ms: ms(0.95), P99Ms: ms(0.99), Partial: a.partial,
	}
	if p.Requests > 0 {
		p.ErrorRate = float64(p.Status5xx) / float64(p.Requests)
	}
	return p
}

// compareReleases orders "v9" before "v10", other labels by text.
func compareReleases(a, b string) int {
	na, oka := versionNumber(a)
	nb, okb := versionNumber(b)
	if oka && okb {
		return na - nb
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func versionNumber(s string) (int, bool) {
	if len(s) < 2 || s[0] != 'v' {
		return 0, false
	}
	n := 0
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
