package daemon_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/plat-paas/plat/internal/browsertest"
)

// TestDashboardFlags: in a real browser, the app page lists the app's
// feature flags (one set from the CLI shows up live), and its toggle and
// percentage change them.
func TestDashboardFlags(t *testing.T) {
	chromium := browsertest.Require(t)
	d := startDaemon(t)
	base := "http://" + d.apiAddr
	d.createApp("web")
	b := browser{ctx: browsertest.New(t, chromium)}
	b.do(t,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), d.token),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS(`.app-card[data-app="web"]`)),
		chromedp.Navigate(base+"/apps/web"),
		chromedp.WaitVisible(chromedp.CSS("#flags-panel")),
	)
	d.mustPlat("flags:set", "web", "beta=25%")
	row := `#flags tr[data-flag="beta"]`
	b.wait(t, `document.querySelector('`+row+` input[type=number]')?.value === "25"`, 10*time.Second)

	flagsOf := func() string { return d.mustPlat("flags", "web") }
	waitFlags := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(flagsOf(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("flags never showed %q:\n%s", want, flagsOf())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	b.do(t, chromedp.Click(chromedp.CSS(row+` input[type=checkbox]`)))
	waitFlags("off (no one)")
	b.do(t,
		chromedp.SetValue(chromedp.CSS(row+` input[type=number]`), "40"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('`+row+` input[type=number]').dispatchEvent(new Event("change"))`),
	)
	waitFlags("40% of users")
	b.do(t,
		chromedp.SendKeys(chromedp.CSS("#flag-name"), "new-checkout"),
		chromedp.Click(chromedp.CSS(`#flag-form button[type=submit]`)),
	)
	waitFlags("new-checkout")
	b.do(t, chromedp.Click(chromedp.CSS(`#flags tr[data-flag="new-checkout"] button`)))
	deadline := time.Now().Add(5 * time.Second)
	for strings.Contains(flagsOf(), "new-checkout") {
		if time.Now().After(deadline) {
			t.Fatal("Remove did not remove the flag")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
