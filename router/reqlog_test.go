package router

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestRequestLogLine(t *testing.T) {
	r, front, _ := newTestRouter(t)
	body := strings.Repeat("x", 1234)
	_, b := newBackendServer(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		time.Sleep(12 * time.Millisecond)
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, body)
	}))
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Release: "v8", Backends: []*Backend{b}, LogRequests: true})
	ch := r.RequestLog()
	get(t, front, "app.localhost", "/a%20b/c?token=secret", nil)

	var rec RequestRecord
	select {
	case rec = <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no request record")
	}
	if rec.App != "app" || rec.Release != "v8" || rec.Method != "GET" || rec.Path != "/a b/c" ||
		rec.Status != 201 || rec.Bytes != 1234 || !strings.HasPrefix(rec.Client, "127.0.0.1:") || rec.Backend != b.Addr() {
		t.Fatalf("record %+v", rec)
	}
	if rec.Duration < 12*time.Millisecond || rec.Duration > 2*time.Second {
		t.Fatalf("duration %v, want >= 12ms", rec.Duration)
	}
	// The exact line: the path percent-encodes its space, the query is
	// left out (it may hold secrets), the size has one decimal.
	line := rec.Format("web.2")
	re := regexp.MustCompile(`^GET /a%20b/c 201 (\d+)ms 1\.2KB client=127\.0\.0\.1 release=v8 replica=web\.2$`)
	if !re.MatchString(line) {
		t.Fatalf("line %q does not match %s", line, re)
	}
	if strings.Contains(line, "secret") {
		t.Fatalf("line %q leaks the query", line)
	}
	if got := rec.Format(""); !strings.HasSuffix(got, "replica="+b.Addr()) {
		t.Fatalf("without a label the line names the address: %q", got)
	}
}

func TestRequestLogPerApp(t *testing.T) {
	r, front, _ := newTestRouter(t)
	_, b := newBackendServer(t, textHandler("ok"))
	mustSet(t, r, Route{App: "quiet", Hosts: []string{"quiet.localhost"}, Release: "v1", Backends: []*Backend{b}})
	mustSet(t, r, Route{App: "loud", Hosts: []string{"loud.localhost"}, Release: "v1", Backends: []*Backend{b}, LogRequests: true})
	ch := r.RequestLog()
	get(t, front, "quiet.localhost", "/", nil)
	get(t, front, "loud.localhost", "/", nil)
	select {
	case rec := <-ch:
		if rec.App != "loud" {
			t.Fatalf("record of %q, want only loud's (quiet has LogRequests off)", rec.App)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no record")
	}
	select {
	case rec := <-ch:
		t.Fatalf("extra record %+v", rec)
	case <-time.After(50 * time.Millisecond):
	}
}

// A reader that falls behind never holds requests up: records beyond the
// buffer are dropped and counted.
func TestRequestLogNeverBlocks(t *testing.T) {
	r := New(Options{RequestLogBuffer: 2})
	front := newFront(t, r)
	_, b := newBackendServer(t, textHandler("ok"))
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Release: "v1", Backends: []*Backend{b}, LogRequests: true})
	ch := r.RequestLog() // never read
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10 {
			get(t, front, "app.localhost", "/", nil)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("requests blocked on the full request log")
	}
	if len(ch) != 2 || r.RequestLogDropped() != 8 {
		t.Fatalf("queued %d, dropped %d; want 2 and 8", len(ch), r.RequestLogDropped())
	}
}

func TestFormatHelpers(t *testing.T) {
	for _, tt := range []struct {
		n    uint64
		want string
	}{{0, "0B"}, {999, "999B"}, {1000, "1.0KB"}, {1234, "1.2KB"}, {1_500_000, "1.5MB"}, {1_999_999, "2.0MB"}, {2_000_000_000, "2.0GB"}} {
		if got := FormatBytes(tt.n); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{850 * time.Microsecond, "850µs"}, {12 * time.Millisecond, "12ms"}, {1503 * time.Millisecond, "1503ms"}} {
		if got := FormatDuration(tt.d); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := (RequestRecord{Method: "GET", Path: "/x"}).Format(""); got != "GET /x 499 0µs 0B client=- release=- replica=-" {
		t.Errorf("empty record line %q", got)
	}
}

// The app's counters carry on across release switches (a release's own
// end when it leaves the route): per-app totals never go back.
func TestAppStatsAcrossReleases(t *testing.T) {
	r, front, _ := newTestRouter(t)
	_, b1 := newBackendServer(t, textHandler("one"))
	_, b2 := newBackendServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Release: "v1", Backends: []*Backend{b1}})
	for range 3 {
		get(t, front, "app.localhost", "/", nil)
	}
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Release: "v2", Backends: []*Backend{b2}})
	if _, ok := r.ReleaseStats("app", "v1"); ok {
		t.Fatal("v1 left the route but still has counters")
	}
	for range 2 {
		get(t, front, "app.localhost", "/", nil)
	}
	v2, _ := r.ReleaseStats("app", "v2")
	if v2.Requests != 2 || v2.Status5xx != 2 {
		t.Fatalf("v2 stats %+v", v2)
	}
	// Asleep and back: still the same totals.
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Asleep: true})
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Release: "v2", Backends: []*Backend{b2}})
	app, ok := r.AppStats("app")
	if !ok {
		t.Fatal("no app stats")
	}
	if app.Requests != 5 || app.Status2xx != 3 || app.Status5xx != 2 || app.BytesWritten != 9 || app.Latency.Count() != 5 {
		t.Fatalf("app stats %+v", app)
	}
	if got := r.Releases("app"); len(got) != 1 || got[0] != "v2" {
		t.Fatalf("Releases = %v", got)
	}
}
