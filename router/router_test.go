package router

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// logBuffer collects slog output from concurrent goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// newTestRouter returns a router, an HTTP server in front of it, and the
// router's log.
func newTestRouter(t *testing.T) (*Router, *httptest.Server, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	r := New(Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	front := newFrontServer(t, r)
	t.Cleanup(func() {
		front.Close()
		r.CloseIdleConnections()
	})
	return r, front, logs
}

// newFrontServer serves r the way the daemon does: the fast front end
// with net/http behind it, or net/http alone when PLAT_ROUTER_FRONT is
// "nethttp" (test.sh runs the package both ways). The caller closes it.
func newFrontServer(t *testing.T, r *Router) *httptest.Server {
	t.Helper()
	front := httptest.NewUnstartedServer(r)
	if os.Getenv("PLAT_ROUTER_FRONT") != "nethttp" {
		fl := r.FastListener(front.Listener, FastOptions{})
		front.Listener = fl
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = fl.Shutdown(ctx)
		})
	}
	front.Start()
	return front
}

// newBackendServer starts an httptest server on 127.0.0.1 and returns it
// with a Backend for its address.
func newBackendServer(t *testing.T, h http.Handler) (*httptest.Server, *Backend) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, NewBackend(srv.Listener.Addr().String())
}

func textHandler(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, body)
	})
}

// get sends GET path to the front server with the given Host header.
func get(t *testing.T, front *httptest.Server, host, path string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, front.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := front.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", path, host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(body)
}

func mustSet(t *testing.T, r *Router, rt Route) []*Backend {
	t.Helper()
	prev, err := r.Set(rt)
	if err != nil {
		t.Fatalf("Set(%s): %v", rt.App, err)
	}
	return prev
}

// waitFor polls cond every millisecond until it holds or 5s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHostRouting(t *testing.T) {
	r, front, _ := newTestRouter(t)
	_, a := newBackendServer(t, textHandler("app-a"))
	_, b := newBackendServer(t, textHandler("app-b"))
	mustSet(t, r, Route{App: "a", Hosts: []string{"a.localhost", "WWW.Example.com."}, Backends: []*Backend{a}})
	mustSet(t, r, Route{App: "b", Hosts: []string{"b.localhost"}, Backends: []*Backend{b}})

	tests := []struct {
		host       string
		wantStatus int
		wantBody   string
	}{
		{"a.localhost", 200, "app-a"},
		{"a.localhost:8080", 200, "app-a"},
		{"A.LocalHost", 200, "app-a"},
		{"a.localhost.", 200, "app-a"},
		{"A.localhost.:443", 200, "app-a"},
		{"www.example.com", 200, "app-a"},
		{"b.localhost", 200, "app-b"},
		{"B.LOCALHOST:80", 200, "app-b"},
		{"c.localhost", 404, "no app is served at c.localhost"},
		{"example.com", 404, "no app is served at example.com"},
		{"localhost", 404, "no app is served at localhost"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			resp, body := get(t, front, tt.host, "/", nil)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d (body %q)", resp.StatusCode, tt.wantStatus, body)
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("body = %q, want it to contain %q", body, tt.wantBody)
			}
		})
	}
}

func TestRoundRobin(t *testing.T) {
	r, front, _ := newTestRouter(t)
	_, a := newBackendServer(t, textHandler("a"))
	_, b := newBackendServer(t, textHandler("b"))
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{a, b}})
	counts := map[string]int{}
	for range 10 {
		_, body := get(t, front, "app.localhost", "/", nil)
		counts[body]++
	}
	if counts["a"] != 5 || counts["b"] != 5 {
		t.Errorf("round robin counts = %v, want 5 each", counts)
	}
}

func TestUnknownHostIsNotForwarded(t *testing.T) {
	r, front, _ := newTestRouter(t)
	var hits atomic.Int64
	srv, b := newBackendServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
	}))
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{b}})

	// Plain unknown Host header.
	resp, body := get(t, front, "evil.example", "/", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "no app is served at evil.example") {
		t.Errorf("unknown host: %d %q", resp.StatusCode, body)
	}

	// Absolute-form request line naming the backend itself: an open proxy
	// would forward it.
	conn, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s/secret HTTP/1.1\r\nHost: app.localhost\r\nConnection: close\r\n\r\n", srv.URL)
	resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("absolute-form request to backend address: status %d, want 404", resp.StatusCode)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("backend was contacted %d times for unknown hosts", n)
	}
}

