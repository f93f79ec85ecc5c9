package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// failReason is a failed deploy's reason, long enough to be cut off by
// any ellipsis.
const failReason = "health check: GET /up on 172.18.0.9:5000 answered 500 Internal Server Error for 60s (deadline); last output: panic: DATABASE_URL is not set (at main.go:42)"

// uiAPI is a daemon's API (docs/api.md) with two apps: "web", serving v3
// after v4 failed, and "empty", never deployed. It counts requests and can
// play a daemon that cannot be reached.
type uiAPI struct {
	mu       sync.Mutex
	requests map[string]int
	events   []map[string]any
	inFlight int
	down     bool
	stop     chan struct{} // closed when going down: streams break
}

// uiEpoch is when the fake's history happened: fixed, as a daemon's is.
var uiEpoch = time.Now().Add(-time.Hour).UTC()

func newUIAPI() *uiAPI {
	a := &uiAPI{requests: map[string]int{}, stop: make(chan struct{})}
	for i := range 3 {
		a.events = append(a.events, map[string]any{"app": "web", "time": uiEpoch.Add(time.Duration(i) * time.Minute), "kind": "switched", "release": i + 1, "message": fmt.Sprintf("traffic on v%d", i+1)})
	}
	return a
}

func (a *uiAPI) setDown(down bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if down && !a.down {
		close(a.stop)
	}
	if !down && a.down {
		a.stop = make(chan struct{})
	}
	a.down = down
}

// counts returns the requests per path since the last call.
func (a *uiAPI) counts() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.requests
	a.requests = map[string]int{}
	return c
}

// tick changes what the page shows, as a live daemon does.
func (a *uiAPI) tick() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inFlight++
	a.events = append(a.events, map[string]any{"app": "web", "time": time.Now().UTC(), "kind": "woke", "message": fmt.Sprintf("request %d woke it", a.inFlight)})
}

func webApp() map[string]any {
	return map[string]any{"name": "web", "status": "running", "active": 3, "replicas": 1, "url": "http://web.localhost:8080/",
		"git_url": "https://plat.example.com/git/web.git", "deployed_at": uiEpoch,
		"health": map[string]any{"path": "/up", "timeout": "2s"}, "env_keys": []string{"B", "SECRET"},
		"scale":       map[string]any{"min": 1, "max": 1, "idle": "5m0s", "target": 10},
		"last_failed": map[string]any{"version": 4, "reason": failReason}, "warning": "deploy of v4 failed: " + failReason + "; still serving v3"}
}

func webReleases() []map[string]any {
	rel := func(v int, status, cause, reason string) map[string]any {
		return map[string]any{"app": "web", "version": v, "status": status, "cause": cause, "reason": reason, "image_id": fmt.Sprintf("sha256:%d%d%d0123456789abcdef", v, v, v),
			"git_sha": fmt.Sprintf("%d000000abcdef", v), "created_at": uiEpoch.Add(time.Duration(v) * time.Minute)}
	}
	return []map[string]any{rel(1, "inactive", "push", ""), rel(2, "inactive", "push", ""), rel(3, "active", "config", "set B"), rel(4, "failed", "push", failReason)}
}

