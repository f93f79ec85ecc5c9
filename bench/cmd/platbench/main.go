// Command platbench measures plat's deploys on the real Docker Engine: push
// to serving time and its phases, rollback time, the daemon's memory idle
// and with many apps, and routing cost with 1 and many apps. It builds plat
// and the test app, runs its own daemon on free loopback ports and cleans
// up what it made in the engine.
//
//	go run ./bench/cmd/platbench -pushes 7 -apps 50 -coldstart 10 -replica-rounds 3
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/plat-paas/plat/bench/load"
	"github.com/plat-paas/plat/bench/platd"
)

func main() {
	pushes := flag.Int("pushes", 7, "timed pushes (and rollbacks) of one app, after a warm-up push")
	apps := flag.Int("apps", 50, "apps to deploy for the footprint run (0 skips it)")
	loadFor := flag.Duration("load", 5*time.Second, "length of each routing-cost load run")
	coldStarts := flag.Int("coldstart", 10, "cold starts (sleeping app → first byte) to time, beside direct starts (0 skips)")
	replicaRounds := flag.Int("replica-rounds", 3, "rounds of the 1 vs 3 replicas throughput run (0 skips it)")
	warmRounds := flag.Int("warm", 0, "rounds of the warm-stage run: rollback from the standby vs new containers, first requests to warm, cold and running apps (0 skips it)")
	flag.Parse()
	log.SetFlags(0)

	b, err := newBench()
	if err != nil {
		fatalf("%v", err)
	}
	defer b.Close()
	onFatal = b.Close
	fmt.Printf("daemon RSS idle: %s\n", b.RSS())
	if *pushes > 0 {
		b.deploySpeed(*pushes)
	}
	if *coldStarts > 0 {
		b.coldStart(*coldStarts)
	}
	if *replicaRounds > 0 {
		b.replicaThroughput(*replicaRounds, *loadFor)
	}
	if *warmRounds > 0 {
		b.warm(*warmRounds)
	}
	if *apps > 0 {
		b.footprint(*apps, *loadFor)
	}
}

type bench struct {
	*platd.Daemon
	repos   map[string]*platd.Repo
	commits int
}

// dockerfile is the benchmarked app: the static test app in a FROM-scratch
// image with its version file.
const dockerfile = "FROM scratch\nCOPY app /app\nCOPY version /version\nCMD [\"/app\"]\n"

func newBench() (*bench, error) {
	dir, err := os.MkdirTemp("", "platbench-")
	if err != nil {
		return nil, err
	}
	d, err := platd.Start(platd.Options{Dir: dir, Instance: fmt.Sprintf("platbench-%d", os.Getpid())})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	time.Sleep(2 * time.Second) // let start-up garbage settle before the idle reading
	return &bench{Daemon: d, repos: map[string]*platd.Repo{}}, nil
}

// newApp creates an app and a checkout of the test app for it.
func (b *bench) newApp(app string) {
	b.repos[app] = must(b.NewRepo(app, dockerfile))
}

// push commits a new version and pushes it, returning the time until the
// router served it, the push's total time and the daemon's timings line.
func (b *bench) push(app string) (serving, total time.Duration, timings string) {
	b.commits++
	version := fmt.Sprintf("b%d", b.commits)
	r := b.repos[app]
	must("", r.Write("version", version))
	must("", r.Commit(version))
	start := time.Now()
	served := b.watchServing(app, func(body string) bool { return strings.Contains(body, "version="+version+" ") })
	out, err := r.Push()
	total = time.Since(start)
	if err != nil {
		fatalf("%v\n%s", err, out)
	}
	return <-served, total, platd.Timings(out)
}

// watchServing polls the router (every 1ms) until app answers 200 with a
// body that satisfies ok, and sends how long that took.
func (b *bench) watchServing(app string, ok func(body string) bool) <-chan time.Duration {
	start := time.Now()
	ch := make(chan time.Duration, 1)
	client := &http.Client{Timeout: 5 * time.Second}
	go func() {
		for {
			req, _ := http.NewRequest(http.MethodGet, "http://"+b.HTTPAddr+"/", nil)
			req.Host = app + ".localhost"
			if resp, err := client.Do(req); err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK && ok(string(body)) {
					ch <- time.Since(start)
					return
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return ch
}

func (b *bench) deploySpeed(n int) {
	const app = "speed"
	b.newApp(app)
	b.push(app) // warm-up: fills the build cache
	fmt.Printf("\n## push to serving (%d pushes, cached FROM-scratch app)\n", n)
	var servings, totals []time.Duration
	for range n {
		serving, total, timings := b.push(app)
		servings, totals = append(servings, serving), append(totals, total)
		fmt.Printf("serving after %-8s push returned after %-8s daemon: %s\n", round(serving), round(total), timings)
	}
	fmt.Printf("median: serving %s, push %s\n", median(servings), median(totals))

	fmt.Printf("\n## rollback to serving (%d rollbacks)\n", n)
	var rbs []time.Duration
	for range n {
		_, prev, _ := b.Get(app, "/")
		start := time.Now()
		served := b.watchServing(app, func(body string) bool { return body != prev })
		out, err := b.CLI("rollback", app)
		must(out, err)
		took := time.Since(start)
		serving := <-served
		rbs = append(rbs, serving)
		fmt.Printf("rollback: old version serving after %-8s command returned after %s\n", round(serving), round(took))
	}
	fmt.Printf("median rollback: %s\n", median(rbs))
}

func (b *bench) footprint(apps int, loadFor time.Duration) {
	fmt.Printf("\n## footprint and scale (1 → %d apps)\n", apps)
	routing := func() load.Result {
		ctx, cancel := context.WithTimeout(context.Background(), loadFor)
		defer cancel()
		return load.Run(ctx, load.Options{Target: b.HTTPAddr, Host: "speed.localhost", KeepAlive: true})
	}
	r1 := routing()
	fmt.Printf("routing with 1 app: %s\n", r1)
	fmt.Printf("daemon RSS with 1 app: %s\n", b.RSS())
	for i := 1; i <= apps; i++ {
		app := fmt.Sprintf("app%d", i)
		b.newApp(app)
		serving, total, timings := b.push(app)
		if i == 1 || i%10 == 0 {
			fmt.Printf("app %d: serving after %s, push %s (%s); daemon RSS %s\n", i, round(serving), round(total), timings, b.RSS())
		}
	}
	runtime := routing()
	fmt.Printf("routing with %d apps: %s\n", apps+1, runtime)
}

func must[T any](v T, err error) T {
	if err != nil {
		fatalf("%v", err)
	}
	return v
}

// onFatal cleans up before fatalf exits (deferred calls do not run then).
var onFatal = func() {}

func fatalf(format string, args ...any) {
	log.Printf(format, args...)
	onFatal()
	os.Exit(1)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return round(s[len(s)/2])
}

func round(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
