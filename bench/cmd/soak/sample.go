package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/plat-paas/plat/bench/load"
)

// sample is one reading of the daemon.
type sample struct {
	label   string
	deploys int           // deploys done when it was taken
	elapsed time.Duration // since the soak started
	// From /proc/PID: resident memory, OS threads, open descriptors.
	rssKB, threads, fds int
	// From GET /api/debug/runtime.
	goroutines        int
	heapLive, goTotal uint64
	// Requests through the router since the previous sample.
	load load.Result
}

// debugRuntime is the part of GET /api/debug/runtime the soak reads.
type debugRuntime struct {
	Goroutines    int    `json:"goroutines"`
	HeapLiveBytes uint64 `json:"heap_live_bytes"`
	GoTotalBytes  uint64 `json:"go_total_bytes"`
}

func (s *soak) sample(label string, deploys int) error {
	sm := sample{label: label, deploys: deploys, elapsed: time.Since(s.started)}
	var err error
	if sm.rssKB, err = s.d.ProcStatus("VmRSS"); err != nil {
		return err
	}
	if sm.threads, err = s.d.ProcStatus("Threads"); err != nil {
		return err
	}
	if sm.fds, err = s.d.OpenFDs(); err != nil {
		return err
	}
	out, err := s.d.API(http.MethodGet, "/api/debug/runtime", "")
	if err != nil {
		return err
	}
	var rt debugRuntime
	if err := json.Unmarshal([]byte(out), &rt); err != nil {
		return fmt.Errorf("GET /api/debug/runtime: %w: %s", err, out)
	}
	sm.goroutines, sm.heapLive, sm.goTotal = rt.Goroutines, rt.HeapLiveBytes, rt.GoTotalBytes
	sm.load = s.load.cut()
	s.samples = append(s.samples, sm)
	fmt.Printf("%-11s %6s  RSS %6.1f MB  heap live %5.1f MB  goroutines %4d  threads %3d  fds %4d  requests %6d (%d failed)\n",
		label, sm.elapsed.Round(time.Second), mb(uint64(sm.rssKB)*1024), mb(sm.heapLive), sm.goroutines, sm.threads, sm.fds,
		sm.load.Requests, sm.load.Failed())
	for _, f := range sm.load.Failures {
		fmt.Printf("    request failed: %s\n", f)
	}
	return nil
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

// metric is one number the soak watches for growth. It grows without
// bound when its mean over the last third of the samples taken during the
// deploys is above the first third's by more than both tolerances: a
// relative one (noise scales with size) and an absolute floor (a few
// goroutines or megabytes either way are not a trend).
type metric struct {
	name   string
	unit   string
	of     func(sample) float64
	relTol float64
	absTol float64
	// backToBefore: after the settle period it must be within absTol of
	// the reading before the deploys (goroutines, descriptors and threads
	// come back; memory the runtime keeps need not).
	backToBefore bool
}

var metrics = []metric{
	{"RSS", "MB", func(s sample) float64 { return mb(uint64(s.rssKB) * 1024) }, 0.25, 10, false},
	{"heap live", "MB", func(s sample) float64 { return mb(s.heapLive) }, 0.25, 4, false},
	{"Go runtime total", "MB", func(s sample) float64 { return mb(s.goTotal) }, 0.25, 10, false},
	{"goroutines", "", func(s sample) float64 { return float64(s.goroutines) }, 0.10, 10, true},
	{"open fds", "", func(s sample) float64 { return float64(s.fds) }, 0.10, 10, true},
	{"threads", "", func(s sample) float64 { return float64(s.threads) }, 0.25, 4, false},
}

// trend is the verdict on one metric.
type trend struct {
	m                          metric
	before, first, last, after float64
	perHundred                 float64 // least-squares slope per 100 deploys
	// grows: the last third is above the first; notBack: after the settle
	// period it is not back to where it was before the deploys.
	grows, notBack bool
}

// ok: it does not grow, or it rises during the deploys but comes back
// after the settle period (held for a while, then released: bounded).
func (t trend) ok() bool {
	if t.m.backToBefore {
		return !t.notBack
	}
	return !t.grows
}

// verdict is the table's word for the trend.
func (t trend) verdict() string {
	switch {
	case t.notBack:
		return fmt.Sprintf("**NOT BACK** (after − before > %s)", num(t.m.absTol, t.m.unit))
	case t.grows && t.m.backToBefore:
		return "rises during the deploys, back after the settle"
	case t.grows:
		return fmt.Sprintf("**GROWS** (> +%.0f%% and > +%s)", t.m.relTol*100, num(t.m.absTol, t.m.unit))
	}
	return "flat"
}

// judge compares the last third of the samples taken during the deploys
// with the first third, and the reading after the settle period with the
// one before the deploys.
func judge(m metric, before sample, during []sample, after sample) trend {
	t := trend{m: m, before: m.of(before), after: m.of(after)}
	t.notBack = m.backToBefore && t.after-t.before > m.absTol
	if len(during) == 0 {
		t.first, t.last = t.before, t.after
		return t
	}
	k := max(1, len(during)/3)
	t.first, t.last = mean(m, during[:k]), mean(m, during[len(during)-k:])
	t.grows = t.last > t.first*(1+m.relTol) && t.last-t.first > m.absTol
	t.perHundred = slope(m, during) * 100
	return t
}

func mean(m metric, ss []sample) float64 {
	sum := 0.0
	for _, s := range ss {
		sum += m.of(s)
	}
	return sum / float64(len(ss))
}

// slope is the least-squares change of m per deploy.
func slope(m metric, ss []sample) float64 {
	if len(ss) < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for _, s := range ss {
		x, y := float64(s.deploys), m.of(s)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	n := float64(len(ss))
	den := n*sxx - sx*sx
	if den == 0 || math.IsNaN(den) {
		return 0
	}
	return (n*sxy - sx*sy) / den
}
