package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// splitReply is what a test request got back.
type splitReply struct {
	status    int
	body      string
	setCookie string // the router's bucket cookie, "" if not set
	err       error
}

// doSplit sends GET / for app.localhost with cookie (none if empty).
func doSplit(client *http.Client, front *httptest.Server, cookie string) splitReply {
	req, err := http.NewRequest(http.MethodGet, front.URL+"/", nil)
	if err != nil {
		return splitReply{err: err}
	}
	req.Host = "app.localhost"
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := client.Do(req)
	if err != nil {
		return splitReply{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	out := splitReply{status: resp.StatusCode, body: string(body), err: err}
	for _, c := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, BucketCookie+"=") {
			out.setCookie = c
		}
	}
	return out
}

// bucketOf returns the bucket in a Set-Cookie value of the router's cookie.
func bucketOf(t *testing.T, setCookie string) int {
	t.Helper()
	v, _, _ := strings.Cut(strings.TrimPrefix(setCookie, BucketCookie+"="), ";")
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n >= Buckets {
		t.Fatalf("bucket cookie %q: not a bucket", setCookie)
	}
	return n
}

func TestSplitHonoursWeights(t *testing.T) {
	const requests = 2000
	tests := []struct {
		weight    int
		tolerance float64 // percentage points: ~4.5 standard deviations
	}{
		{weight: 0},
		{weight: 10, tolerance: 3},
		{weight: 50, tolerance: 5},
		{weight: 100},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("weight=%d", tt.weight), func(t *testing.T) {
			r, front, _ := newTestRouter(t)
			_, stable := newBackendServer(t, textHandler("stable"))
			_, canary := newBackendServer(t, textHandler("canary"))
			mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Release: "v1", Backends: []*Backend{stable},
				Canary: &Group{Release: "v2", Backends: []*Backend{canary}, Weight: tt.weight}})
			got := 0
			for range requests {
				rep := doSplit(front.Client(), front, "")
				if rep.err != nil || rep.status != http.StatusOK {
					t.Fatalf("request failed: %d %v", rep.status, rep.err)
				}
				if rep.setCookie == "" {
					t.Fatal("a cookie-less request during a split got no bucket cookie")
				}
				if b := bucketOf(t, rep.setCookie); (b < tt.weight) != (rep.body == "canary") {
					t.Fatalf("bucket %d with weight %d was sent to %s", b, tt.weight, rep.body)
				}
				if rep.body == "canary" {
					got++
				}
			}
			pct := 100 * float64(got) / requests
			if pct < float64(tt.weight)-tt.tolerance || pct > float64(tt.weight)+tt.tolerance {
				t.Fatalf("canary got %.1f%% of %d requests, want %d%% ± %.0f", pct, requests, tt.weight, tt.tolerance)
			}
			st, _ := r.ReleaseStats("app", "v2")
			if st.Requests != uint64(got) {
				t.Errorf("canary ReleaseStats.Requests = %d, want %d", st.Requests, got)
			}
		})
	}
}