func (a *uiAPI) handler() http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	stop := func() <-chan struct{} { a.mu.Lock(); defer a.mu.Unlock(); return a.stop }
	emptyApp := map[string]any{"name": "empty", "status": "new", "url": "http://empty.localhost:8080/", "git_url": "https://plat.example.com/git/empty.git", "health": map[string]any{}, "env_keys": []string{}, "scale": map[string]any{"min": 1, "max": 1}}
	mux.HandleFunc("GET /api/whoami", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, map[string]bool{"ok": true}) })
	mux.HandleFunc("GET /api/watch", func(w http.ResponseWriter, r *http.Request) {
		serveSSE(w, r, 300*time.Millisecond, stop(), func() []sseEvent { return []sseEvent{{"apps", []any{webApp(), emptyApp}}} })
	})
	mux.HandleFunc("GET /api/apps/web", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, webApp()) })
	mux.HandleFunc("GET /api/apps/empty", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, emptyApp) })
	mux.HandleFunc("GET /api/apps/web/watch", func(w http.ResponseWriter, r *http.Request) {
		serveSSE(w, r, 300*time.Millisecond, stop(), func() []sseEvent {
			a.mu.Lock()
			defer a.mu.Unlock()
			return []sseEvent{{"app", webApp()}, {"releases", webReleases()}, {"events", append([]map[string]any{}, a.events...)},
				{"domains", map[string]any{"default": "web.localhost", "domains": []string{"www.example.com"}}},
				{"ps", []map[string]any{{"label": "web.1", "release": 3, "state": "running", "addr": "127.0.0.1:32768", "container_id": "c0ffee0123456789", "in_flight": a.inFlight}}},
				{"deploy", map[string]any{"version": 4, "running": false, "reset": true, "kept": true, "lines": []string{"-----> Building web v4 from 4000000", "-----> Starting v4", "-----> v4 failed: " + failReason}}}}
		})
	})
	mux.HandleFunc("GET /api/apps/empty/watch", func(w http.ResponseWriter, r *http.Request) {
		serveSSE(w, r, 300*time.Millisecond, stop(), func() []sseEvent {
			return []sseEvent{{"app", emptyApp}, {"releases", []any{}}, {"events", []any{}}, {"domains", map[string]any{"default": "empty.localhost", "domains": []string{}}}, {"ps", []any{}}}
		})
	})
	mux.HandleFunc("GET /api/apps/{app}/config", func(w http.ResponseWriter, r *http.Request) {
		env := map[string]string{}
		if r.PathValue("app") == "web" {
			env = map[string]string{"B": "2", "SECRET": "s3cret-value"}
		}
		reply(w, 200, env)
	})
	mux.HandleFunc("GET /api/apps/web/releases/{v}/build-log", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Step 1/3 : FROM scratch\nbuild log of v%s\nSuccessfully built\n", r.PathValue("v"))
	})
	mux.HandleFunc("GET /api/apps/web/rollback/preview", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, map[string]any{"from": 3, "to": 2, "image_from": "sha256:3330123456789abcdef", "image_to": "sha256:2220123456789abcdef",
			"git_sha_from": "3000000abcdef", "git_sha_to": "2000000abcdef", "added": []string{"NEW"}, "removed": []string{"OLD"}, "changed": []string{"B"}})
	})
	mux.HandleFunc("POST /api/apps/web/rollback", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		for _, l := range []string{"-----> Rolling back web to v2 as v5 (no rebuild)", "-----> Health check passed", "-----> Switched traffic to v5"} {
			enc.Encode(map[string]string{"progress": l})
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
		enc.Encode(map[string]any{"release": map[string]any{"version": 5, "status": "active"}})
	})
	mux.HandleFunc("GET /api/tokens", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, []map[string]any{{"name": "admin", "created_at": uiEpoch, "current": true}, {"name": "ci", "created_at": uiEpoch, "expires_at": uiEpoch.Add(90 * 24 * time.Hour)}})
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 404, map[string]string{"error": "no app named " + strings.Split(strings.TrimPrefix(r.URL.Path, "/api/apps/"), "/")[0]})
	})
	return mux
}

