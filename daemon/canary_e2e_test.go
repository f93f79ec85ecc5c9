package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/plat-paas/plat/internal/browsertest"
)

// canaryLoad is traffic against an app during a rollout: clients without
// cookies (split by weight) counting what plat fails (connection errors and
// the router's own 502/503/504) apart from the app's own 500s, and one
// browser-like client that keeps the router's plat_bucket cookie and
// records the versions it saw.
type canaryLoad struct {
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	inFlight atomic.Int64

	mu                  sync.Mutex
	requests, appErrors int
	platFailed, refused int
	failures            []string
	firstAppError       time.Time
	lastAppError        time.Time
	sticky              []string // versions the cookie client saw, repeats folded
	cookie              string
}

// canaryLoadClients without cookies, each pausing canaryLoadPause between
// requests: a small, steady load for a shared 2-core machine.
const (
	canaryLoadClients = 3
	canaryLoadPause   = 10 * time.Millisecond
)

func startCanaryLoad(t *testing.T, d *daemon, app string) *canaryLoad {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &canaryLoad{cancel: cancel}
	client := &http.Client{Timeout: 30 * time.Second}
	do := func(path, cookie string) (int, string, http.Header, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.httpAddr+path, nil)
		req.Host = app + ".localhost"
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		l.inFlight.Add(1)
		defer l.inFlight.Add(-1)
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header, err
	}
	count := func(code int, body string, err error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if ctx.Err() != nil {
			return // the load's own end
		}
		l.requests++
		switch {
		case err != nil || code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
			l.platFailed++
			if errors.Is(err, syscall.ECONNREFUSED) {
				l.refused++
			}
			if len(l.failures) < 5 {
				l.failures = append(l.failures, strings.TrimSpace(body)+" "+errString(err))
			}
		case code == http.StatusInternalServerError:
			now := time.Now()
			if l.appErrors == 0 {
				l.firstAppError = now
			}
			l.appErrors++
			l.lastAppError = now
		}
	}
	for range canaryLoadClients {
		l.wg.Go(func() {
			for ctx.Err() == nil {
				code, body, _, err := do("/load", "")
				count(code, body, err)
				time.Sleep(canaryLoadPause)
			}
		})
	}
	l.wg.Go(func() {
		for ctx.Err() == nil {
			l.mu.Lock()
			cookie := l.cookie
			l.mu.Unlock()
			code, body, h, err := do("/", cookie)
			count(code, body, err)
			l.mu.Lock()
			for _, c := range h.Values("Set-Cookie") {
				if strings.HasPrefix(c, "plat_bucket=") {
					l.cookie, _, _ = strings.Cut(c, ";")
				}
			}
			if v := versionOf(body); v != "" && (len(l.sticky) == 0 || l.sticky[len(l.sticky)-1] != v) {
				l.sticky = append(l.sticky, v)
			}
			l.mu.Unlock()
			time.Sleep(canaryLoadPause)
		}
	})
	t.Cleanup(l.stop)
	return l
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// versionOf reads "version=X" from the testapp's answer.
func versionOf(body string) string {
	_, rest, ok := strings.Cut(body, "version=")
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, " ")
	return v
}

func (l *canaryLoad) stop() {
	l.cancel()
	l.wg.Wait()
}

// done stops the load and fails t if plat failed a request.
func (l *canaryLoad) done(t *testing.T) {
	t.Helper()
	l.stop()
	t.Logf("load: %d requests, %d app 500s, %d failed by plat (%d refused), cookie client saw %v", l.requests, l.appErrors, l.platFailed, l.refused, l.sticky)
	if l.requests == 0 {
		t.Error("no request was sent")
	}
	if l.platFailed != 0 {
		t.Errorf("%d requests failed by plat, want 0: %q", l.platFailed, l.failures)
	}
}

// rollout reads the app's rollout in progress through `plat rollout --json`.
func (d *daemon) rollout(app string) (map[string]any, bool) {
	out, err := d.plat("rollout", app, "--json")
	if err != nil {
		return nil, false
	}
	var st map[string]any
	if json.Unmarshal([]byte(out), &st) != nil {
		return nil, false
	}
	return st, true
}

// waitStep waits until app's rollout runs its step n.
func (d *daemon) waitStep(app string, n int) map[string]any {
	d.t.Helper()
	var st map[string]any
	waitFor(d.t, 90*time.Second, "the rollout's step", func() bool {
		s, ok := d.rollout(app)
		st = s
		return ok && s["state"] == "step" && s["step"] == float64(n)
	})
	return st
}

type pushResult struct {
	out string
	err error
}

func pushAsync(r *repo) chan pushResult {
	ch := make(chan pushResult, 1)
	go func() { out, err := r.push("main"); ch <- pushResult{out, err} }()
	return ch
}

func (d *daemon) release(app string, version int) release {
	d.t.Helper()
	for _, r := range d.releases(app) {
		if r.Version == version {
			return r
		}
	}
	d.t.Fatalf("%s has no v%d", app, version)
	return release{}
}

func mustContain(t *testing.T, what, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}