func TestBucketCookie(t *testing.T) {
	tests := []struct {
		name       string
		tls        bool
		split      bool
		cookie     string // sent by the client
		wantSet    bool   // the router sets its cookie
		wantSecure bool
		wantSide   string // "" any
		wantApp    string // the Cookie header the app sees
	}{
		{name: "new client gets a bucket", split: true, wantSet: true, wantApp: ""},
		{name: "over TLS the cookie is Secure", tls: true, split: true, wantSet: true, wantSecure: true},
		{name: "bucket below weight goes to canary", split: true, cookie: "plat_bucket=3", wantSide: "canary"},
		{name: "bucket at weight stays on stable", split: true, cookie: "plat_bucket=30", wantSide: "stable"},
		{name: "quoted value", split: true, cookie: `plat_bucket="3"`, wantSide: "canary"},
		{name: "other cookies reach the app untouched", split: true, cookie: "a=1; plat_bucket=99; b=2", wantSide: "stable", wantApp: "a=1; b=2"},
		{name: "invalid bucket is replaced", split: true, cookie: "plat_bucket=abc; sid=x", wantSet: true, wantApp: "sid=x"},
		{name: "out of range bucket is replaced", split: true, cookie: "plat_bucket=100", wantSet: true},
		{name: "no split: no cookie set, the old one is stripped", cookie: "plat_bucket=5; sid=x", wantSide: "stable", wantApp: "sid=x"},
		{name: "no split, no cookie", wantSide: "stable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Options{})
			var front *httptest.Server
			if tt.tls {
				front = httptest.NewTLSServer(r)
			} else {
				front = httptest.NewServer(r)
			}
			t.Cleanup(func() { front.Close(); r.CloseIdleConnections() })
			seen := make(chan string, 1)
			side := func(name string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					seen <- strings.Join(req.Header.Values("Cookie"), "|")
					_, _ = io.WriteString(w, name)
				})
			}
			_, stable := newBackendServer(t, side("stable"))
			_, canary := newBackendServer(t, side("canary"))
			rt := Route{App: "app", Hosts: []string{"app.localhost"}, Release: "v1", Backends: []*Backend{stable}}
			if tt.split {
				rt.Canary = &Group{Release: "v2", Backends: []*Backend{canary}, Weight: 30}
			}
			mustSet(t, r, rt)
			rep := doSplit(front.Client(), front, tt.cookie)
			if rep.err != nil || rep.status != http.StatusOK {
				t.Fatalf("request failed: %d %v", rep.status, rep.err)
			}
			if app := <-seen; app != tt.wantApp {
				t.Errorf("the app saw Cookie %q, want %q", app, tt.wantApp)
			}
			if tt.wantSide != "" && rep.body != tt.wantSide {
				t.Errorf("served by %s, want %s", rep.body, tt.wantSide)
			}
			if (rep.setCookie != "") != tt.wantSet {
				t.Fatalf("Set-Cookie %q, want set: %v", rep.setCookie, tt.wantSet)
			}
			if !tt.wantSet {
				return
			}
			for _, attr := range []string{"Path=/", "Max-Age=86400", "HttpOnly", "SameSite=Lax"} {
				if !strings.Contains(rep.setCookie, "; "+attr) {
					t.Errorf("Set-Cookie %q lacks %s", rep.setCookie, attr)
				}
			}
			if strings.Contains(rep.setCookie, "Secure") != tt.wantSecure {
				t.Errorf("Set-Cookie %q: Secure should be %v", rep.setCookie, tt.wantSecure)
			}
			if b := bucketOf(t, rep.setCookie); (b < 30) != (rep.body == "canary") {
				t.Errorf("bucket %d served by %s", b, rep.body)
			}
		})
	}
}

// TestStickyClientsNeverFlip: as the weight grows, a client moves to the
// canary once and never back; cookie-less clients are assigned on first
// sight and keep their bucket.
func TestStickyClientsNeverFlip(t *testing.T) {
	r, front, _ := newTestRouter(t)
	_, stable := newBackendServer(t, textHandler("stable"))
	_, canary := newBackendServer(t, textHandler("canary"))
	const clients = 200
	cookies := make([]string, clients)
	onCanary := make([]bool, clients)
	for _, w := range []int{0, 1, 5, 10, 25, 50, 75, 99, 100} {
		mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Release: "v1", Backends: []*Backend{stable},
			Canary: &Group{Release: "v2", Backends: []*Backend{canary}, Weight: w}})
		n := 0
		for c := range clients {
			for range 2 { // twice: the side does not change between requests
				rep := doSplit(front.Client(), front, cookies[c])
				if rep.err != nil || rep.status != http.StatusOK {
					t.Fatalf("request failed: %d %v", rep.status, rep.err)
				}
				if rep.setCookie != "" {
					if cookies[c] != "" {
						t.Fatalf("client %d had its cookie and got a new one: %q", c, rep.setCookie)
					}
					cookies[c], _, _ = strings.Cut(rep.setCookie, ";")
				}
				now := rep.body == "canary"
				if onCanary[c] && !now {
					t.Fatalf("client %d (%s) flipped back to stable at weight %d", c, cookies[c], w)
				}
				onCanary[c] = now
			}
			if onCanary[c] {
				n++
			}
		}
		t.Logf("weight %3d: %3d of %d clients on the canary", w, n, clients)
		if w == 0 && n != 0 || w == 100 && n != clients {
			t.Fatalf("weight %d: %d clients on the canary", w, n)
		}
	}
}

