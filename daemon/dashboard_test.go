package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/plat-paas/plat/internal/browsertest"
)

// liveLogLimit is how soon a line the app prints must show in the browser.
const liveLogLimit = 2 * time.Second

// testOutDir is where tests leave artifacts such as screenshots.
func testOutDir(t *testing.T) string {
	dir := os.Getenv("PLAT_TEST_OUT")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "plat-test-out")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestDashboard(t *testing.T) {
	chromium := browsertest.Require(t)
	d := startDaemon(t)
	base := "http://" + d.apiAddr
	d.createApp("web")
	r := d.newRepo("web")
	r.commit("v1", "")
	r.mustPush("main")
	r.commit("v2", "")
	r.mustPush("main")
	d.mustServe("web", "version=v2")
	d.mustPlat("config:set", "web", "GREETING=hello") // v3
	d.mustServe("web", "greeting=hello")

	t.Run("refused without a session", func(t *testing.T) {
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for path, want := range map[string]int{"/api/apps": 401, "/api/apps/web/releases": 401, "/": 303, "/apps/web": 303} {
			resp, err := noRedirect.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want || (want == 303 && !strings.HasPrefix(resp.Header.Get("Location"), "/login")) {
				t.Errorf("GET %s without session: %d %q, want %d", path, resp.StatusCode, resp.Header.Get("Location"), want)
			}
		}
	})

	t.Run("cross-origin websocket refused", func(t *testing.T) {
		cookie := loginCookie(t, base, d.token)
		wsURL := "ws://" + d.apiAddr + "/api/apps/web/logs/ws"
		h := http.Header{"Cookie": {cookie.String()}, "Origin": {"http://evil.example"}}
		conn, resp, err := websocket.DefaultDialer.Dial(wsURL, h)
		if err == nil {
			conn.Close()
			t.Fatal("cross-origin websocket was accepted")
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-origin websocket: %v %v, want 403", resp, err)
		}
		h.Set("Origin", base) // the same request from the dashboard's origin works
		conn, _, err = websocket.DefaultDialer.Dial(wsURL, h)
		if err != nil {
			t.Fatalf("same-origin websocket: %v", err)
		}
		conn.Close()
	})

	ctx := browsertest.New(t, chromium)
	out := testOutDir(t)

	// Log in with the token.
	must(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/apps/web"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), d.token),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS(`#app-status`)), // back at the page asked for
	))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	must(t, err)
	if strings.Contains(loc, d.token) || loc != base+"/apps/web" {
		t.Fatalf("after login at %q", loc)
	}
	must(t, chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`.app-card[data-app="web"] .badge.running`))))
	card, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.app-card[data-app="web"]`)))
	must(t, err)
	for _, want := range []string{"web", "running", "v3", "web.localhost"} {
		if !strings.Contains(card, want) {
			t.Errorf("apps page card %q lacks %q", card, want)
		}
	}
	screenshot(t, ctx, filepath.Join(out, "dashboard-apps.png"))

	// The app page: live logs.
	must(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`.app-card[data-app="web"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#releases tr[data-version="3"]`)),
		chromedp.Poll[chromedp.Void](`document.querySelector("#log-state").textContent === "live"`, chromedp.WithPollingTimeout(30*time.Second)),
	))
	waitLogLine := func(line string) time.Duration {
		t.Helper()
		if code, _, err := d.get("web", "/?print="+url.QueryEscape(line)); err != nil || code != 200 {
			t.Fatalf("GET ?print: %d %v", code, err)
		}
		start := time.Now()
		expr := fmt.Sprintf(`document.querySelector("#logs").textContent.includes(%q)`, line)
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(liveLogLimit))); err != nil {
			t.Fatalf("line %q not in the live log view within %s: %v", line, liveLogLimit, err)
		}
		return time.Since(start)
	}
	for i := range 3 {
		t.Logf("printed line shown in the browser after %s", waitLogLine(fmt.Sprintf("dashboard line %d %d", i, time.Now().UnixNano())))
	}
	must(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#config button`)))) // reveal a config value
	screenshot(t, ctx, filepath.Join(out, "dashboard-app.png"))
	must(t, chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2))))
	screenshot(t, ctx, filepath.Join(out, "dashboard-app-phone.png"))
	must(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)))

	// `plat logs -f` follows the same hub; it must keep streaming across the flip.
	follow := exec.Command(platBin, "logs", "web", "-f")
	follow.Env = d.env()
	var followed lockedBuffer
	follow.Stdout, follow.Stderr = &followed, &followed
	must(t, follow.Start())
	t.Cleanup(func() { follow.Process.Kill(); follow.Wait() })

	// Roll back to v1 with a click and a confirmation.
	must(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`button.rollback[data-version="1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-ok`)),
		chromedp.Click(chromedp.CSS(`#confirm-ok`)),
		chromedp.WaitVisible(chromedp.CSS(`#releases tr[data-version="4"] .badge.active`)),
	))
	d.mustServe("web", "version=v1")
	row, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#releases tr[data-version="4"]`)))
	must(t, err)
	if !strings.Contains(row, "rollback") || !strings.Contains(row, "active") {
		t.Errorf("release row after rollback: %q", row)
	}
	deployOut, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#deploy-output`)))
	must(t, err)
	if !strings.Contains(deployOut, "Switched traffic to v4") {
		t.Errorf("deploy output %q lacks the switch", deployOut)
	}
	// The live view moved to the new container with the flip.
	t.Logf("after the rollback, printed line shown after %s", waitLogLine(fmt.Sprintf("after rollback %d", time.Now().UnixNano())))
	must(t, chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`document.querySelector("#events").textContent.includes("rolled back")`, chromedp.WithPollingTimeout(10*time.Second))))

	waitFor(t, 10*time.Second, "`plat logs -f` to show the line printed after the rollback", func() bool {
		return strings.Contains(followed.String(), "after rollback")
	})
	if events := d.mustPlat("events", "web"); !strings.Contains(events, "rolled back") {
		t.Errorf("plat events lacks the rollback:\n%s", events)
	}

	// A daemon restart: the session survives and the live view reconnects
	// on its own, from the last line it showed: nothing lost, nothing twice.
	d.restart(syscall.SIGTERM)
	line := fmt.Sprintf("after restart %d", time.Now().UnixNano())
	if code, _, err := d.get("web", "/?print="+url.QueryEscape(line)); err != nil || code != 200 {
		t.Fatalf("GET ?print after restart: %d %v", code, err)
	}
	must(t, chromedp.Do(ctx, chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelector("#logs").textContent.includes(%q)`, line), chromedp.WithPollingTimeout(30*time.Second))))
	text, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS("#logs")))
	must(t, err)
	for _, l := range []string{"after rollback", "dashboard line 0", "testapp v1 starting"} {
		if n := strings.Count(text, l); n > 1 {
			t.Errorf("%q shown %d times after the reconnect", l, n)
		}
	}
	if strings.Count(text, "after rollback") != 1 {
		t.Errorf("the line printed before the restart is gone from the view:\n%s", text)
	}

	// A git push while the page is open shows its build and deploy output live.
	r.commit("v5", "")
	r.mustPush("main")
	must(t, chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`document.querySelector("#deploy-output").textContent.includes("Switched traffic to v5")`, chromedp.WithPollingTimeout(30*time.Second))))
	deployOut, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#deploy-output`)))
	must(t, err)
	if !strings.Contains(deployOut, "Building web v5") || strings.Contains(deployOut, "Rolling back") {
		t.Errorf("deploy output of the push:\n%s", deployOut)
	}

	// Scaled to zero from the CLI, the open page shows the app sleeping;
	// a request wakes it and the page shows its replica running again; idle
	// again, the apps list shows it sleeping.
	d.mustPlat("scale", "web", "--min", "0", "--idle", "3s")
	must(t, chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`document.querySelector("#app-status.sleeping") !== null`, chromedp.WithPollingTimeout(30*time.Second))))
	screenshot(t, ctx, filepath.Join(out, "dashboard-sleeping.png"))
	d.mustServe("web", "version=v5")
	awake, keepAwake := context.WithCancel(context.Background())
	go func() { // requests keep the idle timer from putting it back to sleep meanwhile
		for awake.Err() == nil {
			d.get("web", "/")
			time.Sleep(300 * time.Millisecond)
		}
	}()
	must(t, chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`document.querySelector('#replicas tbody tr[data-label="web.1"][data-state="running"]') !== null`, chromedp.WithPollingTimeout(30*time.Second))))
	must(t, chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`document.querySelector("#events").textContent.includes("woke")`, chromedp.WithPollingTimeout(30*time.Second))))
	keepAwake()
	must(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.Poll[chromedp.Void](`document.querySelector('.app-card[data-app="web"][data-status="sleeping"] .badge.sleeping') !== null`, chromedp.WithPollingTimeout(30*time.Second)),
	))
	screenshot(t, ctx, filepath.Join(out, "dashboard-apps-sleeping.png"))
}

func loginCookie(t *testing.T, base, token string) *http.Cookie {
	t.Helper()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(base+"/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "plat_session" {
			return &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	t.Fatalf("login: %d, no session cookie", resp.StatusCode)
	return nil
}

func screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	must(t, err)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