func TestNoBackends503(t *testing.T) {
	r, front, _ := newTestRouter(t)
	mustSet(t, r, Route{App: "myapp", Hosts: []string{"myapp.localhost"}})
	resp, body := get(t, front, "myapp.localhost", "/", nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", resp.StatusCode)
	}
	if got := resp.Header.Get("Retry-After"); got != "5" {
		t.Errorf("Retry-After = %q, want 5", got)
	}
	if !strings.Contains(body, "app myapp has no running release; deploy it with git push") {
		t.Errorf("body = %q", body)
	}
}

func TestDeadBackend502(t *testing.T) {
	r, front, logs := newTestRouter(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now: connection refused
	b := NewBackend(addr)
	mustSet(t, r, Route{App: "myapp", Hosts: []string{"myapp.localhost"}, Backends: []*Backend{b}})

	resp, body := get(t, front, "myapp.localhost", "/", nil)
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status = %d, want 502", resp.StatusCode)
	}
	for _, want := range []string{"app myapp did not answer", "plat logs myapp"} {
		if !strings.Contains(body, want) {
			t.Errorf("body = %q, want it to contain %q", body, want)
		}
	}
	if strings.Contains(body, addr) {
		t.Errorf("body leaks the backend address: %q", body)
	}
	log := logs.String()
	for _, want := range []string{"level=ERROR", "app=myapp", "backend=" + addr, "error="} {
		if !strings.Contains(log, want) {
			t.Errorf("log = %q, want it to contain %q", log, want)
		}
	}
	if n := b.InFlight(); n != 0 {
		t.Errorf("in flight after 502 = %d", n)
	}
}

func TestClientCancelIsNotAnError(t *testing.T) {
	r, front, logs := newTestRouter(t)
	started := make(chan struct{})
	srvDone := make(chan struct{})
	_, b := newBackendServer(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		defer close(srvDone)
		close(started)
		<-req.Context().Done()
	}))
	mustSet(t, r, Route{App: "myapp", Hosts: []string{"myapp.localhost"}, Backends: []*Backend{b}})

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL, nil)
	req.Host = "myapp.localhost"
	errc := make(chan error, 1)
	go func() {
		resp, err := front.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("client error = %v, want context.Canceled", err)
	}
	<-srvDone
	waitFor(t, "request to finish in the router", func() bool { return b.InFlight() == 0 })
	log := logs.String()
	if strings.Contains(log, "level=ERROR") || strings.Contains(log, "level=WARN") {
		t.Errorf("client cancellation was logged as a problem: %q", log)
	}
}

func TestForwardedHeadersAndRequestID(t *testing.T) {
	r, front, _ := newTestRouter(t)
	type seen struct {
		Host   string
		Header http.Header
	}
	_, b := newBackendServer(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_ = json.NewEncoder(w).Encode(seen{Host: req.Host, Header: req.Header})
	}))
	mustSet(t, r, Route{App: "myapp", Hosts: []string{"myapp.localhost"}, Backends: []*Backend{b}})
	hexID := regexp.MustCompile(`^[0-9a-f]{16}$`)

	tests := []struct {
		name   string
		host   string
		header http.Header
		wantID string // "" → a generated 16-hex id
	}{
		{"generated id", "MyApp.localhost:8080", nil, ""},
		{"kept id", "myapp.localhost", http.Header{"X-Request-Id": {"abc-123"}}, "abc-123"},
		{"client forwarded headers are not trusted", "myapp.localhost",
			http.Header{"X-Forwarded-For": {"6.6.6.6"}, "X-Forwarded-Host": {"evil"}, "X-Forwarded-Proto": {"https"}}, ""},
	}
	ids := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, front, tt.host, "/path?q=1", tt.header)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var s seen
			if err := json.Unmarshal([]byte(body), &s); err != nil {
				t.Fatalf("decode %q: %v", body, err)
			}
			if s.Host != tt.host {
				t.Errorf("backend saw Host %q, want %q", s.Host, tt.host)
			}
			checks := map[string]string{
				"X-Forwarded-For":   "127.0.0.1",
				"X-Forwarded-Proto": "http",
				"X-Forwarded-Host":  tt.host,
			}
			for k, want := range checks {
				if got := s.Header[k]; len(got) != 1 || got[0] != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			id := s.Header.Get("X-Request-Id")
			if tt.wantID != "" {
				if id != tt.wantID {
					t.Errorf("X-Request-Id = %q, want %q", id, tt.wantID)
				}
			} else {
				if !hexID.MatchString(id) {
					t.Errorf("X-Request-Id = %q, want 16 hex chars", id)
				}
				if ids[id] {
					t.Errorf("X-Request-Id %q repeated", id)
				}
				ids[id] = true
			}
		})
	}
}

