package daemon_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/plat-paas/plat/bench/load"
	"github.com/plat-paas/plat/internal/browsertest"
	"github.com/plat-paas/plat/internal/swarmtest"
)

// swarmNode is the part of GET /api/nodes the swarm test reads.
type swarmNode struct {
	Hostname string `json:"hostname"`
	Role     string `json:"role"`
	State    string `json:"state"`
	Addr     string `json:"addr"`
	Leader   bool   `json:"leader"`
	Tasks    []struct {
		App     string `json:"app"`
		Replica string `json:"replica"`
		Release string `json:"release"`
		Addr    string `json:"addr"`
	} `json:"tasks"`
}

// TestSwarmMode runs the daemon with --orchestrator swarm on a single-node
// swarm of its own engine, with a registry beside it: a push builds on the
// manager, pushes the image and serves it from a service's task; under
// load, a second push, a rollback, scaling to three tasks and a killed
// task (Swarm replaces it, the router follows) fail no request; plat nodes
// shows the node and its tasks, plat logs the tasks' output.
func TestSwarmMode(t *testing.T) {
	requireTools(t)
	se := swarmtest.Start(t)
	t.Setenv("DOCKER_HOST", se.Host)
	// A short scale-down delay lets the sleep step come soon.
	d := startDaemon(t, "--orchestrator", "swarm", "--registry", se.Registry, "--scale-down-delay", "1s")
	const app = "swa"
	d.createApp(app)
	d.mustPlat("health:set", app, "--interval", "100ms", "--deadline", "30s")
	r := d.newRepo(app)
	r.commit("v1", "")
	if out := r.mustPush("main"); !strings.Contains(out, "Pushing "+se.Registry+"/") {
		t.Errorf("the push does not show the registry push:\n%s", out)
	}
	d.mustServe(app, "version=v1")

	var nodes []swarmNode
	if err := json.Unmarshal([]byte(d.mustPlat("nodes", "--json")), &nodes); err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 || nodes[0].Role != "manager" || !nodes[0].Leader || nodes[0].State != "ready" ||
		len(nodes[0].Tasks) != 1 || nodes[0].Tasks[0].App != app || nodes[0].Tasks[0].Release != "1" {
		t.Fatalf("plat nodes: %+v", nodes)
	}
	if host, _, _ := net.SplitHostPort(nodes[0].Tasks[0].Addr); host != "127.0.0.1" {
		t.Errorf("task address %q, want the node's address 127.0.0.1", nodes[0].Tasks[0].Addr)
	}
	if out := d.mustPlat("nodes"); !strings.Contains(out, "manager (leader)") || !strings.Contains(out, "-"+app+"-v1.1 at 127.0.0.1:") {
		t.Errorf("plat nodes:\n%s", out)
	}
	if out := d.mustPlat("nodes:join-command"); !strings.Contains(out, "docker swarm join --token SWMTKN-") {
		t.Errorf("plat nodes:join-command:\n%s", out)
	}
	t.Run("the apps page shows the nodes", func(t *testing.T) {
		b := browser{ctx: browsertest.New(t, browsertest.Require(t))}
		b.do(t, chromedp.Navigate("http://"+d.apiAddr+"/"),
			chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SendKeys(chromedp.CSS("#token"), d.token),
			chromedp.Submit(chromedp.CSS("#token")),
			chromedp.WaitVisible(chromedp.CSS("#nodes tbody tr")))
		if row := b.text(t, "#nodes tbody tr"); !strings.Contains(row, "manager (leader)") || !strings.Contains(row, "ready") || !strings.Contains(row, app+" v1") {
			t.Errorf("nodes panel row: %q", row)
		}
	})

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var res load.Result
	var wg sync.WaitGroup
	wg.Go(func() {
		res = load.Run(ctx, load.Options{Target: d.httpAddr, Host: app + ".localhost", Concurrency: 4, KeepAlive: true})
	})
	time.Sleep(300 * time.Millisecond)

	r.commit("v2", "")
	r.mustPush("main")
	d.servedBy(app, 10, "version=v2")
	d.mustPlat("rollback", app)
	d.servedBy(app, 10, "version=v1")
	d.mustPlat("scale", app, "web=3")
	ps := d.ps(app)
	if len(ps) != 3 {
		t.Fatalf("ps after web=3: %+v", ps)
	}
	// Under the load the router favours the least busy replica: ask until
	// each of the three has answered.
	waitFor(t, 10*time.Second, "all three tasks to answer", func() bool { return len(d.servedBy(app, 30, "version=v1")) == 3 })

	// A task that dies is replaced by Swarm; the router drops it at once
	// and takes the new task when it answers.
	victim := ps[1]
	ctr, err := se.Docker("ps", "-q", "--filter", "label=plat.name="+victim.Name)
	if err != nil || ctr == "" {
		t.Fatalf("container of %s: %q %v", victim.Name, ctr, err)
	}
	if out, err := se.Docker("kill", ctr); err != nil {
		t.Fatalf("docker kill: %v\n%s", err, out)
	}
	waitFor(t, 30*time.Second, "the killed task's replacement to serve", func() bool {
		now := d.ps(app)
		return len(now) == 3 && now[1].ID == victim.ID && now[1].Addr != victim.Addr && now[1].State == "running"
	})
	if !d.hasEvent(app, "crashed", victim.Name) {
		t.Errorf("no crashed event for %s: %+v", victim.Name, d.events(app))
	}
	// plat restart renames the old replicas aside (a label: services
	// cannot be renamed) and replaces each with a new service.
	d.mustPlat("restart", app)
	after := d.ps(app)
	if len(after) != 3 {
		t.Fatalf("ps after restart: %+v", after)
	}
	for i, r := range after {
		if r.ID == ps[i].ID {
			t.Errorf("replica %s kept its service across plat restart", r.Name)
		}
	}
	waitFor(t, 10*time.Second, "all three new tasks to answer", func() bool { return len(d.servedBy(app, 30, "version=v1")) == 3 })
	time.Sleep(300 * time.Millisecond)
	stop()
	wg.Wait()
	t.Logf("load across push, rollback, scale, a killed task and a restart: %s", res)
	if res.OK == 0 || res.Failed() != 0 {
		t.Errorf("requests failed in swarm mode: %s %v", res, res.Failures)
	}

	for i := range 3 {
		if code, _, err := d.get(app, "/?print=swarm-line-"+string(rune('a'+i))); err != nil || code != http.StatusOK {
			t.Fatalf("GET ?print: %d %v", code, err)
		}
	}
	waitFor(t, 15*time.Second, "plat logs to show the tasks' output", func() bool {
		out, _ := d.plat("logs", app)
		return strings.Contains(out, "swarm-line-")
	})

	// One-off commands run on the manager, on the app's network.
	if out := d.mustPlat("run", app, "--", "/app", "args", "a b", "c"); !strings.Contains(out, "[a b]") {
		t.Errorf("plat run in swarm mode:\n%s", out)
	}
	// A daemon restart adopts the running services.
	d.restart(syscall.SIGTERM)
	d.servedBy(app, 6, "version=v1")
	if ps := d.ps(app); len(ps) != 3 {
		t.Errorf("ps after a daemon restart: %+v", ps)
	}
	// Sleep scales the services to no task; a request wakes one.
	d.mustPlat("scale", app, "--min", "0", "--idle", "1s")
	waitFor(t, 30*time.Second, "the idle app to sleep", func() bool { return d.appState(app).Status == "sleeping" })
	d.mustServe(app, "version=v1")
}

// TestNodesPlainMode: without swarm mode, plat nodes says how to get it.
func TestNodesPlainMode(t *testing.T) {
	d := startDaemon(t)
	out, err := d.plat("nodes")
	if err == nil || !strings.Contains(out, "--orchestrator swarm") {
		t.Fatalf("plat nodes on a plain daemon: %v\n%s", err, out)
	}
}
