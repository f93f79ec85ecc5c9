package daemon_test

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCanaryMeasure measures canary rollouts for BENCHMARKS.md (run it with
// bench/canary.sh): push → 100% with canary and with blue-green for the
// same app, the router switch of each step (from the Timings line), and the
// time from a bad canary's first 500 to its last (all traffic back on
// stable), each over a few rounds under a small load.
func TestCanaryMeasure(t *testing.T) {
	if os.Getenv("PLAT_CANARY_BENCH") == "" {
		t.Skip("a measurement, minutes long; run bench/canary.sh")
	}
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("PLAT_CANARY_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	stepTime := "2s"
	d := startDaemon(t)
	r := d.deployedApp("m", "v0")
	switches := regexp.MustCompile(`switch( \d)? ([0-9.]+[µm]?s)`)
	var bg, can, bad []time.Duration
	stepSwitch := map[string][]time.Duration{}
	version := 0
	next := func(mode string) {
		version++
		r.commit("r"+strconv.Itoa(version), mode)
	}
	for range rounds {
		d.mustPlat("strategy:set", "m", "blue-green")
		l := startCanaryLoad(t, d, "m")
		next("")
		began := time.Now()
		r.mustPush("main")
		bg = append(bg, time.Since(began))

		d.mustPlat("strategy:set", "m", "canary", "--steps", "10,50,100", "--step-time", stepTime, "--min-requests", "20")
		next("")
		began = time.Now()
		out := r.mustPush("main")
		can = append(can, time.Since(began))
		timings, _, _ := strings.Cut(out[strings.LastIndex(out, "Timings: "):], "\n")
		t.Logf("canary %s", timings)
		for _, m := range switches.FindAllStringSubmatch(timings, -1) {
			if dur, err := time.ParseDuration(strings.Replace(m[2], "µ", "u", 1)); err == nil {
				name := "activate"
				if m[1] != "" {
					name = "step" + strings.TrimSpace(m[1])
				}
				stepSwitch[name] = append(stepSwitch[name], dur)
			}
		}
		l.done(t)

		l = startCanaryLoad(t, d, "m")
		next("errors")
		if out, err := r.push("main"); err == nil {
			t.Fatalf("the bad canary went live:\n%s", out)
		}
		l.done(t)
		bad = append(bad, l.lastAppError.Sub(l.firstAppError))
	}
	median := func(ds []time.Duration) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	t.Logf("BENCH rounds %d, canary steps 10,50,100 every %s, 3 load clients + 1 cookie client", rounds, stepTime)
	t.Logf("BENCH push → 100%%: blue-green median %s %v; canary median %s %v", median(bg).Round(time.Millisecond), bg, median(can).Round(time.Millisecond), can)
	for _, k := range []string{"step1", "step2", "step3", "activate"} {
		t.Logf("BENCH router switch %s: median %s %v", k, median(stepSwitch[k]), stepSwitch[k])
	}
	t.Logf("BENCH bad canary, first 500 → last 500 (traffic back on stable): median %s %v", median(bad).Round(time.Millisecond), bad)
}