func TestSetLookupRemove(t *testing.T) {
	r := New(Options{})
	b1, b2, b3 := NewBackend("127.0.0.1:1"), NewBackend("127.0.0.1:2"), NewBackend("127.0.0.1:3")

	prev, err := r.Set(Route{App: "a", Hosts: []string{"A.Localhost.", "a.localhost", "www.a.com:443"}, Backends: []*Backend{b1}})
	if err != nil || prev != nil {
		t.Fatalf("first Set = %v, %v; want nil, nil", prev, err)
	}
	rt, ok := r.Lookup("a.LOCALHOST:8080")
	if !ok || rt.App != "a" || !slices.Equal(rt.Hosts, []string{"a.localhost", "www.a.com"}) || !slices.Equal(rt.Backends, []*Backend{b1}) {
		t.Fatalf("Lookup = %+v, %v", rt, ok)
	}

	prev, err = r.Set(Route{App: "a", Hosts: []string{"a.localhost", "new.a.com"}, Backends: []*Backend{b2, b3}})
	if err != nil || !slices.Equal(prev, []*Backend{b1}) {
		t.Fatalf("second Set = %v, %v; want [b1], nil", prev, err)
	}
	if _, ok := r.Lookup("www.a.com"); ok {
		t.Error("host dropped from the route is still routed")
	}
	if rt, ok := r.Lookup("new.a.com"); !ok || rt.App != "a" {
		t.Error("new host is not routed")
	}

	// A host of another app: error, nothing changes.
	_, err = r.Set(Route{App: "b", Hosts: []string{"b.localhost", "A.localhost"}, Backends: []*Backend{b1}})
	if !errors.Is(err, ErrHostTaken) || !strings.Contains(err.Error(), "a.localhost") {
		t.Fatalf("Set with a taken host: err = %v, want ErrHostTaken naming the host", err)
	}
	if _, ok := r.Lookup("b.localhost"); ok {
		t.Error("failed Set changed the table")
	}
	if rt, _ := r.Lookup("a.localhost"); rt.App != "a" {
		t.Error("failed Set stole the host")
	}

	for _, bad := range []Route{
		{App: "", Hosts: []string{"x.localhost"}},
		{App: "x", Hosts: []string{"."}},
		{App: "x", Hosts: []string{"x.localhost"}, Backends: []*Backend{nil}},
	} {
		if _, err := r.Set(bad); !errors.Is(err, ErrInvalidRoute) {
			t.Errorf("Set(%+v) err = %v, want ErrInvalidRoute", bad, err)
		}
	}

	// The caller's slice is copied.
	backends := []*Backend{b1}
	mustSet(t, r, Route{App: "c", Hosts: []string{"c.localhost"}, Backends: backends})
	backends[0] = b3
	if rt, _ := r.Lookup("c.localhost"); rt.Backends[0] != b1 {
		t.Error("Set kept the caller's slice")
	}

	if prev := r.Remove("a"); !slices.Equal(prev, []*Backend{b2, b3}) {
		t.Errorf("Remove = %v, want [b2 b3]", prev)
	}
	if _, ok := r.Lookup("a.localhost"); ok {
		t.Error("removed app still routed")
	}
	if prev := r.Remove("a"); prev != nil {
		t.Errorf("second Remove = %v, want nil", prev)
	}
	// The freed host can be taken by another app now.
	if _, err := r.Set(Route{App: "b", Hosts: []string{"a.localhost"}}); err != nil {
		t.Errorf("Set of a freed host: %v", err)
	}
}

