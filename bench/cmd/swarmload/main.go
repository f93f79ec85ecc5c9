// Command swarmload sends requests to an app through a plat router for a
// while and prints what the clients saw (bench/swarm-rig.sh runs it inside
// a network namespace while a node dies). It exits 1 when a request failed.
//
//	swarmload -target 10.250.0.1:8080 -host rig.localhost -for 60s -c 8
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/plat-paas/plat/bench/load"
)

func main() {
	target := flag.String("target", "127.0.0.1:8080", "router address")
	host := flag.String("host", "", "Host header naming the app")
	runFor := flag.Duration("for", 30*time.Second, "how long to send requests")
	clients := flag.Int("c", 8, "concurrent keep-alive clients")
	timeout := flag.Duration("timeout", 10*time.Second, "per request")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *runFor)
	defer cancel()
	res := load.Run(ctx, load.Options{Target: *target, Host: *host, Concurrency: *clients, KeepAlive: true, Timeout: *timeout})
	fmt.Printf("%s\n", res)
	for _, f := range res.Failures {
		fmt.Printf("  failure: %s\n", f)
	}
	if res.Failed() > 0 {
		os.Exit(1)
	}
}
