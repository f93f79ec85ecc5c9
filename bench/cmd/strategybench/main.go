// Command strategybench measures plat's release strategies on the real
// Docker Engine with the same app (the static test app, 3 replicas by
// default, health probed every 100ms): for blue-green, rolling (batch 1)
// and in-place, the time from `git push` until the router first answers
// with the new version and until it answers only with it (100%), the time
// the push command takes, and, under a light load of keep-alive clients,
// the longest request (in-place: the pause while requests are held) and
// the failed requests. It runs its own daemon on free loopback ports and
// cleans up what it made in the engine.
//
//	go run ./bench/cmd/strategybench -pushes 3 -replicas 3
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
	"sync"
	"time"

	"github.com/plat-paas/plat/bench/load"
	"github.com/plat-paas/plat/bench/platd"
)

func main() {
	pushes := flag.Int("pushes", 3, "timed pushes per strategy, after a warm-up push")
	replicas := flag.Int("replicas", 3, "replicas of the app")
	clients := flag.Int("clients", 4, "keep-alive load clients during each push")
	flag.Parse()
	log.SetFlags(0)

	dir, err := os.MkdirTemp("", "strategybench-")
	if err != nil {
		log.Fatal(err)
	}
	d, err := platd.Start(platd.Options{Dir: dir, Instance: fmt.Sprintf("strategybench-%d", os.Getpid())})
	if err != nil {
		os.RemoveAll(dir)
		log.Fatal(err)
	}
	defer d.Close()

	strategies := [][]string{{"blue-green"}, {"rolling", "--batch", "1"}, {"in-place", "--hold", "30s"}}
	fmt.Printf("%d replicas, %d timed pushes per strategy, %d keep-alive clients\n", *replicas, *pushes, *clients)
	fmt.Printf("\n| strategy | push → first new answer | push → 100%% new | of which build | push returns | longest request | failed |\n|---|---|---|---|---|---|---|\n")
	for _, s := range strategies {
		app := strings.ReplaceAll(s[0], "-", "")
		r, err := d.NewRepo(app, "")
		if err != nil {
			log.Fatal(err)
		}
		for _, args := range [][]string{{"health:set", app, "--interval", "100ms"}} {
			if out, err := d.CLI(args...); err != nil {
				log.Fatalf("%v\n%s", err, out)
			}
		}
		b := &bench{d: d, r: r, app: app}
		b.push(0) // warm-up, one replica
		for _, args := range [][]string{{"scale", app, fmt.Sprintf("web=%d", *replicas)}, append([]string{"strategy:set", app}, s...)} {
			if out, err := d.CLI(args...); err != nil {
				log.Fatalf("%v\n%s", err, out)
			}
		}
		var first, full, build, total, longest []time.Duration
		failed := 0
		for range *pushes {
			m := b.push(*clients)
			fmt.Fprintf(os.Stderr, "%s: first new %s, 100%% %s, push %s, longest request %s, failed %d; %s\n",
				s[0], round(m.first), round(m.full), round(m.total), round(m.longest), m.failed, m.timings)
			first, full, total, longest = append(first, m.first), append(full, m.full), append(total, m.total), append(longest, m.longest)
			build = append(build, buildTime(m.timings))
			failed += m.failed
		}
		row := fmt.Sprintf("| %s | %s | %s | %s | %s | %s (max %s) | %d |", strings.Join(s, " "), median(first), median(full), median(build), median(total),
			median(longest), round(slices.Max(longest)), failed)
		fmt.Println(row)
	}
}

type bench struct {
	d       *platd.Daemon
	r       *platd.Repo
	app     string
	commits int
}

type measure struct {
	first, full, total, longest time.Duration
	failed                      int
	timings                     string
}

// push commits a new version and pushes it while clients keep-alive
// clients hit the app, and a poller records when the new version first
// answered and when the old one last did.
func (b *bench) push(clients int) measure {
	b.commits++
	version := fmt.Sprintf("s%d", b.commits)
	if err := b.r.Write("version", version); err != nil {
		log.Fatal(err)
	}
	if err := b.r.Commit(version); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var res load.Result
	var wg sync.WaitGroup
	if clients > 0 {
		wg.Go(func() {
			res = load.Run(ctx, load.Options{Target: b.d.HTTPAddr, Host: b.app + ".localhost", Concurrency: clients, KeepAlive: true, Pause: 5 * time.Millisecond})
		})
	}
	start := time.Now()
	var first, lastOld time.Duration
	wg.Go(func() {
		client := &http.Client{Timeout: 60 * time.Second}
		for ctx.Err() == nil {
			req, _ := http.NewRequest(http.MethodGet, "http://"+b.d.HTTPAddr+"/", nil)
			req.Host = b.app + ".localhost"
			resp, err := client.Do(req)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				at := time.Since(start)
				if strings.Contains(string(body), "version="+version+" ") {
					if first == 0 {
						first = at
					}
				} else {
					lastOld = at
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
	out, err := b.r.Push()
	total := time.Since(start)
	if err != nil {
		log.Fatalf("%v\n%s", err, out)
	}
	time.Sleep(500 * time.Millisecond) // the poller sees the end
	cancel()
	wg.Wait()
	return measure{first: first, full: max(lastOld, first), total: total, longest: res.Max, failed: res.Failed(), timings: platd.Timings(out)}
}

// buildTime reads the build phase of a Timings line ("build 1.2s, ...").
func buildTime(timings string) time.Duration {
	phase, _, _ := strings.Cut(timings, ",")
	d, _ := time.ParseDuration(strings.TrimPrefix(phase, "build "))
	return d
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return round(s[len(s)/2])
}

func round(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