// TestSwapUnderLoad is the blue-green property: while clients hammer the
// router, the app is swapped to a fresh backend again and again, the old one
// is drained and then shut down, and not a single request fails.
func TestSwapUnderLoad(t *testing.T) {
	r, front, logs := newTestRouter(t)
	const host = "app.localhost"
	var served atomic.Int64
	handler := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPost {
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
		}
		if served.Add(1)%8 == 0 {
			time.Sleep(2 * time.Millisecond) // keep some requests in flight across swaps
		}
		_, _ = io.WriteString(w, "ok")
	})
	newServer := func() (*httptest.Server, *Backend) {
		srv := httptest.NewServer(handler)
		return srv, NewBackend(srv.Listener.Addr().String())
	}
	current, b := newServer()
	mustSet(t, r, Route{App: "app", Hosts: []string{host}, Backends: []*Backend{b}})

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	var ok, failed atomic.Int64
	var firstErr sync.Once
	var errMsg string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var req *http.Request
				if (g+i)%2 == 0 {
					req, _ = http.NewRequest(http.MethodGet, front.URL+"/", nil)
				} else {
					req, _ = http.NewRequest(http.MethodPost, front.URL+"/", strings.NewReader("payload"))
				}
				req.Host = host
				resp, err := client.Do(req)
				if err == nil {
					var body []byte
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != 200 || string(body) != "ok") {
						err = fmt.Errorf("status %d body %q", resp.StatusCode, body)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.Do(func() { errMsg = err.Error() })
					continue
				}
				ok.Add(1)
			}
		})
	}

	// Swap for about a second, and at least minSwaps times on a slow
	// machine (the race detector slows everything down a lot). Before each
	// swap, wait until some requests went through the current backend, so
	// every swap happens under load.
	const minSwaps = 20
	swaps := 0
	var maxDrain time.Duration
	deadline := time.Now().Add(time.Second)
	hardStop := time.Now().Add(20 * time.Second)
	for (time.Now().Before(deadline) || swaps < minSwaps) && time.Now().Before(hardStop) {
		before := ok.Load()
		time.Sleep(2 * time.Millisecond)
		for ok.Load() < before+5 && failed.Load() == 0 && time.Now().Before(hardStop) {
			time.Sleep(time.Millisecond)
		}
		next, nb := newServer()
		prev, err := r.Set(Route{App: "app", Hosts: []string{host}, Backends: []*Backend{nb}})
		if err != nil {
			t.Fatal(err)
		}
		for _, pb := range prev {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			t0 := time.Now()
			err := pb.Drain(ctx)
			maxDrain = max(maxDrain, time.Since(t0))
			if err != nil {
				t.Errorf("drain %s: %v", pb.Addr(), err)
			}
			cancel()
		}
		current.Close() // the old container stops
		current = next
		swaps++
	}
	close(stop)
	wg.Wait()
	current.Close()

	t.Logf("%d swaps, %d requests ok, %d failed, longest drain %v", swaps, ok.Load(), failed.Load(), maxDrain)
	if n := failed.Load(); n > 0 {
		t.Errorf("%d requests failed across swaps; first: %s\nrouter log:\n%s", n, errMsg, logs.String())
	}
	if swaps < minSwaps {
		t.Errorf("test did too little: %d swaps, %d requests", swaps, ok.Load())
	}
}

// slowBackend answers after delay and sets done just before answering.
func slowBackend(t *testing.T, delay time.Duration) (*Backend, *atomic.Bool) {
	var done atomic.Bool
	_, b := newBackendServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(delay)
		done.Store(true)
		_, _ = io.WriteString(w, "slow")
	}))
	return b, &done
}

func TestDrainWaitsForInFlightRequest(t *testing.T) {
	r, front, _ := newTestRouter(t)
	b, done := slowBackend(t, 300*time.Millisecond)
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{b}})

	respc := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, front.URL, nil)
		req.Host = "app.localhost"
		resp, err := front.Client().Do(req)
		if err != nil {
			respc <- -1
			return
		}
		resp.Body.Close()
		respc <- resp.StatusCode
	}()
	waitFor(t, "request in flight", func() bool { return b.InFlight() == 1 })

	prev, _ := r.Set(Route{App: "app", Hosts: []string{"app.localhost"}}) // swap away
	if !slices.Equal(prev, []*Backend{b}) {
		t.Fatalf("Set returned %v", prev)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	elapsed := time.Since(start)
	if !done.Load() {
		t.Error("Drain returned before the backend answered")
	}
	if elapsed < 100*time.Millisecond {
		t.Errorf("Drain returned after %v; expected it to wait for the slow request", elapsed)
	}
	if code := <-respc; code != 200 {
		t.Errorf("drained request got %d, want 200", code)
	}
	// Draining an idle backend returns at once.
	if err := b.Drain(context.Background()); err != nil {
		t.Errorf("Drain of idle backend: %v", err)
	}
}

