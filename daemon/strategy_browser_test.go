package daemon_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/plat-paas/plat/internal/browsertest"
)

// TestDashboardStrategy changes an app's release strategy from its page:
// canary with steps 20,100 is saved (the daemon has it, the header line
// shows it), and steps 50,20 show the API's error in place, changing
// nothing.
func TestDashboardStrategy(t *testing.T) {
	chromium := browsertest.Require(t)
	d := startDaemon(t)
	d.mustPlat("apps:create", "shop")
	b := browser{ctx: browsertest.New(t, chromium), shots: screenshotDir()}
	b.do(t, chromedp.Navigate("http://"+d.apiAddr+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), d.token),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS(`.app-card[data-app="shop"]`)))
	// A plain daemon has no swarm: GET /api/nodes answers 409 and the apps
	// page shows no nodes panel.
	b.wait(t, `performance.getEntriesByName(location.origin + "/api/nodes").length > 0`, 10*time.Second)
	b.do(t, chromedp.Sleep(200*time.Millisecond))
	var nodes bool
	b.eval(t, `document.querySelector("#nodes") !== null`, &nodes)
	if nodes {
		t.Error("the apps page of a daemon not in swarm mode shows a nodes panel")
	}
	b.do(t, chromedp.Navigate("http://"+d.apiAddr+"/apps/shop"),
		chromedp.WaitVisible(chromedp.CSS("#strategy-form")))
	if s := b.text(t, "#app-strategy"); s != "blue-green" {
		t.Fatalf("strategy line %q before any change, want blue-green", s)
	}
	var hidden bool
	b.eval(t, `document.querySelector("#strategy-steps").offsetParent === null`, &hidden)
	if !hidden {
		t.Error("canary settings are shown while blue-green is chosen")
	}

	t.Run("canary with steps 20,100", func(t *testing.T) {
		b.do(t, chromedp.SetValue(chromedp.CSS("#strategy-name"), "canary"))
		b.eval(t, `document.querySelector("#strategy-name").dispatchEvent(new Event("change")) && document.querySelector("#strategy-steps").offsetParent === null`, &hidden)
		if hidden {
			t.Fatal("choosing canary does not show its settings")
		}
		b.do(t, chromedp.SetValue(chromedp.CSS("#strategy-steps"), "20,100"),
			chromedp.SetValue(chromedp.CSS("#strategy-step-time"), "30s"),
			chromedp.Click(chromedp.CSS("#strategy-save")))
		b.wait(t, `document.querySelector("#strategy-note")?.textContent.startsWith("Saved")`, 10*time.Second)
		line := b.text(t, "#app-strategy")
		if !strings.HasPrefix(line, "canary (steps 20,100 every 30s") {
			t.Errorf("strategy line after saving: %q", line)
		}
		b.do(t, chromedp.ScrollIntoView(chromedp.CSS("#strategy")))
		b.shot(t, "dashboard-strategy.png")
		if got := d.mustPlat("strategy", "shop"); !strings.Contains(got, "20%, 100%") || !strings.Contains(got, "30s") {
			t.Errorf("plat strategy after the change from the browser:\n%s", got)
		}
	})

	t.Run("steps 50,20: the API's error in place", func(t *testing.T) {
		b.do(t, chromedp.SetValue(chromedp.CSS("#strategy-steps"), "50,20"), chromedp.Click(chromedp.CSS("#strategy-save")))
		b.wait(t, `document.querySelector("#strategy-note.error") !== null`, 10*time.Second)
		note := b.text(t, "#strategy-note")
		if !strings.Contains(note, "steps 50,20 do not increase") {
			t.Errorf("error shown: %q, want the API's reason about the steps", note)
		}
		if got := d.mustPlat("strategy", "shop"); !strings.Contains(got, "20%, 100%") {
			t.Errorf("a refused change changed the strategy:\n%s", got)
		}
	})
}