// TestDashboardUI drives the dashboard in Chromium against uiAPI: one
// browser and server for all the subtests.
func TestDashboardUI(t *testing.T) {
	chromium := browsertest.Require(t)
	api := newUIAPI()
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
		api.mu.Lock()
		api.requests[r.URL.Path]++
		down := api.down
		api.mu.Unlock()
		if down { // unreachable: the connection closes unanswered
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		}
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			pages.ServeHTTP(w, r)
			return
		}
		if err := d.Authorize(r); err != nil {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/logs/ws") {
			d.ServeLogs(w, r, "web")
			return
		}
		apiMux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ctx := browsertest.New(t, chromium)
	run := func(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatal(err)
		}
	}
	eval := func(t *testing.T, expr string, out any) {
		t.Helper()
		b, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %s: %v", expr, b, err)
		}
	}
	waitJS := func(t *testing.T, expr string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
			t.Fatalf("waiting for %s: %v", expr, err)
		}
	}
	shot := func(t *testing.T, name string) { saveScreenshot(t, ctx, name) }

	t.Run("login returns to the page asked for", func(t *testing.T) {
		run(t, chromedp.Navigate(srv.URL+"/apps/web"),
			chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SendKeys(chromedp.CSS("#token"), "wrong"),
			chromedp.Submit(chromedp.CSS("#token")),
			chromedp.WaitVisible(chromedp.CSS("#login-error")))
		var msg string
		eval(t, `document.querySelector("#login-error").textContent`, &msg)
		if strings.Contains(msg, "`") || !strings.Contains(msg, "plat daemon token") {
			t.Errorf("login error %q", msg)
		}
		run(t, chromedp.SendKeys(chromedp.CSS("#token"), testToken),
			chromedp.Submit(chromedp.CSS("#token")),
			chromedp.WaitVisible(chromedp.CSS(`#releases tr[data-version="4"]`)))
		var path string
		eval(t, `location.pathname`, &path)
		if path != "/apps/web" {
			t.Errorf("after login at %q, want /apps/web", path)
		}
	})

	t.Run("a failed deploy reads as a failure beside a running status", func(t *testing.T) {
		waitJS(t, `document.querySelector("#deploy-state")?.textContent === "v4 failed"`)
		var got struct {
			Status, Warning, Failure, Reason string
			Cut                              bool
		}
		eval(t, `({status: document.querySelector("#app-status").textContent,
			warning: document.querySelector("#app-warning").innerText,
			failure: document.querySelector("#deploy-failure").innerText,
			reason: document.querySelector('#releases tr[data-version="4"] td.reason').innerText,
			cut: [...document.querySelectorAll("#app-warning, #deploy-failure, td.reason")].some((e) => e.scrollWidth > e.clientWidth + 1)})`, &got)
		if got.Status != "running" {
			t.Errorf("status %q, want running", got.Status)
		}
		for what, text := range map[string]string{"warning": got.Warning, "failure box": got.Failure, "release row": got.Reason} {
			if !strings.Contains(text, failReason) {
				t.Errorf("%s %q lacks the reason in full", what, text)
			}
		}
		if !strings.Contains(got.Warning, "still serving v3") || !strings.Contains(got.Failure, "Still serving v3") {
			t.Errorf("what still serves is not said: warning %q, failure %q", got.Warning, got.Failure)
		}
		if got.Cut {
			t.Error("a failure text is cut off")
		}
	})

	t.Run("focus and selection survive 10s of updates", func(t *testing.T) {
		run(t, chromedp.Click(chromedp.CSS("#config-value")), chromedp.SendKeys(chromedp.CSS("#config-value"), "typed"))
		var selected string
		eval(t, `(() => { const r = document.createRange(); r.selectNodeContents(document.querySelector('#releases tr[data-version="4"] td.reason'));
			const s = getSelection(); s.removeAllRanges(); s.addRange(r); return s.toString(); })()`, &selected)
		var before int
		eval(t, `document.querySelectorAll("#events li").length`, &before)
		for range 10 {
			api.tick()
			time.Sleep(time.Second)
		}
		var after struct {
			Focus, Value, Selection string
			Events                  int
			InFlight                string
		}
		eval(t, `({focus: document.activeElement.id, value: document.activeElement.value, selection: getSelection().toString(),
			events: document.querySelectorAll("#events li").length, inFlight: document.querySelector("#replicas td.in-flight").textContent})`, &after)
		if after.Events <= before || after.InFlight != "10" {
			t.Fatalf("the page did not update: %d events (was %d), in flight %q", after.Events, before, after.InFlight)
		}
		if after.Focus != "config-value" || after.Value != "typed" {
			t.Errorf("focus on %q with %q, want config-value with \"typed\"", after.Focus, after.Value)
		}
		if after.Selection != selected || selected != failReason {
			t.Errorf("selection %q, was %q", after.Selection, selected)
		}
	})

	t.Run("rollback shows its diff and its progress where clicked", func(t *testing.T) {
		run(t, chromedp.Click(chromedp.CSS(`button.rollback[data-version="2"]`)), chromedp.WaitVisible(chromedp.CSS("#rollback-preview")))
		var preview string
		eval(t, `document.querySelector("#rollback-preview").innerText`, &preview)
		for _, want := range []string{"333012345678", "222012345678", "added: NEW", "removed: OLD", "changed: B", "3000000 → 2000000"} {
			if !strings.Contains(preview, want) {
				t.Errorf("rollback confirmation %q lacks %q", preview, want)
			}
		}
		shot(t, "dashboard-rollback-confirm.png")
		run(t, chromedp.Click(chromedp.CSS("#confirm-ok")))
		waitJS(t, `document.querySelector("#rollback-output")?.textContent.includes("v5 is live")`)
		var near struct {
			NextRow bool
			Gap     float64
		}
		eval(t, `(() => { const row = document.querySelector('#releases tr[data-version="2"]'); const out = document.querySelector("#rollback-output");
			return {nextRow: row.nextElementSibling.contains(out), gap: out.getBoundingClientRect().top - row.getBoundingClientRect().bottom}; })()`, &near)
		if !near.NextRow || near.Gap > 60 {
			t.Errorf("rollback progress is not next to its button: right after the row %v, %vpx below it", near.NextRow, near.Gap)
		}
	})

	t.Run("small things", func(t *testing.T) {
		// Reveal/Hide does not move the row or the button.
		rects := `(() => { const tr = document.querySelector('#config tr[data-config="SECRET"]'); const b = tr.querySelector("button.reveal");
			const r = tr.getBoundingClientRect(), q = b.getBoundingClientRect(); return [r.height, q.left, q.width].join(","); })()`
		var before, after string
		eval(t, rects, &before)
		run(t, chromedp.Click(chromedp.CSS(`#config tr[data-config="SECRET"] button.reveal`)))
		eval(t, rects, &after)
		var shown string
		eval(t, `document.querySelector('#config tr[data-config="SECRET"] td.val').textContent`, &shown)
		if shown != "s3cret-value" || before != after {
			t.Errorf("reveal shows %q; row/button %s before, %s after", shown, before, after)
		}
		// The header lines up with the content.
		var lefts []float64
		eval(t, `[document.querySelector(".brand").getBoundingClientRect().left, document.querySelector("#main h1").getBoundingClientRect().left]`, &lefts)
		if len(lefts) != 2 || lefts[0] != lefts[1] {
			t.Errorf("header starts at %v, content at %v", lefts[0], lefts[1])
		}
		// "No deploys yet." on one line in its column.
		run(t, chromedp.Navigate(srv.URL+"/apps/empty"))
		waitJS(t, `document.querySelector("#no-events") !== null && document.querySelector("#app-status") !== null`)
		var lines float64
		eval(t, `(() => { const e = document.querySelector("#no-events"); return e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight); })()`, &lines)
		if lines >= 1.9 {
			t.Errorf(`"No deploys yet." takes %.1f lines`, lines)
		}
	})

	t.Run("a page with no deploy does not poll", func(t *testing.T) {
		time.Sleep(time.Second) // the page settles
		api.counts()
		time.Sleep(5 * time.Second)
		if c := api.counts(); len(c) != 0 {
			t.Errorf("requests in 5s on an app page with nothing happening: %v", c)
		}
	})

	t.Run("a missing app's page asks once and stops", func(t *testing.T) {
		api.counts()
		run(t, chromedp.Navigate(srv.URL+"/apps/nope"), chromedp.WaitVisible(chromedp.CSS("#missing")))
		time.Sleep(5 * time.Second)
		c := api.counts()
		// Each panel (the page, DORA) may ask once; none may ask again.
		for p, k := range c {
			if strings.HasPrefix(p, "/api/apps/nope") && k > 1 {
				t.Errorf("a missing app's page asked %s %d times in 5s: %v", p, k, c)
			}
		}
	})

	t.Run("an unreachable daemon shows a page-level banner", func(t *testing.T) {
		run(t, chromedp.Navigate(srv.URL+"/apps/web"), chromedp.WaitVisible(chromedp.CSS(`#app-status`)))
		api.setDown(true)
		waitJS(t, `!document.querySelector("#offline").hidden`)
		var text string
		eval(t, `document.querySelector("#offline").textContent`, &text)
		if !strings.Contains(text, "Cannot reach the plat daemon") || !strings.Contains(text, "out of date") {
			t.Errorf("banner %q", text)
		}
		shot(t, "dashboard-offline.png")
		api.setDown(false)
		waitJS(t, `document.querySelector("#offline").hidden`)
	})

	t.Run("on a phone", func(t *testing.T) {
		run(t, chromedp.EmulateViewport(375, 812, chromedp.EmulateScale(2)), chromedp.Navigate(srv.URL+"/apps/web"))
		waitJS(t, `document.querySelector('#releases tr[data-version="4"] button.build-log') !== null && document.querySelector("#deploy-state")?.textContent === "v4 failed"`)
		run(t, chromedp.Click(chromedp.CSS(`#releases tr[data-version="4"] button.build-log`)))
		waitJS(t, `document.querySelector("#release-log")?.textContent.includes("build log of v4")`)
		var got struct {
			Reason, Log, Failure bool
			Small                []string
			Width                int
		}
		eval(t, `(() => { const seen = (e) => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= innerWidth + 0.5 && getComputedStyle(e).visibility !== "hidden"; };
			const small = [...document.querySelectorAll("button, input:not([type=hidden]), a.button, .top nav a")].filter((e) => e.offsetParent !== null && !e.closest("dialog"))
				.filter((e) => { const r = e.getBoundingClientRect(); return r.height < 44 || r.width < 44; }).map((e) => e.id || e.className || e.textContent);
			return {reason: seen(document.querySelector('#releases tr[data-version="4"] td.reason')), log: seen(document.querySelector("#release-log")),
				failure: seen(document.querySelector("#deploy-failure")), small, width: document.documentElement.scrollWidth}; })()`, &got)
		if !got.Reason || !got.Log || !got.Failure {
			t.Errorf("at 375px: failure reason in the row visible %v, build log %v, failure box %v", got.Reason, got.Log, got.Failure)
		}
		if len(got.Small) > 0 {
			t.Errorf("touch targets under 44px: %q", got.Small)
		}
		if got.Width > 375 {
			t.Errorf("the page scrolls sideways: %dpx wide", got.Width)
		}
		shot(t, "dashboard-app-phone.png")
		// The apps list and the tokens page fit too.
		for _, page := range []string{"/", "/tokens"} {
			run(t, chromedp.Navigate(srv.URL+page))
			waitJS(t, `document.querySelector(".app-card, #token-name") !== null`)
			var small []string
			var width int
			eval(t, `[...document.querySelectorAll("button, input:not([type=hidden]), a.button, .top nav a")].filter((e) => e.offsetParent !== null)
				.filter((e) => { const r = e.getBoundingClientRect(); return r.height < 44 || r.width < 44; }).map((e) => e.id || e.className || e.textContent)`, &small)
			eval(t, `document.documentElement.scrollWidth`, &width)
			if len(small) > 0 || width > 375 {
				t.Errorf("%s at 375px: touch targets under 44px %q, %dpx wide", page, small, width)
			}
		}
		run(t, chromedp.EmulateViewport(1280, 900))
	})
}

// saveScreenshot writes the page to $PLAT_SCREENSHOTS/name when set (e.g.
// PLAT_SCREENSHOTS=docs from the repository root updates the README's).
func saveScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("PLAT_SCREENSHOTS")
	if dir == "" {
		return
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", dir) // tests run in the package's folder
	}
	shot := chromedp.FullScreenshot(100) // quality 100: PNG
	if strings.Contains(name, "phone") {
		shot = chromedp.CaptureScreenshot() // what a phone's screen shows
	}
	png, err := chromedp.Run(ctx, shot)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
