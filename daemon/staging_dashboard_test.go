package daemon_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/plat-paas/plat/internal/browsertest"
)

// TestDashboardStagingAndPreviews: in a real browser on the app page, a
// pushed branch shows up live in the branch previews panel with its link;
// a staged release's Promote (after its confirmation) makes production
// serve it, Unstage stops a staged release, and a refused promote says why
// under the row. On main before this the
// page had neither the panel nor the buttons.
func TestDashboardStagingAndPreviews(t *testing.T) {
	t.Parallel()
	chromium := browsertest.Require(t)
	d := startDaemon(t)
	const app = "web"
	base := "http://" + d.apiAddr
	r := d.deployedApp(app, "one")
	d.mustPlat("health:set", app, "--deadline", "3s", "--interval", "100ms")
	d.mustPlat("release-mode:set", app, "manual")

	b := browser{ctx: browsertest.New(t, chromium)}
	b.do(t,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), d.token),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS(`.app-card[data-app="web"]`)),
		chromedp.Navigate(base+"/apps/"+app),
		chromedp.WaitVisible(chromedp.CSS(`#releases tr[data-version="1"]`)),
	)
	b.wait(t, `document.getElementById("previews-panel")?.hidden === true`, 5*time.Second)

	// A branch push: its preview appears in the panel, linked.
	r.git("checkout", "-q", "-b", "feat")
	r.commit("pv1", "")
	r.mustPush("feat")
	url := "http://feat." + app + ".localhost:" + portOf(d.httpAddr) + "/"
	link := `#previews tr[data-branch="feat"] a.preview-url`
	b.wait(t, `document.querySelector('`+link+`')?.href === `+jsString(url)+` && !document.getElementById("previews-panel").hidden`, 15*time.Second)
	if row := b.text(t, `#previews tr[data-branch="feat"]`); !containsAll(row, "v1", url) {
		t.Errorf("preview row: %q", row)
	}

	// A staged push: Promote, confirmed, releases it.
	r.git("checkout", "-q", "main")
	r.commit("two", "")
	r.mustPush("main")
	d.mustServe(app, "version=one")
	b.wait(t, `!!document.querySelector('#releases tr[data-version="2"] button.promote')`, 10*time.Second)
	b.do(t,
		chromedp.Click(chromedp.CSS(`#releases tr[data-version="2"] button.promote`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-ok`)),
		chromedp.Click(chromedp.CSS(`#confirm-ok`)),
	)
	b.wait(t, `document.getElementById("promote-output")?.classList.contains("ok")`, 30*time.Second)
	d.mustServe(app, "version=two")
	b.wait(t, `!!document.querySelector('#releases tr[data-version="2"] .badge.active') && !document.querySelector('#releases tr[data-version="2"] button.promote')`, 10*time.Second)

	// A staged config change: Unstage, confirmed, stops it.
	d.mustPlat("config:set", app, "GREETING=hi")
	d.mustServeHost("v3."+app+".localhost", "version=two greeting=hi")
	b.wait(t, `!!document.querySelector('#releases tr[data-version="3"] button.unstage')`, 10*time.Second)
	b.do(t,
		chromedp.Click(chromedp.CSS(`#releases tr[data-version="3"] button.unstage`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-ok`)),
		chromedp.Click(chromedp.CSS(`#confirm-ok`)),
	)
	b.wait(t, `!!document.querySelector('#releases tr[data-version="3"] .badge.unstaged') && !document.querySelector('#releases tr[data-version="3"] :is(button.promote, button.unstage)')`, 10*time.Second)
	if got := d.releaseStatus(app, 3); got != "unstaged" {
		t.Errorf("v3 is %q after Unstage; want unstaged", got)
	}
	d.mustNotServeHost("v3." + app + ".localhost")

	// A refusal shows under the row: v4 is unstaged from the CLI while
	// its Promote confirmation is open.
	d.mustPlat("config:set", app, "GREETING=hey")
	b.wait(t, `!!document.querySelector('#releases tr[data-version="4"] button.promote')`, 10*time.Second)
	b.do(t,
		chromedp.Click(chromedp.CSS(`#releases tr[data-version="4"] button.promote`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-ok`)),
	)
	d.mustPlat("releases:unstage", app, "v4")
	b.do(t, chromedp.Click(chromedp.CSS(`#confirm-ok`)))
	b.wait(t, `document.getElementById("promote-output")?.classList.contains("failed")`, 10*time.Second)
	if got := b.text(t, "#promote-output"); !strings.Contains(got, "unstaged") {
		t.Errorf("promote of an unstaged release shows %q; want the refusal", got)
	}
	if row := b.text(t, `#releases tr[data-version="4"] + tr`); !strings.Contains(row, "unstaged") {
		t.Errorf("the refusal is not under v4's row: %q", row)
	}
	d.mustServe(app, "version=two")
}

// containsAll reports whether s contains every one of subs.
func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
