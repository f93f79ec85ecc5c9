package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plat-paas/plat/bench/load"
)

// zdtOp is one step of the zero-downtime scenario.
type zdtOp struct {
	kind string // push, config, rollback, failpush
	// wantFlip: traffic moves to a new release (false for the failing push).
	wantFlip bool
}

// zdtScenario is the short run every CI run makes, or with
// PLAT_ZDT_FULL=1 the full one bench/zerodowntime.sh reports.
func zdtScenario() []zdtOp {
	push, cfg, rb, fail := zdtOp{"push", true}, zdtOp{"config", true}, zdtOp{"rollback", true}, zdtOp{"failpush", false}
	if os.Getenv("PLAT_ZDT_FULL") == "1" {
		return []zdtOp{push, cfg, push, rb, push, fail, push, cfg, rb, push}
	}
	return []zdtOp{push, cfg, rb, fail, push}
}

// TestZeroDowntime deploys pushes, config changes, rollbacks and a push
// whose health check fails while 32 keep-alive clients and 32 clients
// opening a new connection per request hit the app through the router:
// not one request may fail, and a slow request in flight at each flip
// completes with 200 from the old version.
func TestZeroDowntime(t *testing.T) {
	d := startDaemon(t)
	const app = "zdt"
	d.createApp(app)
	d.mustPlat("health:set", app, "--deadline", "5s")
	r := d.newRepo(app)
	r.commit("v-0", "")
	r.mustPush("main")
	d.mustServe(app, "version=v-0")

	ctx, stop := context.WithCancel(context.Background())
	results := make(map[bool]load.Result)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, keepAlive := range []bool{true, false} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := load.Run(ctx, load.Options{Target: d.httpAddr, Host: app + ".localhost", Concurrency: load.DefaultConcurrency, KeepAlive: keepAlive})
			mu.Lock()
			results[keepAlive] = res
			mu.Unlock()
		}()
	}
	defer stop()

	began := time.Now()
	pushes, configs := 0, 0
	for i, op := range zdtScenario() {
		_, before, err := d.get(app, "/")
		if err != nil {
			t.Fatal(err)
		}
		slow := make(chan string, 1)
		go func() {
			code, body, err := d.get(app, "/?sleep=2s")
			slow <- fmt.Sprintf("%d %s %v", code, body, err)
		}()
		time.Sleep(100 * time.Millisecond) // let the slow request reach the app
		opStart := time.Now()
		switch op.kind {
		case "push":
			pushes++
			r.commit(fmt.Sprintf("v-%d", pushes), "")
			r.mustPush("main")
		case "failpush":
			r.commit("never-healthy", "unhealthy")
			if out, err := r.push("main"); err == nil {
				t.Fatalf("step %d: the unhealthy push succeeded:\n%s", i, out)
			}
			r.git("reset", "-q", "--hard", "HEAD~1")
		case "config":
			configs++
			d.mustPlat("config:set", app, fmt.Sprintf("GREETING=c%d", configs))
		case "rollback":
			d.mustPlat("rollback", app)
		}
		took := time.Since(opStart)
		_, after, err := d.get(app, "/")
		if err != nil {
			t.Fatal(err)
		}
		if flipped := after != before; flipped != op.wantFlip {
			t.Errorf("step %d (%s): served %q before and %q after; want a flip: %v", i, op.kind, before, after, op.wantFlip)
		}
		if got, want := <-slow, "200 "+before+" <nil>"; got != want {
			t.Errorf("step %d (%s): slow request in flight at the flip got %q, want %q (the old version)", i, op.kind, got, want)
		}
		t.Logf("step %d: %-8s %s → %s in %s", i, op.kind, strings.TrimSpace(before), strings.TrimSpace(after), took.Round(time.Millisecond))
	}
	stop()
	wg.Wait()
	t.Logf("scenario of %d steps took %s", len(zdtScenario()), time.Since(began).Round(time.Second))
	for _, keepAlive := range []bool{true, false} {
		res := results[keepAlive]
		mode := map[bool]string{true: "keep-alive", false: "new connection per request"}[keepAlive]
		t.Logf("RESULT %s, %d clients: %s", mode, load.DefaultConcurrency, res)
		if res.OK == 0 {
			t.Errorf("%s: no request succeeded", mode)
		}
		if err := res.Check(); err != nil {
			t.Errorf("%s: %v", mode, err)
		}
	}
	if code, _, _ := d.get(app, "/"); code != http.StatusOK {
		t.Errorf("after the scenario the app answers %d", code)
	}
}
