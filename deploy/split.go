package deploy

import (
	"context"
	"time"

	"github.com/plat-paas/plat/internal/latency"
)

// Group is one release's backends in a split: Release labels them (the
// router counts requests per release) and Addrs are the replicas' "host:port".
type Group struct {
	Release string
	Addrs   []string
}

// Split routes an app to one release (Canary nil) or splits its requests
// between two: Weight percent (0..100) of them go to Canary, the rest to
// Stable. Clients are sticky: the router gives each a bucket 0..99 in a
// cookie and sends it to the canary while its bucket < Weight, so growing
// weights move clients to the canary once and never back; lowering the
// weight or dropping Canary (an abort) moves them back.
//
// While Canary is set, both groups need at least one address, distinct
// releases and no address in both.
type Split struct {
	Stable Group
	Canary *Group
	Weight int
}

// ReleaseStats are the router's counters of one release of an app, summed
// since the release was first routed. Subtract two to judge an interval:
// the error rate of a step is ΔStatus5xx/ΔRequests (Status5xx includes the
// ProxyErrors) and its p99 is Latency.Sub(older).Quantile(0.99).
type ReleaseStats struct {
	Requests                                              uint64
	Status1xx, Status2xx, Status3xx, Status4xx, Status5xx uint64
	// NoStatus: requests that ended without a response (the client left).
	NoStatus uint64
	// ProxyErrors: requests the router answered 502/504 itself because
	// the release did not answer (refused, reset, timeout).
	ProxyErrors  uint64
	BytesWritten uint64
	InFlight     int64
	Latency      latency.Snapshot
}

// SplitSwitcher is the router as canary, rolling and in-place deploys need
// it. Each call is one atomic route change; backends whose address stays
// routed (in either group) keep their in-flight requests and counters, and
// drainOld waits (bounded by ctx) for the requests of those that left.
type SplitSwitcher interface {
	// SwitchSplit routes app as s says.
	SwitchSplit(app string, s Split) (drainOld func(context.Context) error, err error)
	// Hold routes app to no backend for a moment: requests wait (without
	// waking the app) until the next SwitchSplit or Switch gives it
	// backends, up to timeout (0: the router's default), then get a 503.
	Hold(app string, timeout time.Duration) (drainOld func(context.Context) error, err error)
	// ReleaseStats returns the counters of release while app's route has
	// it; false once it left (read them before the switch that drops it).
	ReleaseStats(app, release string) (ReleaseStats, bool)
}
