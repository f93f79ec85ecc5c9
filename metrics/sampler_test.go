package metrics

import (
	"sync"
	"testing"
	"time"

	"github.com/plat-paas/plat/internal/latency"
	"github.com/plat-paas/plat/router"
)

// fakeSource is a router with counters set by the test.
type fakeSource struct {
	mu       sync.Mutex
	app      map[string]*fakeStats
	releases map[string][]string
	rel      map[[2]string]*fakeStats
}

type fakeStats struct {
	st  router.ReleaseStats
	lat latency.Histogram
}

func newFake() *fakeSource {
	return &fakeSource{app: map[string]*fakeStats{}, releases: map[string][]string{}, rel: map[[2]string]*fakeStats{}}
}

// route makes app route releases (the others' counters end).
func (f *fakeSource) route(app string, releases ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.app[app] == nil {
		f.app[app] = &fakeStats{}
	}
	for k := range f.rel {
		if k[0] == app && !contains(releases, k[1]) {
			delete(f.rel, k)
		}
	}
	for _, r := range releases {
		if f.rel[[2]string{app, r}] == nil {
			f.rel[[2]string{app, r}] = &fakeStats{}
		}
	}
	f.releases[app] = releases
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// serve counts n requests of status taking d on app's release.
func (f *fakeSource) serve(app, release string, n int, status int, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range []*fakeStats{f.app[app], f.rel[[2]string{app, release}]} {
		for range n {
			s.st.Requests++
			switch status / 100 {
			case 2:
				s.st.Status2xx++
			case 4:
				s.st.Status4xx++
			case 5:
				s.st.Status5xx++
			}
			s.st.BytesWritten += 100
			s.lat.Record(d)
		}
	}
}

func (f *fakeSource) Apps() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for a := range f.app {
		out = append(out, a)
	}
	return out
}

func (f *fakeSource) AppStats(app string) (router.ReleaseStats, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.app[app]
	if !ok {
		return router.ReleaseStats{}, false
	}
	st := s.st
	st.Latency = s.lat.Snapshot()
	return st, true
}

func (f *fakeSource) Releases(app string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.releases[app]
}

func (f *fakeSource) ReleaseStats(app, release string) (router.ReleaseStats, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.rel[[2]string{app, release}]
	if !ok {
		return router.ReleaseStats{}, false
	}
	st := s.st
	st.Latency = s.lat.Snapshot()
	return st, true
}

