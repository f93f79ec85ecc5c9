package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// warm measures the warm stage side by side in one daemon (its --standby
// on): rollback to the paused standby vs to a release without one, and
// the first request(s) to a warm-sleeping, a cold-sleeping and a running
// app, 1 and 20 at once; then the memory a paused app keeps.
func (b *bench) warm(rounds int) {
	b.warmRollback(rounds)
	b.firstRequests(rounds)
	b.warmMemory()
}

// appInfo reads the fields of GET /api/apps/{app} the warm bench needs.
func (b *bench) appInfo(app string) (status, sleep string, standby int) {
	var a struct {
		Status  string `json:"status"`
		Sleep   string `json:"sleep"`
		Standby *struct {
			Release int `json:"release"`
		} `json:"standby"`
	}
	must("", json.Unmarshal([]byte(b.api(http.MethodGet, "/api/apps/"+app, "")), &a))
	if a.Standby != nil {
		standby = a.Standby.Release
	}
	return a.Status, a.Sleep, standby
}

// warmRollback alternates a rollback to the standby (the previous release,
// paused) with one to an older release (new containers), timing each from
// the command's start until the router serves the old version.
func (b *bench) warmRollback(rounds int) {
	const app = "rb"
	b.newApp(app)
	bodies := map[int]string{} // v1..v3: the releases to roll back to without a standby
	for v := 1; v <= 3; v++ {
		b.push(app)
		_, body, err := b.Get(app, "/")
		must("", err)
		bodies[v] = body
	}
	fmt.Printf("\n## rollback to serving: from the paused standby vs starting containers (%d rounds, interleaved)\n", rounds)
	var with, without []time.Duration
	for range rounds {
		for _, fromStandby := range []bool{true, false} {
			_, prev, _ := b.Get(app, "/")
			args := []string{"rollback", app}
			if _, _, sb := b.appInfo(app); !fromStandby || sb == 0 {
				if fromStandby {
					fatalf("no standby before a rollback")
				}
				for v := 1; v <= 3; v++ {
					if bodies[v] != prev {
						args = append(args, fmt.Sprintf("v%d", v))
						break
					}
				}
			}
			start := time.Now()
			served := b.watchServing(app, func(body string) bool { return body != prev })
			out, err := b.CLI(args...)
			must(out, err)
			took := time.Since(start)
			serving := <-served
			if fromStandby != strings.Contains(out, "paused standby") {
				fatalf("rollback %v: standby used = %v:\n%s", args, !fromStandby, out)
			}
			kind := "from standby"
			if fromStandby {
				with = append(with, serving)
			} else {
				kind = "new containers"
				without = append(without, serving)
			}
			fmt.Printf("rollback %-14s: old version serving after %-8s command returned after %s\n", kind, round(serving), round(took))
		}
	}
	fmt.Printf("median rollback to serving: from the standby %s, starting containers %s\n", medianMicro(with), medianMicro(without))
}

// firstRequests times the first request(s) to an app asleep warm, asleep
// cold and running: n at once on new connections, the time until the last
// one answered.
func (b *bench) firstRequests(rounds int) {
	apps := []struct{ name, scale string }{
		{"warm", `{"min":0,"idle":"1s","cold_after":"1h"}`},
		{"cold", `{"min":0,"idle":"1s","cold_after":"0"}`},
		{"running", `{"replicas":1}`},
	}
	for _, a := range apps {
		b.newApp(a.name)
		b.push(a.name)
		b.api(http.MethodPost, "/api/apps/"+a.name+"/scale", a.scale)
	}
	fmt.Printf("\n## first request(s) to a sleeping app: warm (paused) vs cold (stopped) vs running (%d rounds, interleaved)\n", rounds)
	res := map[string][]time.Duration{}
	slept := map[string]int{} // "sleeping" events seen before the last burst's wake
	for i := range rounds {
		for _, n := range []int{1, 20} {
			var line []string
			for _, a := range apps {
				if a.name != "running" {
					// Asleep again: the "sleeping" event is written once
					// its containers are paused (stopped).
					for b.eventCount(a.name, "sleeping") <= slept[a.name] {
						time.Sleep(50 * time.Millisecond)
					}
					if _, sleep, _ := b.appInfo(a.name); sleep != a.name {
						fatalf("%s sleeps %q", a.name, sleep)
					}
				}
				d := b.burst(a.name, n)
				slept[a.name] = b.eventCount(a.name, "sleeping")
				key := fmt.Sprintf("%s/%d", a.name, n)
				res[key] = append(res[key], d)
				line = append(line, fmt.Sprintf("%s %-8s", a.name, d.Round(100*time.Microsecond)))
			}
			fmt.Printf("round %d, %2d at once: %s\n", i+1, n, strings.Join(line, " "))
		}
	}
	for _, n := range []int{1, 20} {
		w, c, r := medianMicro(res[fmt.Sprintf("warm/%d", n)]), medianMicro(res[fmt.Sprintf("cold/%d", n)]), medianMicro(res[fmt.Sprintf("running/%d", n)])
		fmt.Printf("median, %2d at once: warm %s, cold %s, running %s: a warm wake adds %s\n", n, w, c, r, w-r)
	}
}

// burst sends n requests to app at once, each on a new connection, and
// returns the time until the last answered 200.
func (b *bench) burst(app string, n int) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			code, _, err := b.Get(app, "/")
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("status %d", code)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	took := time.Since(start)
	for _, err := range errs {
		if err != nil {
			fatalf("first requests to %s: %v", app, err)
		}
	}
	return took
}

// warmMemory prints the memory the paused container of the warm app keeps
// (the engine's reading), beside the same app running.
func (b *bench) warmMemory() {
	for b.eventCount("warm", "sleeping") <= b.eventCount("warm", "woke") {
		time.Sleep(50 * time.Millisecond)
	}
	mem := func(app string) string {
		ids := b.Docker("ps", "-q", "--filter", "label=plat.instance="+b.Instance, "--filter", "label=plat.app="+app)
		if len(ids) == 0 {
			return "?"
		}
		out := b.Docker("stats", "--no-stream", "--format", "{{.MemUsage}}", ids[0])
		if len(out) == 0 {
			return "?"
		}
		return out[0]
	}
	_, sleep, _ := b.appInfo("warm")
	fmt.Printf("\n## memory kept\nwarm app (%s, paused): %s; the same app running: %s\n", sleep, mem("warm"), mem("running"))
}

func medianMicro(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(100 * time.Microsecond)
}
