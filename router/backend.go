package router

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Backend is one upstream: a container's published address such as
// "127.0.0.1:32768", with a count of the requests currently proxied to it.
//
// A Backend is safe for concurrent use. The same *Backend value identifies
// the upstream in a Route; build a new one (NewBackend) for every container.
type Backend struct {
	addr string

	// inflight counts requests (and upgraded connections) that are being
	// proxied to this backend right now.
	inflight atomic.Int64
	// drainers counts Drain calls waiting on this backend. The hot path only
	// takes mu (to wake them) when a request brings inflight to zero while
	// drainers > 0, so requests never touch the mutex outside of a drain.
	drainers atomic.Int32

	mu   sync.Mutex
	idle chan struct{} // closed (and reset to nil) when inflight reaches 0; guarded by mu
}

// NewBackend returns a Backend for addr ("host:port", e.g. "127.0.0.1:32768").
func NewBackend(addr string) *Backend {
	return &Backend{addr: addr}
}

// Addr returns the backend's "host:port".
func (b *Backend) Addr() string { return b.addr }

// InFlight returns how many requests are being proxied to the backend now,
// counting upgraded (websocket) connections until they close.
func (b *Backend) InFlight() int64 { return b.inflight.Load() }

// acquire counts one more request in flight.
func (b *Backend) acquire() { b.inflight.Add(1) }

// release counts one request done and wakes drainers when none is left.
//
// Lost-wakeup freedom: Drain increments drainers before it loads inflight,
// and release decrements inflight before it loads drainers. Go's atomics are
// sequentially consistent, so if Drain's load saw a non-zero count, the
// release that later brings the count to zero necessarily sees drainers > 0
// and closes the channel Drain is waiting on.
func (b *Backend) release() {
	if b.inflight.Add(-1) == 0 && b.drainers.Load() > 0 {
		b.mu.Lock()
		if b.idle != nil {
			close(b.idle)
			b.idle = nil
		}
		b.mu.Unlock()
	}
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

		n := b.inflight.Load()
		if n <= 0 {
			return nil
		}
		select {
		case <-idle:
			// The count touched zero; loop to check it is still zero (a
			// request may have been counted and then retried elsewhere).
		case <-ctx.Done():
			n = b.inflight.Load()
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