// TestSplitZeroFailuresUnderLoad moves the weights through a whole canary
// (0, 10, 50, 100, then an abort back to stable alone), a promotion, and an
// in-place deploy (hold, old backend drained and stopped, new one routed)
// while clients keep sending: no request may fail.
func TestSplitZeroFailuresUnderLoad(t *testing.T) {
	r, front, _ := newTestRouter(t)
	slow := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			time.Sleep(time.Millisecond)
			_, _ = io.WriteString(w, name)
		})
	}
	newServer := func(name string) (*httptest.Server, *Backend) {
		srv := httptest.NewServer(slow(name))
		t.Cleanup(srv.Close)
		return srv, NewBackend(srv.Listener.Addr().String())
	}
	_, s1 := newServer("v1")
	_, s2 := newServer("v1")
	c1srv, c1 := newServer("v2")
	c2srv, c2 := newServer("v2")
	stable := []*Backend{s1, s2}
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Release: "v1", Backends: stable})

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sent, failed atomic.Int64
	var firstErr atomic.Value
	for range 6 {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			cookie := ""
			for i := 0; ctx.Err() == nil; i++ {
				if i%3 == 0 {
					cookie = "" // a new client now and then
				}
				rep := doSplit(client, front, cookie)
				sent.Add(1)
				if rep.err != nil || rep.status != http.StatusOK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %v %s", rep.status, rep.err, rep.body))
					continue
				}
				if rep.setCookie != "" {
					cookie, _, _ = strings.Cut(rep.setCookie, ";")
				}
			}
		})
	}
	drain := func(prev []*Backend, keep ...*Backend) {
		for _, b := range prev {
			if !containsBackend(keep, b) {
				dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := r.Retire(dctx, b); err != nil {
					t.Errorf("drain %s: %v", b.Addr(), err)
				}
				cancel()
			}
		}
	}
	pause := func() { time.Sleep(60 * time.Millisecond) }
	pause()
	canary := []*Backend{c1, c2}
	for _, w := range []int{0, 10, 50, 100} {
		mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Release: "v1", Backends: stable,
			Canary: &Group{Release: "v2", Backends: canary, Weight: w}})
		pause()
	}
	// Abort: all traffic back to stable, the canary drained and stopped.
	prev := mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Release: "v1", Backends: stable})
	drain(prev, stable...)
	c1srv.Close()
	c2srv.Close()
	pause()

	// A second canary that is promoted: it becomes the only group.
	_, c3 := newServer("v3")
	canary = []*Backend{c3}
	for _, w := range []int{10, 100} {
		mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Release: "v1", Backends: stable,
			Canary: &Group{Release: "v3", Backends: canary, Weight: w}})
		pause()
	}
	prev = mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Release: "v3", Backends: canary})
	drain(prev, canary...)
	pause()

	// In place: hold, drain and stop the old, then route the new.
	prev = mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Hold: true, HoldTimeout: 5 * time.Second})
	drain(prev)
	time.Sleep(100 * time.Millisecond) // the new release starts
	_, v4 := newServer("v4")
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Release: "v4", Backends: []*Backend{v4}})
	pause()
	stop()
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed; first: %v", n, sent.Load(), firstErr.Load())
	}
	if sent.Load() < 100 {
		t.Fatalf("only %d requests sent: the load did not run", sent.Load())
	}
	t.Logf("%d requests, none failed", sent.Load())
}

func containsBackend(list []*Backend, b *Backend) bool {
	for _, x := range list {
		if x == b {
			return true
		}
	}
	return false
}

