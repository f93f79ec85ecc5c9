package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/plat-paas/plat/internal/browsertest"
	"github.com/plat-paas/plat/logs"
)

const testToken = "dashboard-test-token"

// scaleAPI is a daemon's API for one app, "web", speaking the scaling wire
// format (docs/api.md); the test changes its state as the daemon would.
type scaleAPI struct {
	mu       sync.Mutex
	status   string
	replicas []map[string]any
	scale    map[string]any
	bodies   []string // POST /scale bodies
}

func (a *scaleAPI) app() map[string]any {
	return map[string]any{"name": "web", "status": a.status, "active": 3, "replicas": len(a.replicas), "scale": a.scale,
		"url": "http://web.localhost:8080", "git_url": "http://127.0.0.1/git/web.git", "deployed_at": time.Now().UTC(), "health": map[string]any{},
		"strategy": map[string]any{"name": "canary", "steps": []int{10, 50, 100}, "step_time": "1m", "max_error_rate": 1, "max_p99": "0s", "min_requests": 50,
			"description": "canary (steps 10,50,100 every 1m, max 5xx 1%, max p99 off, min 50 requests per step)"}}
}

func (a *scaleAPI) wake(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status, a.replicas = "running", nil
	for i := 1; i <= n; i++ {
		a.replicas = append(a.replicas, map[string]any{"name": fmt.Sprintf("plat-web-v3.%d", i), "label": fmt.Sprintf("web.%d", i),
			"container_id": fmt.Sprintf("c%d0123456789abcdef", i), "release": 3, "state": "running", "addr": fmt.Sprintf("127.0.0.1:3276%d", i), "in_flight": i})
	}
}

func (a *scaleAPI) handler() http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /api/whoami", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, map[string]bool{"ok": true}) })
	mux.HandleFunc("GET /api/apps", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		reply(w, 200, []any{a.app()})
	})
	mux.HandleFunc("GET /api/apps/web", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		reply(w, 200, a.app())
	})
	mux.HandleFunc("GET /api/apps/web/ps", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		reply(w, 200, append([]map[string]any{}, a.replicas...))
	})
	for _, p := range []string{"releases", "events"} {
		mux.HandleFunc("GET /api/apps/web/"+p, func(w http.ResponseWriter, r *http.Request) { reply(w, 200, []any{}) })
	}
	snapshot := func() []sseEvent {
		a.mu.Lock()
		defer a.mu.Unlock()
		return []sseEvent{{"app", a.app()}, {"releases", []any{}}, {"events", []any{}},
			{"domains", map[string]any{"default": "web.localhost", "domains": []string{}}}, {"ps", append([]map[string]any{}, a.replicas...)}}
	}
	mux.HandleFunc("GET /api/apps/web/watch", func(w http.ResponseWriter, r *http.Request) {
		serveSSE(w, r, 200*time.Millisecond, nil, snapshot)
	})
	mux.HandleFunc("GET /api/watch", func(w http.ResponseWriter, r *http.Request) {
		serveSSE(w, r, 200*time.Millisecond, nil, func() []sseEvent {
			a.mu.Lock()
			defer a.mu.Unlock()
			return []sseEvent{{"apps", []any{a.app()}}}
		})
	})
	mux.HandleFunc("GET /api/apps/web/config", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, map[string]string{}) })
	mux.HandleFunc("GET /api/apps/web/domains", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, map[string]any{"domains": []string{}}) })
	mux.HandleFunc("GET /api/apps/web/deploy", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 404, map[string]string{"error": "not deployed"})
	})
	mux.HandleFunc("POST /api/apps/web/scale", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body struct {
			Min, Max, Target int
			Idle             string
		}
		json.Unmarshal(b, &body)
		a.mu.Lock()
		defer a.mu.Unlock()
		a.bodies = append(a.bodies, string(b))
		if body.Min > body.Max {
			reply(w, 400, map[string]string{"error": fmt.Sprintf("min %d is more than max %d", body.Min, body.Max)})
			return
		}
		a.scale = map[string]any{"min": body.Min, "max": body.Max, "idle": body.Idle, "target": body.Target}
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		enc.Encode(map[string]string{"progress": "-----> Scaling web"})
		enc.Encode(map[string]any{"app": a.app()})
	})
	return mux
}

// twoReplicas is a log source whose two containers each print a line.
type twoReplicas struct{}

func (twoReplicas) ActiveContainers(string) ([]logs.Container, error) {
	return []logs.Container{{ID: "c1", Label: "web.1"}, {ID: "c2", Label: "web.2"}}, nil
}

func (twoReplicas) TimedLogs(ctx context.Context, id string, since time.Time, tail int, follow bool, w io.Writer) error {
	if follow {
		fmt.Fprintf(w, "%s hello from %s\n", time.Now().UTC().Format(time.RFC3339Nano), id)
		<-ctx.Done()
	}
	return nil
}

