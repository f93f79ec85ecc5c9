package daemon_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/plat-paas/plat/internal/browsertest"
)

// browser drives one Chromium tab for a test's subtests.
type browser struct {
	ctx   context.Context
	shots string // PLAT_SCREENSHOTS: where the README's screenshots go
}

func (b browser) do(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// eval runs a script and decodes its JSON result into out.
func (b browser) eval(t *testing.T, expr string, out any) {
	t.Helper()
	raw, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("%s: %s: %v", expr, raw, err)
	}
}

func (b browser) text(t *testing.T, sel string) string {
	t.Helper()
	var s string
	b.eval(t, `document.querySelector(`+jsString(sel)+`)?.innerText ?? ""`, &s)
	return s
}

// wait polls a script until it is truthy.
func (b browser) wait(t *testing.T, expr string, limit time.Duration) {
	t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(limit))); err != nil {
		t.Fatalf("waiting %s for %s: %v", limit, expr, err)
	}
}

// waitAfterNav is wait across a navigation the page starts itself: a
// poll that the navigation ends is started again on the new page.
func (b browser) waitAfterNav(t *testing.T, expr string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := chromedp.Do(b.ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(time.Until(deadline))))
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %s for %s: %v", limit, expr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// shot saves the page as docs/NAME when PLAT_SCREENSHOTS is set.
func (b browser) shot(t *testing.T, name string) {
	t.Helper()
	if b.shots == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// screenshotDir is PLAT_SCREENSHOTS made absolute from the repository's
// root (tests run in their package's folder).
func screenshotDir() string {
	dir := os.Getenv("PLAT_SCREENSHOTS")
	if dir != "" && !filepath.IsAbs(dir) {
		dir = filepath.Join("..", dir)
	}
	return dir
}

// TestDashboardActs uses the dashboard as a new user would, against a
// real daemon, git and engine: create an app from the browser, push to
// the Git URL it shows, see a failed push as a failure while the app
// keeps running, set config, roll back, manage domains, health check,
// restart, tokens, destroy. The page is opened at "localhost", not the
// daemon's 127.0.0.1 listener address, as a remote user's browser would.
func TestDashboardActs(t *testing.T) {
	chromium := browsertest.Require(t)
	d := startDaemon(t)
	_, port, _ := strings.Cut(d.apiAddr, ":")
	base := "http://localhost:" + port
	b := browser{ctx: browsertest.New(t, chromium), shots: screenshotDir()}

	b.do(t, chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), d.token),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#new-app")))

	var gitURL string
	t.Run("create an app and push to the Git URL shown", func(t *testing.T) {
		b.do(t, chromedp.Click(chromedp.CSS("#new-app")),
			chromedp.WaitVisible(chromedp.CSS("#create-name")),
			chromedp.SendKeys(chromedp.CSS("#create-name"), "shop"),
			chromedp.Click(chromedp.CSS("#create-submit")),
			chromedp.WaitVisible(chromedp.CSS("#create-remote")))
		remote := b.text(t, "#create-remote code")
		want := "git remote add platform " + base + "/git/shop.git"
		if remote != want {
			t.Fatalf("create dialog shows %q, want %q (the address the browser used, not the daemon's listener)", remote, want)
		}
		if push := b.text(t, "#create-push code"); push != "git push platform main" {
			t.Errorf("push command %q", push)
		}
		b.shot(t, "dashboard-create-app.png")
		gitURL = strings.TrimPrefix(remote, "git remote add platform ")
	})
	if gitURL == "" {
		t.FailNow()
	}

	r := d.newRepo("shop")
	u, _ := url.Parse(gitURL)
	u.User = url.UserPassword("plat", d.token) // "paste an API token" as git's password
	r.git("remote", "set-url", "platform", u.String())
	r.commit("v1", "")
	r.mustPush("main")
	d.mustServe("shop", "version=v1")
	r.commit("v2", "crash")
	if out, err := r.push("main"); err == nil {
		t.Fatalf("a push of a crashing app was accepted:\n%s", out)
	}
	d.mustServe("shop", "version=v1")
	var rels []struct {
		Version int    `json:"version"`
		Reason  string `json:"reason"`
	}
	must(t, json.Unmarshal([]byte(d.mustPlat("releases", "shop", "--json")), &rels))
	var rel2 struct{ Reason string }
	for _, r := range rels {
		if r.Version == 2 {
			rel2.Reason = r.Reason
		}
	}
	if rel2.Reason == "" {
		t.Fatal("the failed release has no reason")
	}

	t.Run("a failed push: running with a warning, the reason in full", func(t *testing.T) {
		b.do(t, chromedp.Navigate(base+"/"))
		b.wait(t, `document.querySelector('.app-card[data-app="shop"] .warning') !== null`, 10*time.Second)
		card := b.text(t, `.app-card[data-app="shop"]`)
		if !strings.Contains(card, "running") || strings.Contains(card, "failed\n") || !strings.Contains(card, "v2 failed") || !strings.Contains(card, "still serving v1") {
			t.Errorf("apps page card:\n%s", card)
		}
		b.shot(t, "dashboard-apps.png")
		apps := d.mustPlat("apps")
		if !strings.Contains(apps, "running") || !strings.Contains(apps, "warning: shop: deploy of v2 failed: "+rel2.Reason+"; still serving v1") {
			t.Errorf("plat apps:\n%s", apps)
		}

		b.do(t, chromedp.Navigate(base+"/apps/shop"), chromedp.WaitVisible(chromedp.CSS("#app-status")))
		b.wait(t, `document.querySelector("#deploy-state")?.textContent === "v2 failed"`, 10*time.Second)
		if s := b.text(t, "#app-status"); s != "running" {
			t.Errorf("status %q, want running", s)
		}
		failure := b.text(t, "#deploy-failure")
		if !strings.Contains(failure, rel2.Reason) || !strings.Contains(failure, "Still serving v1") {
			t.Errorf("failure box %q lacks the reason %q or what still serves", failure, rel2.Reason)
		}
		if w := b.text(t, "#app-warning"); !strings.Contains(w, rel2.Reason) {
			t.Errorf("warning %q", w)
		}
		b.shot(t, "dashboard-app-failed.png")
	})

	t.Run("deploy output survives a reload and a daemon restart", func(t *testing.T) {
		check := func(when string) {
			t.Helper()
			b.do(t, chromedp.Reload())
			b.wait(t, `document.querySelector("#deploy-state")?.textContent === "v2 failed"`, 20*time.Second)
			if out := b.text(t, "#deploy-output"); !strings.Contains(out, "Building shop v2") || !strings.Contains(out, "v2") {
				t.Errorf("deploy output after %s:\n%s", when, out)
			}
		}
		check("a reload")
		d.restart(syscall.SIGTERM)
		check("a daemon restart")
		// Each release keeps its own: v1's output, from its row.
		b.do(t, chromedp.Click(chromedp.CSS(`#releases tr[data-version="1"] button.deploy-log`)))
		b.wait(t, `document.querySelector("#release-log")?.textContent.includes("Switched traffic")`, 10*time.Second)
		if out := b.text(t, "#release-log"); !strings.Contains(out, "Switched traffic to v1") {
			t.Errorf("v1's kept deploy output:\n%s", out)
		}
	})

	t.Run("set a config var: a new release with its progress", func(t *testing.T) {
		b.do(t, chromedp.SendKeys(chromedp.CSS("#config-key"), "GREETING"),
			chromedp.SendKeys(chromedp.CSS("#config-value"), "hello"),
			chromedp.Click(chromedp.CSS("#config-set")))
		b.wait(t, `document.querySelector("#config-output")?.textContent.includes("v3 is live")`, 60*time.Second)
		d.mustServe("shop", "greeting=hello")
		b.wait(t, `document.querySelector('#config tr[data-config="GREETING"]') !== null && document.querySelector("#app-warning").hidden`, 10*time.Second)
		b.shot(t, "dashboard-app.png")
	})

	t.Run("roll back: the confirmation shows what changes", func(t *testing.T) {
		b.wait(t, `document.querySelector('button.rollback[data-version="1"]') !== null`, 10*time.Second)
		b.do(t, chromedp.Click(chromedp.CSS(`button.rollback[data-version="1"]`)), chromedp.WaitVisible(chromedp.CSS("#rollback-preview")))
		preview := b.text(t, "#rollback-preview")
		if !strings.Contains(preview, "Image: unchanged") || !strings.Contains(preview, "Config keys removed: GREETING") {
			t.Errorf("rollback confirmation:\n%s", preview)
		}
		b.do(t, chromedp.Click(chromedp.CSS("#confirm-ok")))
		b.wait(t, `document.querySelector('#releases tr[data-version="1"]').nextElementSibling?.querySelector("#rollback-output")?.textContent.includes("v4 is live")`, 60*time.Second)
		code, body, _ := d.get("shop", "/")
		if code != 200 || strings.Contains(body, "greeting=hello") {
			t.Errorf("after the rollback the app answers %d %q", code, body)
		}
	})

	t.Run("domains, health check and restart", func(t *testing.T) {
		b.do(t, chromedp.SendKeys(chromedp.CSS("#domain-name"), "www.shop.test"), chromedp.Click(chromedp.CSS("#domain-add")))
		b.wait(t, `document.querySelector('#domain-list li[data-domain="www.shop.test"]') !== null`, 10*time.Second)
		b.do(t, chromedp.Click(chromedp.CSS(`#domain-list li[data-domain="www.shop.test"] button`)), chromedp.WaitVisible(chromedp.CSS("#confirm-ok")), chromedp.Click(chromedp.CSS("#confirm-ok")))
		b.wait(t, `document.querySelector('#domain-list li[data-domain="www.shop.test"]') === null`, 10*time.Second)
		if doms := d.mustPlat("domains", "shop"); strings.Contains(doms, "www.shop.test") {
			t.Errorf("plat domains after removing from the browser:\n%s", doms)
		}

		b.do(t, chromedp.SetValue(chromedp.CSS("#health-path"), "/healthz"), chromedp.SetValue(chromedp.CSS("#health-timeout"), "3s"), chromedp.Click(chromedp.CSS("#health-save")))
		b.wait(t, `document.querySelector("#health-note")?.textContent.startsWith("Saved")`, 10*time.Second)
		if info := d.mustPlat("apps:info", "shop"); !strings.Contains(info, "/healthz") {
			t.Errorf("plat apps:info after the health check change:\n%s", info)
		}

		b.do(t, chromedp.Click(chromedp.CSS("#restart")), chromedp.WaitVisible(chromedp.CSS("#confirm-ok")), chromedp.Click(chromedp.CSS("#confirm-ok")))
		b.wait(t, `document.querySelector("#restart-output")?.textContent.includes("restarted")`, 60*time.Second)
		d.mustServe("shop", "version=v1")
	})

	t.Run("tokens", func(t *testing.T) {
		b.do(t, chromedp.Navigate(base+"/tokens"), chromedp.WaitVisible(chromedp.CSS("#token-name")),
			chromedp.SendKeys(chromedp.CSS("#token-name"), "ci"), chromedp.Click(chromedp.CSS("#token-create")))
		b.wait(t, `document.querySelector("#token-secret") !== null`, 10*time.Second)
		secret := b.text(t, "#token-secret code")
		req, _ := http.NewRequest("GET", "http://"+d.apiAddr+"/api/apps", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("the token made in the browser: %d", resp.StatusCode)
		}
		b.wait(t, `document.querySelector('#tokens tr[data-token="ci"] button') !== null`, 10*time.Second)
		b.do(t, chromedp.Click(chromedp.CSS(`#tokens tr[data-token="ci"] button`)), chromedp.WaitVisible(chromedp.CSS("#confirm-ok")), chromedp.Click(chromedp.CSS("#confirm-ok")))
		b.wait(t, `document.querySelector('#tokens tr[data-token="ci"]') === null`, 10*time.Second)
		resp, err = http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("the token revoked in the browser: %d", resp.StatusCode)
		}
	})

	t.Run("destroy needs the typed name", func(t *testing.T) {
		b.do(t, chromedp.Navigate(base+"/apps/shop"), chromedp.WaitVisible(chromedp.CSS("#destroy-confirm")),
			chromedp.SendKeys(chromedp.CSS("#destroy-confirm"), "sho"))
		var disabled bool
		b.eval(t, `document.querySelector("#destroy").disabled`, &disabled)
		if !disabled {
			t.Fatal("destroy is enabled before the name is typed in full")
		}
		b.do(t, chromedp.SendKeys(chromedp.CSS("#destroy-confirm"), "p"), chromedp.Click(chromedp.CSS("#destroy")))
		b.waitAfterNav(t, `location.pathname === "/" && document.querySelector('.app-card[data-app="shop"]') === null && document.querySelector("#no-apps") !== null`, 60*time.Second)
		if out, err := d.plat("apps:info", "shop"); err == nil {
			t.Errorf("shop still exists:\n%s", out)
		}
	})
}
