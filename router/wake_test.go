package router

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sleepingApp returns a router whose app "myapp" (host myapp.localhost) is
// asleep, with the HTTP server in front of it.
func sleepingApp(t *testing.T, opts Options) (*Router, *httptest.Server) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := New(opts)
	front := httptest.NewServer(r)
	t.Cleanup(func() {
		front.Close()
		r.CloseIdleConnections()
	})
	mustSet(t, r, Route{App: "myapp", Hosts: []string{"myapp.localhost"}, Asleep: true})
	return r, front
}

// getCtx is get with a context, returning the error instead of failing.
func getCtx(ctx context.Context, front *httptest.Server, host string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, front.URL+"/", nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := front.Client().Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func TestWakeConcurrentRequestsShareOneWake(t *testing.T) {
	r, front := sleepingApp(t, Options{})
	_, backend := newBackendServer(t, textHandler("awake"))
	var calls atomic.Int32
	r.SetWaker(func(ctx context.Context, app string) error {
		calls.Add(1)
		if _, ok := ctx.Deadline(); !ok {
			t.Error("waker context has no deadline")
		}
		time.Sleep(300 * time.Millisecond) // the container starting
		_, err := r.Set(Route{App: app, Hosts: []string{"myapp.localhost"}, Backends: []*Backend{backend}})
		return err
	})
	if st, _ := r.Stats("myapp"); !st.Asleep || st.Backends != 0 {
		t.Fatalf("stats before the wake = %+v, want asleep without backends", st)
	}

	const n = 20
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for range n {
		wg.Go(func() {
			status, body, err := getCtx(t.Context(), front, "myapp.localhost")
			if err != nil || status != http.StatusOK || body != "awake" {
				errs <- strings.TrimSpace(body) + " " + http.StatusText(status) + " " + errString(err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("request failed: %s", e)
	}
	if c := calls.Load(); c != 1 {
		t.Errorf("waker called %d times, want 1", c)
	}
	st, ok := r.Stats("myapp")
	if !ok || st.Asleep || st.Backends != 1 || st.InFlight != 0 {
		t.Errorf("stats after the wake = %+v, %v; want awake, 1 backend, nothing in flight", st, ok)
	}
	if st.Requests < n {
		t.Errorf("stats count %d requests, want at least %d", st.Requests, n)
	}
	if rt, _ := r.Lookup("myapp.localhost"); rt.Asleep {
		t.Error("Lookup says asleep after the wake")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestWakeFailure(t *testing.T) {
	tests := []struct {
		name     string
		timeout  time.Duration
		wake     func(ctx context.Context) error
		wantBody []string
	}{
		{
			name:    "waker error",
			timeout: 5 * time.Second,
			wake: func(context.Context) error {
				return errors.New("health check failed: connection refused")
			},
			wantBody: []string{"504 gateway timeout: app myapp did not wake up within 5s: health check failed: connection refused",
				"plat logs myapp"},
		},
		{
			name:    "waker exceeds the wake timeout",
			timeout: 200 * time.Millisecond,
			wake: func(ctx context.Context) error {
				<-ctx.Done()
				return ctx.Err()
			},
			wantBody: []string{"504 gateway timeout: app myapp did not wake up within 200ms", "plat logs myapp"},
		},
		{
			name:    "waker ignores its deadline",
			timeout: 200 * time.Millisecond,
			wake: func(context.Context) error {
				time.Sleep(time.Second)
				return nil
			},
			wantBody: []string{"504 gateway timeout: app myapp did not wake up within 200ms: it is still starting"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, front := sleepingApp(t, Options{WakeTimeout: tt.timeout})
			r.SetWaker(func(ctx context.Context, _ string) error { return tt.wake(ctx) })
			status, body, err := getCtx(t.Context(), front, "myapp.localhost")
			if err != nil {
				t.Fatal(err)
			}
			if status != http.StatusGatewayTimeout {
				t.Errorf("status = %d, want 504 (body %q)", status, body)
			}
			for _, want := range tt.wantBody {
				if !strings.Contains(body, want) {
					t.Errorf("body = %q, want it to contain %q", body, want)
				}
			}
			if st, _ := r.Stats("myapp"); !st.Asleep || st.Requests != 1 {
				t.Errorf("stats = %+v, want still asleep with 1 request counted", st)
			}
		})
	}
}

func TestWakeSurvivesClientCancel(t *testing.T) {
	r, front := sleepingApp(t, Options{})
	_, backend := newBackendServer(t, textHandler("awake"))
	var calls atomic.Int32
	entered, proceed := make(chan struct{}), make(chan struct{})
	wakeCtxErr := make(chan error, 1)
	r.SetWaker(func(ctx context.Context, app string) error {
		calls.Add(1)
		close(entered)
		<-proceed
		wakeCtxErr <- ctx.Err()
		_, err := r.Set(Route{App: app, Hosts: []string{"myapp.localhost"}, Backends: []*Backend{backend}})
		return err
	})

	// The first client starts the wake and gives up.
	ctx, cancel := context.WithCancel(t.Context())
	firstDone := make(chan error, 1)
	go func() {
		_, _, err := getCtx(ctx, front, "myapp.localhost")
		firstDone <- err
	}()
	<-entered
	// A second client joins the same wake.
	second := make(chan string, 1)
	go func() {
		status, body, err := getCtx(t.Context(), front, "myapp.localhost")
		second <- http.StatusText(status) + " " + body + errString(err)
	}()
	cancel()
	if err := <-firstDone; !errors.Is(err, context.Canceled) {
		t.Errorf("first client: err = %v, want context.Canceled", err)
	}
	// Give the router time to see the first client leave before the wake
	// goes on; the wake must not notice.
	time.Sleep(100 * time.Millisecond)
	close(proceed)
	if err := <-wakeCtxErr; err != nil {
		t.Errorf("the wake's context ended when the first client left: %v", err)
	}
	if got := <-second; got != "OK awake" {
		t.Errorf("second client got %q, want OK awake", got)
	}
	if c := calls.Load(); c != 1 {
		t.Errorf("waker called %d times, want 1", c)
	}
}

func TestAsleepWithoutWaker503(t *testing.T) {
	_, front := sleepingApp(t, Options{})
	status, body, err := getCtx(t.Context(), front, "myapp.localhost")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "app myapp has no running release") {
		t.Errorf("got %d %q, want the 503 page", status, body)
	}
}

func TestAsleepRoute(t *testing.T) {
	b := NewBackend("127.0.0.1:1")
	tests := []struct {
		name       string
		route      Route
		wantAsleep bool
	}{
		{"asleep without backends", Route{Asleep: true}, true},
		{"asleep ignored with backends", Route{Asleep: true, Backends: []*Backend{b}}, false},
		{"awake", Route{Backends: []*Backend{b}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Options{Logger: slog.New(slog.DiscardHandler)})
			tt.route.App, tt.route.Hosts = "myapp", []string{"myapp.localhost"}
			mustSet(t, r, tt.route)
			rt, ok := r.Lookup("myapp.localhost")
			if !ok || rt.Asleep != tt.wantAsleep {
				t.Errorf("Lookup: Asleep = %v (found %v), want %v", rt.Asleep, ok, tt.wantAsleep)
			}
			st, ok := r.Stats("myapp")
			if !ok || st.Asleep != tt.wantAsleep || st.Backends != len(tt.route.Backends) {
				t.Errorf("Stats = %+v (found %v), want Asleep %v with %d backends", st, ok, tt.wantAsleep, len(tt.route.Backends))
			}
			if _, ok := r.Stats("other"); ok {
				t.Error("Stats found an unknown app")
			}
		})
	}
}

// TestAsleepRequestsCarryOver: re-installing an asleep route (new hosts)
// keeps its request count, so the idle timer does not see activity.
func TestAsleepRequestsCarryOver(t *testing.T) {
	r, front := sleepingApp(t, Options{})
	for range 3 {
		if _, _, err := getCtx(t.Context(), front, "myapp.localhost"); err != nil {
			t.Fatal(err)
		}
	}
	mustSet(t, r, Route{App: "myapp", Hosts: []string{"myapp.localhost", "www.example.com"}, Asleep: true})
	if st, _ := r.Stats("myapp"); st.Requests != 3 {
		t.Errorf("Requests = %d after re-installing the route, want 3", st.Requests)
	}
}
