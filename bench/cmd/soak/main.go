// Command soak deploys one or two apps hundreds of times on a real plat
// daemon (real engine, real git) while clients send requests through
// plat's router, and checks that the daemon does not grow without bound
// and that nothing is left behind: it samples the daemon's RSS, threads and
// open file descriptors (/proc) and its goroutines and live heap
// (GET /api/debug/runtime) before, every few deploys and after a settle
// period; compares the last third of the samples with the first; then
// counts the containers, images, networks and temp files the deploys left
// beyond what the kept releases need, destroys the apps and counts again.
//
//	go run ./bench/cmd/soak -deploys 300 -apps 2 -out /tmp/soak
//
// bench/soak.sh builds and runs it. It is not part of CI: a full run takes
// 15 to 25 minutes on a 2-core machine.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/plat-paas/plat/bench/platd"
	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/router"
)

// Defaults of the flags.
const (
	defaultDeploys     = 300
	defaultApps        = 2
	defaultSampleEvery = 10
	// defaultSettle outlasts the router's sweep of idle backend
	// connections (closed after DefaultIdleConnTimeout, checked as often),
	// so connections to old releases are gone before the final sample.
	defaultSettle         = 2*router.DefaultIdleConnTimeout + 15*time.Second
	defaultClients        = 2 // per app
	defaultPause          = 10 * time.Millisecond
	defaultHealthDeadline = "3s"
	// warmup is how long the load runs before the first sample.
	warmup = 5 * time.Second
)

type options struct {
	deploys, apps, sampleEvery, clients, retain int
	settle, pause                               time.Duration
	healthDeadline, out                         string
	keep                                        bool
}

func main() {
	var o options
	flag.IntVar(&o.deploys, "deploys", defaultDeploys, "deploys in all: pushes, config changes, rollbacks and failing pushes, spread over the apps")
	flag.IntVar(&o.apps, "apps", defaultApps, "apps deployed in turn (1 or more)")
	flag.IntVar(&o.sampleEvery, "sample-every", defaultSampleEvery, "sample the daemon every N deploys")
	flag.DurationVar(&o.settle, "settle", defaultSettle, "wait after the last deploy before the final sample")
	flag.IntVar(&o.clients, "clients", defaultClients, "request clients per app (keep-alive, through the router)")
	flag.DurationVar(&o.pause, "pause", defaultPause, "pause between one client's requests (bounds the request rate)")
	flag.IntVar(&o.retain, "retain", deploy.DefaultRetain, "the daemon's --retain: releases per app whose images are kept")
	flag.StringVar(&o.healthDeadline, "health-deadline", defaultHealthDeadline, "health-check deadline of the apps (how long a failing health check takes)")
	flag.StringVar(&o.out, "out", "", "directory for report.md, samples.csv, deploys.csv and daemon.log (default: print only)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (repos, data dir) for inspection")
	flag.Parse()
	log.SetFlags(0)
	if o.deploys < 1 || o.apps < 1 || o.sampleEvery < 1 || o.clients < 1 {
		log.Fatal("soak: -deploys, -apps, -sample-every and -clients must be at least 1")
	}
	ok, err := run(o)
	if err != nil {
		log.Fatalf("soak: %v", err)
	}
	if !ok {
		os.Exit(1)
	}
}

// run does the whole soak and reports whether it passed.
func run(o options) (bool, error) {
	dir, err := os.MkdirTemp("", "platsoak-")
	if err != nil {
		return false, err
	}
	tmp := filepath.Join(dir, "tmp") // the daemon's TMPDIR: every temp file it makes lands here
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return false, err
	}
	instance := fmt.Sprintf("platsoak-%d", os.Getpid())
	netsBefore := networkIDs()
	fmt.Printf("building plat and starting `plat daemon --instance %s` in %s\n", instance, dir)
	d, err := platd.Start(platd.Options{Dir: dir, Instance: instance, Env: []string{"TMPDIR=" + tmp},
		Args: []string{"--retain", fmt.Sprint(o.retain)}})
	if err != nil {
		return false, err
	}
	s := &soak{o: o, d: d, tmp: tmp, netsBefore: netsBefore, started: time.Now()}
	defer func() {
		d.Stop()
		s.cleanEngine()
		if o.out != "" {
			_ = copyFile(d.LogPath, filepath.Join(o.out, "daemon.log"))
		}
		if o.keep {
			fmt.Printf("kept %s\n", dir)
		} else {
			_ = os.RemoveAll(dir)
		}
	}()
	return s.run()
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// machine describes where the soak ran, for the report.
func machine() string {
	cpu := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	load := "?"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return fmt.Sprintf("%s, %s; load average %s", cpuCount(), cpu, load)
}

func cpuCount() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "? CPUs"
	}
	return fmt.Sprintf("%d CPUs", strings.Count(string(b), "processor\t:"))
}