func TestHold(t *testing.T) {
	tests := []struct {
		name       string
		backendsIn time.Duration // 0: never
		timeout    time.Duration
		wantStatus int
		wantBody   string
	}{
		{name: "served once backends arrive", backendsIn: 150 * time.Millisecond, timeout: 5 * time.Second, wantStatus: http.StatusOK, wantBody: "new"},
		{name: "503 after the hold timeout", timeout: 150 * time.Millisecond, wantStatus: http.StatusServiceUnavailable, wantBody: "did not come back within 150ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, front, _ := newTestRouter(t)
			r.SetWaker(func(context.Context, string) error {
				t.Error("a held app was woken")
				return errors.New("no")
			})
			_, old := newBackendServer(t, textHandler("old"))
			mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{old}})
			mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Hold: true, HoldTimeout: tt.timeout})
			if rt, _ := r.Lookup("app.localhost"); !rt.Hold || rt.HoldTimeout != tt.timeout {
				t.Errorf("Lookup: Hold %v, HoldTimeout %v", rt.Hold, rt.HoldTimeout)
			}
			if tt.backendsIn > 0 {
				_, nb := newBackendServer(t, textHandler("new"))
				time.AfterFunc(tt.backendsIn, func() {
					if _, err := r.Set(Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{nb}}); err != nil {
						t.Error(err)
					}
				})
			}
			start := time.Now()
			resp, body := get(t, front, "app.localhost", "/", nil)
			waited := time.Since(start)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
				t.Fatalf("got %d %q, want %d with %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if tt.backendsIn == 0 {
				if waited < tt.timeout {
					t.Errorf("answered after %v, before the hold timeout %v", waited, tt.timeout)
				}
				if resp.Header.Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
			} else if waited < tt.backendsIn {
				t.Errorf("answered after %v, before the backends arrived", waited)
			}
			if st, _ := r.Stats("app"); st.Requests == 0 {
				t.Error("Stats.Requests did not count the held request")
			}
		})
	}
}

// TestHoldEndsWithRemove: a held request for an app that is removed gets
// the 404 of an unknown host at once, not the hold timeout.
func TestHoldEndsWithRemove(t *testing.T) {
	r, front, _ := newTestRouter(t)
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Hold: true, HoldTimeout: 10 * time.Second})
	time.AfterFunc(100*time.Millisecond, func() { r.Remove("app") })
	resp, _ := get(t, front, "app.localhost", "/", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d, want 404", resp.StatusCode)
	}
}

func TestReleaseStats(t *testing.T) {
	r, front, _ := newTestRouter(t)
	// The canary answers ?status= with ?ms= of delay and a 10-byte body.
	app := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ms, _ := strconv.Atoi(req.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		status, _ := strconv.Atoi(req.URL.Query().Get("status"))
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "0123456789")
	})
	_, stable := newBackendServer(t, textHandler("stable"))
	_, canary := newBackendServer(t, app)
	route := func(w int) Route {
		return Route{App: "app", Hosts: []string{"app.localhost"}, Release: "v1", Backends: []*Backend{stable},
			Canary: &Group{Release: "v2", Backends: []*Backend{canary}, Weight: w}}
	}
	mustSet(t, r, route(100))
	send := func(n, ms, status int) {
		for range n {
			resp, _ := get(t, front, "app.localhost", fmt.Sprintf("/?ms=%d&status=%d", ms, status), nil)
			if resp.StatusCode != status {
				t.Fatalf("status %d, want %d", resp.StatusCode, status)
			}
		}
	}
	send(90, 2, 200)
	// The weight changes: the counters carry on.
	mustSet(t, r, route(99))
	mustSet(t, r, route(100))
	before, ok := r.ReleaseStats("app", "v2")
	if !ok {
		t.Fatal("no stats for the canary")
	}
	send(5, 2, 404)
	send(3, 2, 500)
	send(2, 300, 200) // the slow 2% decide the step's p99
	after, _ := r.ReleaseStats("app", "v2")

	want := ReleaseStats{Requests: 100, Status2xx: 92, Status4xx: 5, Status5xx: 3, BytesWritten: 1000}
	got := after
	got.Latency = want.Latency
	if got != want {
		t.Errorf("cumulative stats\n got %+v\nwant %+v", got, want)
	}
	step := after.Latency.Sub(before.Latency)
	if step.Count() != 10 {
		t.Errorf("step latency count %d, want 10", step.Count())
	}
	if p99 := step.Quantile(0.99); p99 < 280*time.Millisecond || p99 > 600*time.Millisecond {
		t.Errorf("step p99 = %v, want ~300ms", p99)
	}
	if p50 := after.Latency.Quantile(0.5); p50 < 2*time.Millisecond || p50 > 50*time.Millisecond {
		t.Errorf("p50 = %v, want ~2ms", p50)
	}
	if p99 := after.Latency.Quantile(0.99); p99 < 280*time.Millisecond {
		t.Errorf("cumulative p99 = %v: 2 of 100 took 300ms", p99)
	}
	if st, _ := r.ReleaseStats("app", "v1"); st.Requests != 0 {
		t.Errorf("stable counted %d requests at weight 100", st.Requests)
	}
	if st, _ := r.Stats("app"); st.Requests != 100 || st.Backends != 2 {
		t.Errorf("Stats = %+v, want 100 requests on 2 backends", st)
	}

	// The canary leaves: its counters go with it; v1's stay.
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Release: "v1", Backends: []*Backend{stable}})
	if _, ok := r.ReleaseStats("app", "v2"); ok {
		t.Error("stats of a release that left the route")
	}
	if _, ok := r.ReleaseStats("app", "v1"); !ok {
		t.Error("no stats for the stable release")
	}
}

