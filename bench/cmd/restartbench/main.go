// Command restartbench measures what plat's own restarts cost the apps it
// serves: N upgrades and N kill -9s of the daemon under load, counting every
// failed request by kind, the longest request, and the time from the signal
// to a daemon serving again. bench/restart.sh runs it.
//
// With a daemon that has in-place upgrades (a supervisor), an upgrade is
// SIGHUP to the supervisor and a crash is SIGKILL of its worker. With
// -restart (an older plat without them, e.g. -plat built from a release
// before issue 11), an upgrade is SIGTERM and a new `plat daemon`, a crash
// SIGKILL and a new `plat daemon` at once: what install.sh and systemd did.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/plat-paas/plat/bench/load"
	"github.com/plat-paas/plat/bench/platd"
)

func main() {
	plat := flag.String("plat", "", "plat binary to measure (default: build this checkout)")
	restart := flag.Bool("restart", false, "the daemon has no in-place upgrade: restart the process instead (SIGTERM/SIGKILL, then start)")
	rounds := flag.Int("n", 10, "upgrades, and kill -9s")
	clients := flag.Int("clients", 32, "load clients: half keep their connections, half open one per request")
	settle := flag.Duration("settle", 2*time.Second, "load between two restarts")
	flag.Parse()
	log.SetFlags(0)

	dir, err := os.MkdirTemp("", "restartbench-")
	if err != nil {
		log.Fatal(err)
	}
	d, err := platd.Start(platd.Options{Dir: dir, Instance: fmt.Sprintf("restartbench-%d", os.Getpid()), Plat: *plat})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	fail := func(err error) {
		d.Close()
		log.Fatal(err)
	}
	r, err := d.NewRepo("rb", "")
	if err != nil {
		fail(err)
	}
	if err := r.Write("version", "one"); err != nil {
		fail(err)
	}
	if err := r.Commit("one"); err != nil {
		fail(err)
	}
	if out, err := r.Push(); err != nil {
		fail(fmt.Errorf("%v\n%s", err, out))
	}
	mode := "in-place upgrade (SIGHUP) and kill -9 of the worker"
	if *restart {
		mode = "restart (SIGTERM + start) and kill -9 + start"
	}
	fmt.Printf("plat restarts under load: %s; %d rounds each, %d clients (%d keep-alive, %d new connection per request), %s between\n",
		mode, *rounds, *clients, *clients/2, *clients-*clients/2, *settle)

	for _, kind := range []string{"upgrade", "kill -9"} {
		var inFlight atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		results := make(chan load.Result, 2)
		for _, ka := range []bool{true, false} {
			n := *clients / 2
			if !ka {
				n = *clients - n
			}
			go func() {
				results <- load.Run(ctx, load.Options{Target: d.HTTPAddr, Host: "rb.localhost", Concurrency: n, KeepAlive: ka, InFlight: &inFlight, Timeout: time.Minute})
			}()
		}
		var serving []time.Duration
		var atSignal int64
		for range *rounds {
			time.Sleep(*settle)
			ready := d.ReadyCount()
			atSignal += inFlight.Load()
			began := time.Now()
			var err error
			switch {
			case kind == "upgrade" && *restart:
				err = d.Restart(syscall.SIGTERM)
			case kind == "upgrade":
				err = syscall.Kill(d.PID(), syscall.SIGHUP)
			case *restart:
				err = d.Restart(syscall.SIGKILL)
			default:
				err = syscall.Kill(d.WorkerPID(), syscall.SIGKILL)
			}
			if err != nil {
				cancel()
				fail(err)
			}
			for d.ReadyCount() <= ready {
				if time.Since(began) > time.Minute {
					cancel()
					fail(fmt.Errorf("no daemon served within a minute after the %s; see %s", kind, d.LogPath))
				}
				time.Sleep(2 * time.Millisecond)
			}
			serving = append(serving, time.Since(began))
		}
		time.Sleep(*settle)
		cancel()
		res := load.Merge(<-results, <-results)
		slices.Sort(serving)
		fmt.Printf("\n%d × %s: %d requests, %d failed (refused %d, reset %d, EOF %d, timeout %d, 5xx %d); longest request %s; p99 %s\n",
			*rounds, kind, res.Requests, res.Failed(), res.Refused, res.Reset, res.EOF, res.Timeout, res.Status5xx,
			res.Max.Round(time.Millisecond), res.P99.Round(time.Millisecond))
		fmt.Printf("  signal → serving again: min %s, median %s, max %s; requests in flight at the signals: %d in all\n",
			serving[0].Round(time.Millisecond), serving[len(serving)/2].Round(time.Millisecond), serving[len(serving)-1].Round(time.Millisecond), atSignal)
		if len(res.Failures) > 0 {
			fmt.Printf("  first failures: %v\n", res.Failures)
		}
	}
	if rss, err := d.ProcStatus("VmRSS"); err == nil {
		what := "daemon"
		if !*restart {
			what = "supervisor"
		}
		fmt.Printf("\n%s RSS at the end: %.1f MiB", what, float64(rss)/1024)
		if w := d.WorkerPID(); !*restart && w != 0 {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", w)); err == nil {
				fmt.Printf("; worker: %s", vmRSS(string(b)))
			}
		}
		fmt.Println()
	}
}

func vmRSS(status string) string {
	var kb int
	for _, line := range strings.Split(status, "\n") {
		if _, err := fmt.Sscanf(line, "VmRSS: %d kB", &kb); err == nil {
			return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
		}
	}
	return "?"
}
