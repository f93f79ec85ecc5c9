package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/plat-paas/plat/internal/browsertest"
)

// TestDashboardDORA: in a real browser, the apps page shows the host's DORA
// metrics and an app's page the app's, from one push (one deploy, a lead
// time, no failure).
func TestDashboardDORA(t *testing.T) {
	chromium := browsertest.Require(t)
	d := startDaemon(t)
	base := "http://" + d.apiAddr
	d.deployedApp("web", "v1")
	ctx := browsertest.New(t, chromium)

	metric := func(name string) string {
		t.Helper()
		sel := `#dora [data-metric="` + name + `"] .dora-value`
		if _, err := chromedp.Run(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
			t.Fatalf("%s not shown: %v", name, err)
		}
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(v)
	}
	check := func(page string) {
		t.Helper()
		if got := metric("deployment_frequency"); got != "1" {
			t.Errorf("%s: deploys %q, want 1", page, got)
		}
		if got := metric("lead_time"); got == "—" || !strings.HasSuffix(got, "s") && !strings.HasSuffix(got, "m") {
			t.Errorf("%s: lead time %q, want a duration", page, got)
		}
		if got := metric("change_failure_rate"); got != "0%" {
			t.Errorf("%s: change failure rate %q, want 0%%", page, got)
		}
		if got := metric("time_to_restore"); got != "—" {
			t.Errorf("%s: time to restore %q, want — (no incident)", page, got)
		}
	}

	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), d.token),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS(`.app-card[data-app="web"]`)),
	); err != nil {
		t.Fatal(err)
	}
	check("apps page")
	head, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#dora .dora-head")))
	if err != nil || !strings.Contains(head, "all apps") {
		t.Errorf("apps page heading %q (%v); want the host's numbers", head, err)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/apps/web"), chromedp.WaitVisible(chromedp.CSS(`#releases`))); err != nil {
		t.Fatal(err)
	}
	check("app page")
	head, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#dora .dora-head")))
	if strings.Contains(head, "all apps") {
		t.Errorf("app page heading %q: shows the host's numbers", head)
	}
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		path := filepath.Join(testOutDir(t), "dashboard-dora.png")
		if os.WriteFile(path, png, 0o644) == nil {
			t.Logf("screenshot: %s", path)
		}
	}

	// A page for an app that does not exist hides the strip and stops asking.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/apps/nope"), chromedp.Sleep(time.Second)); err != nil {
		t.Fatal(err)
	}
	hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("dora").hidden`))
	if err != nil || !hidden {
		t.Errorf("dora strip on a missing app's page: hidden %v, %v", hidden, err)
	}
}