// TestProxyErrorsStayInGroup: a request that fails on a canary backend is
// retried on the canary's other backend, never on stable; one whose group
// has no other backend gets the router's 502, counted as a proxy error of
// its release, once per client request.
func TestProxyErrorsStayInGroup(t *testing.T) {
	tests := []struct {
		name       string
		live       bool // the canary has a live backend beside the dead one
		wantStatus int
		wantBody   string
	}{
		{name: "retried on the canary's live backend", live: true, wantStatus: http.StatusOK, wantBody: "canary"},
		{name: "no other canary backend: 502", wantStatus: http.StatusBadGateway, wantBody: "502 bad gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, front, _ := newTestRouter(t)
			_, stable := newBackendServer(t, textHandler("stable"))
			canary := []*Backend{NewBackend(closedAddr(t))}
			if tt.live {
				_, live := newBackendServer(t, textHandler("canary"))
				canary = append(canary, live)
			}
			mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Release: "v1", Backends: []*Backend{stable},
				Canary: &Group{Release: "v2", Backends: canary, Weight: 100}})
			const n = 10
			for range n {
				resp, body := get(t, front, "app.localhost", "/", nil)
				if resp.StatusCode != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
					t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
				}
			}
			st, _ := r.ReleaseStats("app", "v2")
			if st.Requests != n {
				t.Errorf("Requests = %d, want %d (once per client request)", st.Requests, n)
			}
			wantErrs := uint64(0)
			if !tt.live {
				wantErrs = n
			}
			if st.ProxyErrors != wantErrs || st.Status5xx != wantErrs {
				t.Errorf("ProxyErrors %d, Status5xx %d, want %d", st.ProxyErrors, st.Status5xx, wantErrs)
			}
			if stable.Requests() != 0 {
				t.Errorf("stable got %d requests: a retry left its group", stable.Requests())
			}
		})
	}
}

func TestSetRejectsBadSplits(t *testing.T) {
	a, b := NewBackend("127.0.0.1:1"), NewBackend("127.0.0.1:2")
	tests := []struct {
		name   string
		route  Route
		reason string
	}{
		{"weight over 100", Route{Release: "v1", Backends: []*Backend{a}, Canary: &Group{Release: "v2", Backends: []*Backend{b}, Weight: 101}}, "percentage"},
		{"negative weight", Route{Release: "v1", Backends: []*Backend{a}, Canary: &Group{Release: "v2", Backends: []*Backend{b}, Weight: -1}}, "percentage"},
		{"no stable", Route{Release: "v1", Canary: &Group{Release: "v2", Backends: []*Backend{b}, Weight: 10}}, "stable backends"},
		{"empty canary", Route{Release: "v1", Backends: []*Backend{a}, Canary: &Group{Release: "v2", Weight: 10}}, "no backend"},
		{"same release", Route{Release: "v1", Backends: []*Backend{a}, Canary: &Group{Release: "v1", Backends: []*Backend{b}}}, "same release"},
		{"backend in both", Route{Release: "v1", Backends: []*Backend{a}, Canary: &Group{Release: "v2", Backends: []*Backend{a}}}, "both"},
		{"nil canary backend", Route{Release: "v1", Backends: []*Backend{a}, Canary: &Group{Release: "v2", Backends: []*Backend{nil}}}, "nil"},
		{"negative hold", Route{Hold: true, HoldTimeout: -time.Second}, "negative hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Options{})
			tt.route.App, tt.route.Hosts = "app", []string{"app.localhost"}
			_, err := r.Set(tt.route)
			if !errors.Is(err, ErrInvalidRoute) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Set: %v, want ErrInvalidRoute saying %q", err, tt.reason)
			}
		})
	}
}