func TestSamplerBucketsAreDiffs(t *testing.T) {
	f := newFake()
	f.route("app", "v1")
	s := New(f, Options{})
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	s.last = t0
	f.serve("app", "v1", 100, 200, 10*time.Millisecond)
	s.Sample(t0.Add(time.Minute))
	f.serve("app", "v1", 10, 500, 300*time.Millisecond)
	f.serve("app", "v1", 10, 200, 10*time.Millisecond)
	s.Sample(t0.Add(2 * time.Minute))
	// A deploy: v2 replaces v1, whose counters end; the app's go on.
	f.route("app", "v2")
	f.serve("app", "v2", 50, 404, 2*time.Millisecond)
	s.Sample(t0.Add(3 * time.Minute))

	now := t0.Add(3 * time.Minute)
	out, ok := s.Query("app", time.Hour, time.Minute, now)
	if !ok || len(out) != 3 || out[0].Release != "" || out[1].Release != "v1" || out[2].Release != "v2" {
		t.Fatalf("series %+v", out)
	}
	app := out[0]
	tests := []struct {
		name string
		got  Point
		want Point
	}{
		{"minute 1", app.Points[0], Point{Requests: 100, Status2xx: 100, Bytes: 10000}},
		{"minute 2", app.Points[1], Point{Requests: 20, Status2xx: 10, Status5xx: 10, Bytes: 2000, ErrorRate: 0.5}},
		{"minute 3", app.Points[2], Point{Requests: 50, Status4xx: 50, Bytes: 5000}},
		{"totals", app.Totals, Point{Requests: 170, Status2xx: 110, Status4xx: 50, Status5xx: 10, Bytes: 17000, ErrorRate: 10.0 / 170}},
		{"v1 totals", out[1].Totals, Point{Requests: 120, Status2xx: 110, Status5xx: 10, Bytes: 12000, ErrorRate: 10.0 / 120}},
		{"v2 totals", out[2].Totals, Point{Requests: 50, Status4xx: 50, Bytes: 5000}},
	}
	for _, tt := range tests {
		got := tt.got
		got.Time, got.P50Ms, got.P95Ms, got.P99Ms = time.Time{}, 0, 0, 0
		if got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
	if len(app.Points) != 3 || !app.Points[0].Time.Equal(t0.Add(time.Minute)) {
		t.Fatalf("points %+v", app.Points)
	}
	// Quantiles of a minute are that minute's: 10 of 20 took 300ms.
	near := func(got, want float64) bool { return got >= want*0.93 && got <= want*1.07 }
	if p := app.Points[1].P99Ms; !near(p, 300) {
		t.Errorf("minute 2 p99 = %vms, want ~300", p)
	}
	if p := app.Points[0].P99Ms; !near(p, 10) {
		t.Errorf("minute 1 p99 = %vms, want ~10", p)
	}
	if p := app.Totals.P50Ms; !near(p, 10) {
		t.Errorf("total p50 = %vms, want ~10", p)
	}
	if p := app.Totals.P95Ms; !near(p, 300) { // 10 of 170 > 5%
		t.Errorf("total p95 = %vms, want ~300", p)
	}

	// Windows of 2 minutes sum their buckets.
	out, _ = s.Query("app", time.Hour, 2*time.Minute, now)
	var sum uint64
	for _, p := range out[0].Points {
		sum += p.Requests
	}
	if sum != 170 || len(out[0].Points) > 2 {
		t.Errorf("2m windows %+v", out[0].Points)
	}
	// since cuts: the last minute only.
	out, _ = s.Query("app", time.Minute, time.Minute, now)
	if out[0].Totals.Requests != 50 || len(out) != 2 {
		t.Errorf("since 1m: %+v", out)
	}
}

func TestSamplerPartialBucket(t *testing.T) {
	f := newFake()
	f.route("app", "v1")
	s := New(f, Options{})
	t0 := time.Now()
	s.last = t0
	f.serve("app", "v1", 7, 200, time.Millisecond)
	out, ok := s.Query("app", time.Hour, time.Minute, t0.Add(20*time.Second))
	if !ok || out[0].Totals.Requests != 7 || len(out[0].Points) != 1 || !out[0].Points[0].Partial {
		t.Fatalf("before the first sample the live counts show as a partial point: %+v", out)
	}
	s.Sample(t0.Add(time.Minute))
	f.serve("app", "v1", 3, 200, time.Millisecond)
	out, _ = s.Query("app", time.Hour, time.Minute, t0.Add(70*time.Second))
	if out[0].Totals.Requests != 10 || len(out[0].Points) != 2 || out[0].Points[1].Requests != 3 {
		t.Fatalf("after a sample: %+v", out[0])
	}
	if _, ok := s.Query("nope", time.Hour, time.Minute, t0); ok {
		t.Fatal("an unknown app has metrics")
	}
	// Destroyed: the router no longer has it and Forget drops its history.
	f.mu.Lock()
	delete(f.app, "app")
	f.mu.Unlock()
	s.Forget("app")
	if out, ok := s.Query("app", time.Hour, time.Minute, t0.Add(80*time.Second)); ok {
		t.Fatalf("a forgotten app has metrics: %+v", out)
	}
}

// Buckets older than the retention go, and so do series of releases that
// left long ago: memory does not grow with time.
func TestSamplerBoundedMemory(t *testing.T) {
	f := newFake()
	s := New(f, Options{Interval: time.Minute, Retention: time.Hour})
	t0 := time.Now()
	s.last = t0
	for i := range 5 * 60 {
		// A new release every 10 minutes.
		if i%10 == 0 {
			f.route("app", "v"+itoa(i/10+1))
		}
		f.serve("app", "v"+itoa(i/10+1), 1, 200, time.Millisecond)
		s.Sample(t0.Add(time.Duration(i+1) * time.Minute))
	}
	// 60 buckets of the app + 60 of the releases that served in the last hour.
	if n := s.Buckets(); n > 120 {
		t.Fatalf("%d buckets after 5 hours with a 1h retention, want <= 120", n)
	}
	s.mu.Lock()
	series := len(s.series)
	s.mu.Unlock()
	if series > 1+7 {
		t.Fatalf("%d series kept, want the app and the releases of the last hour", series)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// Counters that start over (the app was removed and deployed again) do
// not produce a huge bucket.
func TestSamplerCountersStartOver(t *testing.T) {
	f := newFake()
	f.route("app", "v1")
	s := New(f, Options{})
	t0 := time.Now()
	s.last = t0
	f.serve("app", "v1", 100, 200, time.Millisecond)
	s.Sample(t0.Add(time.Minute))
	f.mu.Lock()
	f.app["app"] = &fakeStats{}
	f.mu.Unlock()
	f.route("app", "v1")
	f.serve("app", "v1", 5, 200, time.Millisecond)
	s.Sample(t0.Add(2 * time.Minute))
	out, _ := s.Query("app", time.Hour, time.Minute, t0.Add(2*time.Minute))
	if got := out[0].Points[1].Requests; got != 5 {
		t.Fatalf("minute after the restart: %d requests, want 5", got)
	}
}

func TestCompareReleases(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{{"v9", "v10", -1}, {"v10", "v9", 1}, {"v2", "v2", 0}, {"a", "b", -1}} {
		got := compareReleases(tt.a, tt.b)
		if (got < 0) != (tt.want < 0) || (got > 0) != (tt.want > 0) {
			t.Errorf("compare(%s,%s) = %d", tt.a, tt.b, got)
		}
	}
}

// A release that leaves the route between two samples keeps its traffic
// when Keep read it before the switch.
func TestSamplerKeepsLeavingRelease(t *testing.T) {
	f := newFake()
	f.route("app", "v1")
	s := New(f, Options{})
	t0 := time.Now()
	s.last = t0
	f.serve("app", "v1", 4, 200, time.Millisecond)
	s.Sample(t0.Add(time.Minute))
	f.serve("app", "v1", 6, 200, time.Millisecond)
	s.Keep("app")
	f.route("app", "v2") // v1's counters end
	f.serve("app", "v2", 2, 200, time.Millisecond)

	totals := func(now time.Time) map[string]uint64 {
		out, _ := s.Query("app", time.Hour, time.Minute, now)
		m := map[string]uint64{}
		for _, sr := range out {
			m[sr.Release] = sr.Totals.Requests
		}
		return m
	}
	want := map[string]uint64{"": 12, "v1": 10, "v2": 2}
	if got := totals(t0.Add(90 * time.Second)); !equalCounts(got, want) {
		t.Fatalf("before the sample (live): %v, want %v", got, want)
	}
	s.Sample(t0.Add(2 * time.Minute))
	if got := totals(t0.Add(2 * time.Minute)); !equalCounts(got, want) {
		t.Fatalf("after the sample: %v, want %v", got, want)
	}
	f.serve("app", "v2", 1, 200, time.Millisecond)
	s.Sample(t0.Add(3 * time.Minute))
	want = map[string]uint64{"": 13, "v1": 10, "v2": 3}
	if got := totals(t0.Add(3 * time.Minute)); !equalCounts(got, want) {
		t.Fatalf("a minute later: %v, want %v", got, want)
	}
}

func equalCounts(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
