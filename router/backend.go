package router

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Backend is one upstream: a container's published address such as
// "127.0.0.1:32768", with a count of the requests currently proxied to it.
//
// A Backend is safe for concurrent use. The same *Backend value identifies
// the upstream in a Route; build a new one (NewBackend) for every container.
type Backend struct {
	addr string

	// started and finished count the requests (and upgraded connections)
	// proxied to this backend; their difference is the number in flight.
	// Two counters cost the request path what one in-flight counter did (one
	// atomic add to start, one to finish) and also give the total of
	// requests the idle timer and the autoscaler watch.
	started  atomic.Uint64
	finished atomic.Uint64
	// receiving counts the requests in flight whose body is still coming
	// from the client: they wait for their client, not for the app.
	receiving atomic.Int64
	// downUntil is when (Unix ns) a recent transport failure stops counting
	// against the backend; 0 if it never failed.
	downUntil atomic.Int64
	// drainers counts Drain calls waiting on this backend. The hot path only
	// takes mu (to wake them) when a request finishes while drainers > 0, so
	// requests never touch the mutex outside of a drain.
	drainers atomic.Int32

	mu   sync.Mutex
	idle chan struct{} // closed (and reset to nil) when a request finishes; guarded by mu
}

// NewBackend returns a Backend for addr ("host:port", e.g. "127.0.0.1:32768").
func NewBackend(addr string) *Backend {
	return &Backend{addr: addr}
}

// Addr returns the backend's "host:port".
func (b *Backend) Addr() string { return b.addr }

// InFlight returns how many requests are being proxied to the backend now,
// counting upgraded (websocket) connections until they close.
func (b *Backend) InFlight() int64 {
	// finished first: it never exceeds started, so the difference of a
	// later started and an earlier finished is never negative.
	f := b.finished.Load()
	return int64(b.started.Load() - f)
}

// Load returns how many requests in flight the app is working on: those
// whose body has fully arrived (or that have none), counting upgraded
// connections. A request still receiving its body waits only for its own
// client, so it is no load for the autoscaler and no activity for the idle
// timer.
func (b *Backend) Load() int64 {
	r := b.receiving.Load()
	return max(b.InFlight()-r, 0)
}

// Receiving returns how many requests in flight are still receiving their
// body from the client.
func (b *Backend) Receiving() int64 { return b.receiving.Load() }

// Requests returns how many requests were started on the backend so far.
func (b *Backend) Requests() uint64 { return b.started.Load() }

// acquire counts one more request in flight.
func (b *Backend) acquire() { b.started.Add(1) }

// release counts one request done and, while a Drain waits, wakes it to
// check the count again.
//
// Lost-wakeup freedom: Drain increments drainers, then installs its channel
// under mu, then loads the counts; release increments finished before it
// loads drainers. Go's atomics are sequentially consistent, so if Drain's
// load saw a request in flight, that request's release comes later, sees
// drainers > 0 and closes the channel Drain is waiting on (or a drainer's
// newer one, after Drain was already woken by the older).
func (b *Backend) release() {
	b.finished.Add(1)
	if b.drainers.Load() > 0 {
		b.mu.Lock()
		if b.idle != nil {
			close(b.idle)
			b.idle = nil
		}
		b.mu.Unlock()
	}
}

// markDown makes pickers avoid the backend for d: a request to it just
// failed before any response came back.
func (b *Backend) markDown(d time.Duration) {
	b.downUntil.Store(time.Now().Add(d).UnixNano())
}

// down reports whether the backend failed recently. *now caches the clock
// across the backends of one pick: 0 means not read yet. A backend that
// never failed costs one atomic load and no clock read.
func (b *Backend) down(now *int64) bool {
	until := b.downUntil.Load()
	if until == 0 {
		return false
	}
	if *now == 0 {
		*now = time.Now().UnixNano()
	}
	return *now < until
}

// Drain waits until the backend has no request in flight (including
// upgraded connections still open) or ctx ends. It does not stop new
// requests: call it after the backend was removed from the router (Set or
// Remove returned it), so no new request can pick it.
//
// On ctx end it returns an error wrapping ErrDrainIncomplete and ctx.Err()
// that says how many requests were still in flight.
//
// Do not put a backend back into a route while it is being drained: the
// router would send it new requests that the drain does not wait for.
func (b *Backend) Drain(ctx context.Context) error {
	b.drainers.Add(1)
	defer b.drainers.Add(-1)
	for {
		b.mu.Lock()
		if b.idle == nil {
			b.idle = make(chan struct{})
		}
		idle := b.idle
		b.mu.Unlock()

		n := b.InFlight()
		if n <= 0 {
			return nil
		}
		select {
		case <-idle:
			// A request finished; loop to check whether any is left.
		case <-ctx.Done():
			n = b.InFlight()
			if n <= 0 {
				return nil
			}
			return fmt.Errorf("%w: backend %s still has %d %s in flight: %w",
				ErrDrainIncomplete, b.addr, n, plural(n, "request", "requests"), ctx.Err())
		}
	}
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