func TestDrainTimeout(t *testing.T) {
	r, front, _ := newTestRouter(t)
	b, _ := slowBackend(t, 300*time.Millisecond)
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{b}})

	respc := make(chan struct{})
	go func() {
		defer close(respc)
		req, _ := http.NewRequest(http.MethodGet, front.URL, nil)
		req.Host = "app.localhost"
		if resp, err := front.Client().Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, "request in flight", func() bool { return b.InFlight() == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := b.Drain(ctx)
	if !errors.Is(err, ErrDrainIncomplete) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain err = %v, want ErrDrainIncomplete and DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "1 request in flight") {
		t.Errorf("Drain err = %q, want it to say how many requests are in flight", err)
	}
	<-respc
}

// TestDrainManyWaiters: every concurrent Drain is woken, not just one.
func TestDrainManyWaiters(t *testing.T) {
	b := NewBackend("127.0.0.1:1")
	b.acquire()
	errc := make(chan error, 4)
	for range 4 {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			errc <- b.Drain(ctx)
		}()
	}
	waitFor(t, "drainers waiting", func() bool { return b.drainers.Load() == 4 })
	b.release()
	for range 4 {
		if err := <-errc; err != nil {
			t.Errorf("Drain: %v", err)
		}
	}
}

// TestUpgrade: an Upgrade request is proxied, data flows both ways, and the
// upgraded connection counts as in flight until it closes.
func TestUpgrade(t *testing.T) {
	// With a dead replica first, the upgrade is retried on the live one,
	// which stays counted in flight until the upgraded connection closes.
	for _, withDead := range []bool{false, true} {
		t.Run(fmt.Sprintf("dead replica %v", withDead), func(t *testing.T) { testUpgrade(t, withDead) })
	}
}

func testUpgrade(t *testing.T, withDead bool) {
	r, front, _ := newTestRouter(t)
	_, b := newBackendServer(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Upgrade") != "plat-test" {
			http.Error(w, "want Upgrade: plat-test", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: plat-test\r\n\r\n")
		_ = brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = brw.WriteString("echo " + line)
			_ = brw.Flush()
		}
	}))
	backends := []*Backend{b}
	if withDead { // the first request goes to index 1
		backends = append(backends, NewBackend(closedAddr(t)))
	}
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: backends})

	conn, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(conn, "GET /ws HTTP/1.1\r\nHost: app.localhost\r\nConnection: Upgrade\r\nUpgrade: plat-test\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status = %d, want 101", resp.StatusCode)
	}
	if withDead && backends[1].downUntil.Load() == 0 {
		t.Error("the dead replica was not tried first")
	}
	for _, msg := range []string{"ping\n", "pong\n"} {
		fmt.Fprint(conn, msg)
		line, err := br.ReadString('\n')
		if err != nil || line != "echo "+msg {
			t.Fatalf("read %q, %v; want %q", line, err, "echo "+msg)
		}
	}
	if n := b.InFlight(); n != 1 {
		t.Errorf("in flight with an open upgraded connection = %d, want 1", n)
	}
	// The upgrade is a 1xx of its release, in flight while open; its
	// duration would only distort the release's latency.
	if st, _ := r.ReleaseStats("app", ""); st.Requests != 1 || st.InFlight != 1 || st.Latency.Count() != 0 {
		t.Errorf("release stats with an open upgraded connection: %+v", st)
	}

	r.Remove("app")
	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		drained <- b.Drain(ctx)
	}()
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) while the upgraded connection is open", err)
	case <-time.After(150 * time.Millisecond):
	}
	// The connection still works while draining.
	fmt.Fprint(conn, "still\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo still\n" {
		t.Fatalf("read %q, %v while draining", line, err)
	}
	conn.Close()
	select {
	case err := <-drained:
		if err != nil {
			t.Errorf("Drain: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not return after the upgraded connection closed")
	}
}

// TestStreaming: a flushed first chunk reaches the client while the backend
// handler is still running.
func TestStreaming(t *testing.T) {
	r, front, _ := newTestRouter(t)
	var finished atomic.Bool
	_, b := newBackendServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "first\n")
		_ = http.NewResponseController(w).Flush()
		time.Sleep(500 * time.Millisecond)
		finished.Store(true)
		_, _ = io.WriteString(w, "rest\n")
	}))
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{b}})

	req, _ := http.NewRequest(http.MethodGet, front.URL, nil)
	req.Host = "app.localhost"
	start := time.Now()
	resp, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first chunk = %q, %v", line, err)
	}
	if finished.Load() {
		t.Errorf("first chunk arrived only after the handler finished (%v)", time.Since(start))
	}
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "rest\n" {
		t.Errorf("rest = %q, %v", rest, err)
	}
}

func TestNormalizeHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"app.localhost", "app.localhost"},
		{"App.LocalHost:8080", "app.localhost"},
		{"app.localhost.", "app.localhost"},
		{"app.localhost.:80", "app.localhost"},
		{"[::1]:8080", "[::1]"},
		{"[::1]", "[::1]"},
		{"::1", "::1"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := normalizeHost(tt.in); got != tt.want {
			t.Errorf("normalizeHost(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { normalizeHost("app.localhost:8080") }); n != 0 {
		t.Errorf("normalizeHost allocates %v times for a lower-case host", n)
	}
}

// hostTransport records the backend address of each request and answers 200.
type hostTransport struct {
	mu    sync.Mutex
	addrs []string
}

func (ht *hostTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ht.mu.Lock()
	ht.addrs = append(ht.addrs, req.URL.Host)
	ht.mu.Unlock()
	return staticTransport{}.RoundTrip(req)
}

// TestPickRechecksTableAfterCounting drives the drain race deterministically:
// the table is swapped after a request chose a backend but before it counted
// itself in flight on it.
func TestPickRechecksTableAfterCounting(t *testing.T) {
	b1, b2, b3 := NewBackend("127.0.0.1:1"), NewBackend("127.0.0.1:2"), NewBackend("127.0.0.1:3")
	tests := []struct {
		name      string
		swapTo    []*Backend
		wantAddr  string // where the request must go
		wantPicks int    // backend choices made
	}{
		// The chosen backend (b2: round robin starts at index 1) left the
		// route: the request must not go to it, but to the new one.
		{"chosen backend removed", []*Backend{b3}, "127.0.0.1:3", 2},
		// The table changed but still routes to the chosen backend: go on.
		{"chosen backend kept", []*Backend{b3, b2}, "127.0.0.1:2", 1},
		// The app went away: 404, nothing forwarded.
		{"app removed", nil, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ht := &hostTransport{}
			r := New(Options{Transport: ht, Logger: slog.New(slog.DiscardHandler)})
			mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{b1, b2}})
			picks := 0
			testHookPicked = func() {
				picks++
				if picks > 1 {
					return
				}
				if tt.swapTo == nil {
					r.Remove("app")
				} else {
					mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: tt.swapTo})
				}
			}
			defer func() { testHookPicked = nil }()

			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://app.localhost/", nil))
			if tt.wantAddr == "" {
				if w.Code != http.StatusNotFound || len(ht.addrs) != 0 {
					t.Errorf("status %d, forwarded to %v; want 404 and nothing forwarded", w.Code, ht.addrs)
				}
			} else if w.Code != 200 || !slices.Equal(ht.addrs, []string{tt.wantAddr}) {
				t.Errorf("status %d, forwarded to %v; want 200 via %s", w.Code, ht.addrs, tt.wantAddr)
			}
			if picks != tt.wantPicks {
				t.Errorf("backend chosen %d times, want %d", picks, tt.wantPicks)
			}
			for _, b := range []*Backend{b1, b2, b3} {
				if n := b.InFlight(); n != 0 {
					t.Errorf("%s in flight = %d after the request", b.Addr(), n)
				}
			}
		})
	}
}

// TestRetireClosesIdleConnections: a backend that left its route is
// drained and the router's keep-alive connections to it are closed at once,
// not after the idle sweep (the soak run saw two more open descriptors per
// deploy until the sweep).
func TestRetireClosesIdleConnections(t *testing.T) {
	r, front, _ := newTestRouter(t)
	var open atomic.Int64
	srv := httptest.NewUnstartedServer(textHandler("blue"))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	blue := NewBackend(srv.Listener.Addr().String())
	_, green := newBackendServer(t, textHandler("green"))

	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{blue}})
	for range 3 {
		if _, body := get(t, front, "app.localhost", "/", nil); body != "blue" {
			t.Fatalf("got %q", body)
		}
		post, _ := http.NewRequest(http.MethodPost, front.URL, strings.NewReader("x"))
		post.Host = "app.localhost"
		resp, err := front.Client().Do(post)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if open.Load() == 0 {
		t.Fatal("the router kept no connection to the backend; nothing to test")
	}
	mustSet(t, r, Route{App: "app", Hosts: []string{"app.localhost"}, Backends: []*Backend{green}})
	if err := r.Retire(context.Background(), blue); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the router's idle connections to the retired backend to close", func() bool { return open.Load() == 0 })
	if _, body := get(t, front, "app.localhost", "/", nil); body != "green" {
		t.Errorf("after the retire: %q", body)
	}
}