// TestCanary ships releases of one app with the canary strategy on the real
// engine, under load, with one daemon: a good canary reaches 100% step by
// step (a cookie-keeping client never flips back), a bad one is aborted on
// the router's numbers, rollout:promote, rollout:abort and a rollback cut a
// rollout short, and a worker killed mid-rollout comes back with the stable
// release serving alone. plat fails no request in any of it. On today's
// main there is no canary: the app went live blue-green at once.
func TestCanary(t *testing.T) {
	d := startDaemon(t)
	r := d.deployedApp("can", "one")
	setCanary := func(stepTime string, steps string) {
		t.Helper()
		d.mustPlat("strategy:set", "can", "canary", "--steps", steps, "--step-time", stepTime, "--min-requests", "5", "--max-error-rate", "1")
	}

	t.Run("success", func(t *testing.T) {
		setCanary("2s", "10,50,100")
		l := startCanaryLoad(t, d, "can")
		r.commit("two", "")
		began := time.Now()
		out := r.mustPush("main")
		t.Logf("push → 100%% with canary 10,50,100 every 2s: %s", time.Since(began).Round(time.Millisecond))
		l.done(t)
		mustContain(t, "push output", out,
			"Canary step 1 of 3: 10% of requests to v2, 90% to v1 for 2s", "Step 1 (10%) passed: v2 ",
			"Canary step 2 of 3: 50%", "Step 2 (50%) passed", "Canary step 3 of 3: 100%", "Step 3 (100%) passed",
			"Switched all traffic to v2", "Timings: ", "step 1 (10%) ", "step 3 (100%) ")
		d.mustServe("can", "version=two")
		if l.cookie == "" {
			t.Error("the router set no plat_bucket cookie")
		}
		if s := strings.Join(l.sticky, ","); s != "one,two" && s != "two" {
			t.Errorf("the cookie client saw versions %s; want one, then two, never back", s)
		}
		if len(d.containers("can")) != 1 {
			t.Errorf("containers %v, want only v2's", d.containers("can"))
		}
		if !d.hasEvent("can", "canary", "step 2 (50%)") {
			t.Errorf("no event of step 2: %+v", d.events("can"))
		}
	})

	t.Run("bad canary aborted", func(t *testing.T) {
		l := startCanaryLoad(t, d, "can")
		r.commit("three", "errors")
		out, err := r.push("main")
		l.done(t)
		if err == nil {
			t.Fatalf("the push of a failing canary succeeded:\n%s", out)
		}
		mustContain(t, "push output", out, "canary v3: 5xx ", " requests > 1% at step 1 (10%)", "all traffic is back on v2")
		rel := d.release("can", 3)
		if rel.Status != "failed" || !strings.HasPrefix(rel.Reason, "canary v3: 5xx ") || !strings.Contains(rel.Reason, "% of ") {
			t.Errorf("v3 %s %q, want failed with the numbers", rel.Status, rel.Reason)
		}
		if l.appErrors == 0 {
			t.Error("the load saw none of the canary's 500s")
		}
		t.Logf("bad canary: first 500 → last 500 (all traffic back on stable): %s", l.lastAppError.Sub(l.firstAppError).Round(time.Millisecond))
		d.mustServe("can", "version=two")
		if code, _, err := d.get("can", "/load"); err != nil || code != 200 {
			t.Errorf("GET /load after the abort: %d %v, want v2's 200", code, err)
		}
		if len(d.containers("can")) != 1 {
			t.Errorf("containers %v, want only v2's", d.containers("can"))
		}
	})

	t.Run("promote and abort from the CLI", func(t *testing.T) {
		setCanary("60s", "10,50,100")
		l := startCanaryLoad(t, d, "can")
		r.commit("four", "")
		push := pushAsync(r)
		st := d.waitStep("can", 1)
		if st["from"] != 2.0 || st["to"] != 4.0 || st["weight"] != 10.0 || st["strategy"] != "canary" {
			t.Errorf("rollout %v", st)
		}
		mustContain(t, "plat rollout", d.mustPlat("rollout", "can"), "can: canary rollout of v4 (stable v2)", "step:   1 of 3 (10%, 50%, 100%)", "RELEASE", "canary", "10%")
		began := time.Now()
		mustContain(t, "rollout:promote", d.mustPlat("rollout:promote", "can"), "v4 of can is now the active release")
		t.Logf("rollout:promote → answered: %s", time.Since(began).Round(time.Millisecond))
		d.mustServe("can", "version=four")
		if p := <-push; p.err != nil {
			t.Fatalf("the promoted push failed: %v\n%s", p.err, p.out)
		} else {
			mustContain(t, "push output", p.out, "Promoted v4 at step 1 (10%)")
		}

		r.commit("five", "")
		push = pushAsync(r)
		d.waitStep("can", 1)
		mustContain(t, "rollout:abort", d.mustPlat("rollout:abort", "can"), "Aborted the rollout of v5 of can")
		d.mustServe("can", "version=four")
		if p := <-push; p.err == nil {
			t.Errorf("the aborted push succeeded:\n%s", p.out)
		}
		l.done(t)
		if rel := d.release("can", 5); rel.Status != "failed" || rel.Reason != "canary v5: aborted by rollout:abort at step 1 (10%)" {
			t.Errorf("v5 %s %q", rel.Status, rel.Reason)
		}
		if out, err := d.plat("rollout", "can"); err == nil || !strings.Contains(out, "no rollout in progress") {
			t.Errorf("plat rollout without one: %v %q", err, out)
		}
		if len(d.containers("can")) != 1 {
			t.Errorf("containers %v, want only v4's", d.containers("can"))
		}
	})

	t.Run("rollback mid-rollout", func(t *testing.T) {
		l := startCanaryLoad(t, d, "can")
		r.commit("six", "")
		push := pushAsync(r)
		d.waitStep("can", 1)
		out := d.mustPlat("rollback", "can")
		mustContain(t, "plat rollback", out, "Aborted the rollout in progress", "Rolling back can to v2 as v7")
		d.mustServe("can", "version=two")
		if p := <-push; p.err == nil {
			t.Errorf("the push whose rollout a rollback aborted succeeded:\n%s", p.out)
		}
		l.done(t)
		if rel := d.release("can", 6); rel.Status != "failed" || rel.Reason != "canary v6: aborted by a rollback at step 1 (10%)" {
			t.Errorf("v6 %s %q", rel.Status, rel.Reason)
		}
	})

	t.Run("worker killed mid-rollout", func(t *testing.T) {
		setCanary("60s", "50,100")
		l := startCanaryLoad(t, d, "can")
		r.commit("eight", "")
		push := pushAsync(r)
		d.waitStep("can", 1)
		worker, ready := d.workerPID(), d.readyCount()
		inFlight := l.inFlight.Load()
		if err := syscall.Kill(worker, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 60*time.Second, "a new worker to serve", func() bool { return d.readyCount() > ready })
		if p := <-push; p.err == nil {
			t.Errorf("the push survived its worker's death:\n%s", p.out)
		}
		time.Sleep(time.Second)
		l.stop()
		t.Logf("load: %d requests, %d failed by plat (%d refused, %d in flight at the kill)", l.requests, l.platFailed, l.refused, inFlight)
		if l.refused != 0 {
			t.Errorf("%d connections refused, want 0: the supervisor holds the sockets", l.refused)
		}
		if int64(l.platFailed) > inFlight {
			t.Errorf("%d requests failed, more than the %d in flight at the kill: %q", l.platFailed, inFlight, l.failures)
		}
		if rel := d.release("can", 8); rel.Status != "failed" || rel.Reason != "aborted: the daemon restarted during step 1 (50%)" {
			t.Errorf("v8 %s %q", rel.Status, rel.Reason)
		}
		for range 20 {
			d.mustServe("can", "version=two") // stable alone, never the canary
		}
		if len(d.containers("can")) != 1 {
			t.Errorf("containers %v, want only v7's", d.containers("can"))
		}
	})

	t.Run("dashboard panel and Promote", func(t *testing.T) {
		chromium := browsertest.Require(t)
		setCanary("60s", "10,50,100")
		l := startCanaryLoad(t, d, "can")
		r.commit("nine", "")
		push := pushAsync(r)
		d.waitStep("can", 1)
		ctx := browsertest.New(t, chromium)
		base := "http://" + d.apiAddr
		if err := chromedp.Do(ctx,
			chromedp.Navigate(base+"/"),
			chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SendKeys(chromedp.CSS("#token"), d.token),
			chromedp.Submit(chromedp.CSS("#token")),
			chromedp.WaitVisible(chromedp.CSS(`.app-card[data-app="can"]`)),
			chromedp.Navigate(base+"/apps/can"),
			chromedp.WaitVisible(chromedp.CSS(`#rollout .rollout-bar`)),
		); err != nil {
			t.Fatal(err)
		}
		bar, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#rollout .rollout-bar").getAttribute("aria-label")`))
		if err != nil {
			t.Fatal(err)
		}
		table, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#rollout .rollout-table`)))
		if err != nil {
			t.Fatal(err)
		}
		if bar != "v7 90%, v9 10%" {
			t.Errorf("split bar %q, want v7 90%%, v9 10%%", bar)
		}
		mustContain(t, "rollout table", table, "v7", "stable", "v9", "canary", "10%")
		if err := chromedp.Do(ctx,
			chromedp.Click(chromedp.CSS(`#rollout-promote`)),
			chromedp.WaitVisible(chromedp.CSS(`#confirm-ok`)),
			chromedp.Click(chromedp.CSS(`#confirm-ok`)),
		); err != nil {
			t.Fatal(err)
		}
		if p := <-push; p.err != nil {
			t.Fatalf("the push promoted from the dashboard failed: %v\n%s", p.err, p.out)
		}
		l.done(t)
		d.mustServe("can", "version=nine")
		waitFor(t, 15*time.Second, "the panel to hide after the rollout", func() bool {
			hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("rollout").hidden`))
			return err == nil && hidden
		})
	})
}
