package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"time"

	"github.com/plat-paas/plat/bench/load"
	"github.com/plat-paas/plat/bench/platd"
	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/engine"
)

// api calls the daemon's API and returns the body; an ndjson answer with
// an "error" line counts as a failure.
func (b *bench) api(method, path, body string) string { return must(b.API(method, path, body)) }

func (b *bench) appStatus(app string) string {
	var a struct {
		Status string `json:"status"`
	}
	must("", json.Unmarshal([]byte(b.api(http.MethodGet, "/api/apps/"+app, "")), &a))
	return a.Status
}

// lastEvent returns the newest event message of app with the given kind.
func (b *bench) lastEvent(app, kind string) string {
	var evs []struct{ Kind, Message string }
	must("", json.Unmarshal([]byte(b.api(http.MethodGet, "/api/apps/"+app+"/events", "")), &evs))
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Kind == kind {
			return evs[i].Message
		}
	}
	return ""
}

// coldStart measures sleeping → first byte through plat, side by side with
// the same image's container started and polled directly through the
// Engine API (what the wake itself cannot avoid), n rounds interleaved.
func (b *bench) coldStart(n int) {
	const app = "cold"
	b.newApp(app)
	b.push(app)
	b.api(http.MethodPost, "/api/apps/"+app+"/scale", `{"min":0,"idle":"1s","cold_after":"0"}`)

	ctx := context.Background()
	eng, err := engine.NewDocker(ctx)
	must("", err)
	var image string
	var rel []struct {
		ImageID string `json:"image_id"`
	}
	must("", json.Unmarshal([]byte(b.api(http.MethodGet, "/api/apps/"+app+"/releases", "")), &rel))
	image = rel[len(rel)-1].ImageID
	direct, err := eng.Run(ctx, engine.ContainerSpec{
		// The same network and limits as plat's own containers, so the two
		// starts cost the engine the same.
		Name: b.Instance + "-direct", Image: image, Env: []string{"PORT=5000"}, Port: deploy.DefaultPort,
		Network: deploy.NetworkName(b.Instance, app), MemoryBytes: deploy.DefaultMemoryBytes, NanoCPUs: deploy.DefaultNanoCPUs,
		Labels: map[string]string{engine.LabelInstance: b.Instance},
	})
	must("", err)
	must("", eng.Stop(ctx, direct.ID, 10*time.Second))

	fmt.Printf("\n## cold start: sleeping app → first byte (%d rounds, interleaved)\n", n)
	var viaPlat, viaEngine, containerTime, overhead []time.Duration
	for i := range n {
		// Directly: start the stopped container and poll it until it answers.
		t0 := time.Now()
		must("", eng.Start(ctx, direct.ID))
		info, err := eng.Inspect(ctx, direct.ID)
		must("", err)
		for {
			if code, _, err := getURL("http://" + info.HostAddr + "/"); err == nil && code == http.StatusOK {
				break
			}
			time.Sleep(time.Millisecond)
		}
		d := time.Since(t0)
		must("", eng.Stop(ctx, direct.ID, 10*time.Second))

		// Through plat: wait until the app sleeps (its containers stopped,
		// the "sleeping" event is written last), then one request.
		for b.eventCount(app, "sleeping") <= i {
			time.Sleep(100 * time.Millisecond)
		}
		t1 := time.Now()
		code, _, err := b.Get(app, "/")
		p := time.Since(t1)
		if err != nil || code != http.StatusOK {
			fatalf("request to the sleeping app: %d %v", code, err)
		}
		// The daemon's own account of the wake: the engine's start and
		// the app's readiness after it; the rest of p is plat's.
		woke := b.lastEvent(app, "woke")
		m := wokeRE.FindStringSubmatch(woke)
		if m == nil {
			fatalf("cannot read the woke event %q", woke)
		}
		start, ready := must(time.ParseDuration(m[1])), must(time.ParseDuration(m[2]))
		viaEngine, viaPlat = append(viaEngine, d), append(viaPlat, p)
		containerTime, overhead = append(containerTime, start+ready), append(overhead, p-start-ready)
		fmt.Printf("round %d: direct start+ready %-8s | through plat %-8s = engine start %-8s + app ready %-7s + plat %s\n",
			i+1, round(d), round(p), round(start), ready.Round(100*time.Microsecond), round(p-start-ready))
	}
	_ = eng.Remove(ctx, direct.ID)
	fmt.Printf("median: direct start+ready %s; through plat %s, of which container start+ready %s and plat's overhead %s\n",
		median(viaEngine), median(viaPlat), median(containerTime), median(overhead))
}

// wokeRE reads the daemon's "woke" event: "... (engine start 968ms, app ready 12ms later)".
var wokeRE = regexp.MustCompile(`engine start ([0-9.]+[µmn]?s), app ready ([0-9.]+[µmn]?s) later`)

func (b *bench) eventCount(app, kind string) int {
	var evs []struct{ Kind string }
	must("", json.Unmarshal([]byte(b.api(http.MethodGet, "/api/apps/"+app+"/events", "")), &evs))
	n := 0
	for _, e := range evs {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// replicaThroughput loads one app with 1 and with 3 replicas, alternating.
func (b *bench) replicaThroughput(rounds int, loadFor time.Duration) {
	const app = "tput"
	b.newApp(app)
	b.push(app)
	fmt.Printf("\n## throughput with 1 vs 3 replicas (%d rounds of %s each, 64 keep-alive clients)\n", rounds, loadFor)
	rps := map[int][]float64{}
	p99 := map[int][]time.Duration{}
	for range rounds {
		for _, n := range []int{1, 3} {
			b.api(http.MethodPost, "/api/apps/"+app+"/scale", fmt.Sprintf(`{"replicas":%d}`, n))
			ctx, cancel := context.WithTimeout(context.Background(), loadFor)
			res := load.Run(ctx, load.Options{Target: b.HTTPAddr, Host: app + ".localhost", KeepAlive: true})
			cancel()
			if res.Failed() > 0 {
				fatalf("%d replicas: %s", n, res)
			}
			fmt.Printf("%d %s: %s\n", n, map[bool]string{true: "replica ", false: "replicas"}[n == 1], res)
			rps[n] = append(rps[n], res.RPS())
			p99[n] = append(p99[n], res.P99)
		}
	}
	r1, r3 := medianFloat(rps[1]), medianFloat(rps[3])
	fmt.Printf("median: 1 replica %.0f req/s (p99 %s), 3 replicas %.0f req/s (p99 %s): %.2fx\n",
		r1, median(p99[1]), r3, median(p99[3]), r3/r1)
}

func getURL(url string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	return platd.Do(req)
}

func medianFloat(fs []float64) float64 {
	s := slices.Clone(fs)
	slices.Sort(s)
	return s[len(s)/2]
}
