package daemon_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/plat-paas/plat/internal/browsertest"
)

// TestTrafficCharts: the app page draws the traffic charts (requests/min,
// 5xx, p99) from GET /api/apps/{app}/metrics, with the app's totals.
func TestTrafficCharts(t *testing.T) {
	chromium := browsertest.Require(t)
	d := startDaemon(t)
	d.deployedApp("web", "v1") // 1 request
	for range 3 {
		d.mustServe("web", "version=v1")
	}
	ctx := browsertest.New(t, chromium)
	must(t, chromedp.Do(ctx,
		chromedp.Navigate("http://"+d.apiAddr+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), d.token),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS(`.app-card[data-app="web"]`)),
	))
	wait, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	must(t, chromedp.Do(wait,
		chromedp.Navigate("http://"+d.apiAddr+"/apps/web"),
		chromedp.WaitVisible(chromedp.CSS(`#traffic svg.traffic-chart`)),
	))
	totals, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#traffic-totals")))
	must(t, err)
	charts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#traffic svg.traffic-chart").length`))
	must(t, err)
	if !strings.HasPrefix(totals, "4 requests · 0 5xx") || charts != 3 {
		t.Errorf("traffic panel: totals %q, %d charts; want 4 requests, 0 5xx, 3 charts", totals, charts)
	}
	placed, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("#main .app-head + #traffic") !== null`))
	must(t, err)
	if !placed {
		t.Error("the traffic panel is not right below the app's header")
	}
	// The live log view shows the router's request lines as `plat logs`
	// does, "router | " first, and dimmer than the app's own output.
	waitRouter, cancelRouter := context.WithTimeout(ctx, 10*time.Second)
	defer cancelRouter()
	must(t, chromedp.Do(waitRouter, chromedp.WaitVisible(chromedp.CSS(`#logs .line[data-source="router"]`))))
	router, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#logs .line[data-source="router"]')].map((l) => l.textContent.slice(l.querySelector(".ts").textContent.length) + " opacity=" + getComputedStyle(l).opacity)`))
	must(t, err)
	for _, l := range router {
		if !strings.HasPrefix(l, "router | ") || !strings.HasSuffix(l, " opacity=0.6") {
			t.Errorf("router line in the live logs: %q, want it to start with \"router | \" and be dimmed", l)
		}
	}
	screenshot(t, ctx, filepath.Join(testOutDir(t), "dashboard-traffic.png"))
}