func TestDashboardScaling(t *testing.T) {
	chromium := browsertest.Require(t)
	api := &scaleAPI{status: "sleeping", scale: map[string]any{"min": 0, "max": 1, "idle": "5m0s", "target": 10}}
	hub := logs.NewHub(twoReplicas{}, logs.Options{})
	t.Cleanup(hub.Close)
	d := New(Options{VerifyToken: func(tok string) (uint64, error) {
		if tok != testToken {
			return 0, errors.New("unknown token")
		}
		return 1, nil
	}, Logs: hub})
	pages, apiMux := d.Handler(), api.handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			pages.ServeHTTP(w, r)
			return
		}
		if err := d.Authorize(r); err != nil { // session cookie, and CSRF token on changes
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/api/apps/web/logs/ws" {
			d.ServeLogs(w, r, "web")
			return
		}
		apiMux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ctx := browsertest.New(t, chromium)
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	screenshot := func(name string) { // for a look, when PLAT_TEST_OUT is set
		if dir := os.Getenv("PLAT_TEST_OUT"); dir != "" {
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			must(err)
			must(os.WriteFile(filepath.Join(dir, name), png, 0o644))
		}
	}

	// The apps list shows a sleeping app as such, with no replicas.
	must(chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), testToken),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS(`.app-card[data-app="web"][data-status="sleeping"] .badge.sleeping`)),
	))
	if got := text(`.app-card[data-app="web"] dd.replicas`); got != "0" {
		t.Errorf("sleeping app's replicas on the apps page: %q, want 0", got)
	}
	screenshot("dashboard-apps-sleeping.png")

	// Its page says it sleeps and how it is scaled.
	must(chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`.app-card[data-app="web"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#app-status.sleeping`)),
		chromedp.WaitVisible(chromedp.CSS(`#replicas-none`)),
	))
	if got := text("#replicas-none"); !strings.Contains(got, "next request wakes") {
		t.Errorf("replicas of a sleeping app: %q", got)
	}
	if got := text("#scale-settings"); got != "min 0, max 1, idle 5m, target 10 (sleeps after 5m without requests)" {
		t.Errorf("scale settings %q", got)
	}
	if got := text("#app-strategy"); got != "canary (steps 10,50,100 every 1m, max 5xx 1%, max p99 off, min 50 requests per step)" {
		t.Errorf("the app page shows the strategy %q", got)
	}

	// A wake shows the replicas on the next refresh, and log lines carry
	// their replica's label.
	api.wake(2)
	must(chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#app-status.running`)),
		chromedp.WaitVisible(chromedp.CSS(`#replicas tbody tr[data-label="web.2"][data-state="running"]`)),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#logs.multi .line .replica").length === 2`, chromedp.WithPollingTimeout(20*time.Second)),
	))
	if got := text(`#replicas tbody tr[data-label="web.2"]`); !strings.Contains(got, "web.2") || !strings.Contains(got, "127.0.0.1:32762") {
		t.Errorf("replica row %q", got)
	}
	if got := text(`#logs .line[data-replica="web.2"]`); !strings.Contains(got, "web.2 | hello from c2") {
		t.Errorf("log line of web.2: %q", got)
	}

	// The form scales the app: the daemon gets the settings with the CSRF
	// token (the server above checks it), the page shows progress and the result.
	must(chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#scale-min"), "1"),
		chromedp.SetValue(chromedp.CSS("#scale-max"), "5"),
		chromedp.SetValue(chromedp.CSS("#scale-idle"), "2m"),
		chromedp.SetValue(chromedp.CSS("#scale-target"), "7"),
		chromedp.Click(chromedp.CSS("#scale-submit")),
		chromedp.Poll[chromedp.Void](`document.querySelector("#scale-output").textContent.includes("scaled:")`, chromedp.WithPollingTimeout(20*time.Second)),
	))
	if got := text("#scale-output"); !strings.Contains(got, "-----> Scaling web") || !strings.Contains(got, "scaled: min 1, max 5, idle 2m, target 7 (autoscales 1–5)") {
		t.Errorf("scale output %q", got)
	}
	api.mu.Lock()
	bodies := append([]string(nil), api.bodies...)
	api.mu.Unlock()
	if len(bodies) != 1 || strings.TrimSpace(bodies[0]) != `{"min":1,"max":5,"idle":"2m","target":7}` {
		t.Errorf("scale requests %q", bodies)
	}
	must(chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`document.querySelector("#scale-settings").textContent.startsWith("min 1, max 5")`, chromedp.WithPollingTimeout(20*time.Second))))

	screenshot("dashboard-scaling.png")

	// A refused change shows the daemon's error.
	must(chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#scale-min"), "6"),
		chromedp.Click(chromedp.CSS("#scale-submit")),
		chromedp.WaitVisible(chromedp.CSS("#scale-output.failed")),
	))
	if got := text("#scale-output"); !strings.Contains(got, "error: min 6 is more than max 5") {
		t.Errorf("scale error output %q", got)
	}
}
