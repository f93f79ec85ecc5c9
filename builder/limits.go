package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Build limits (plat daemon --max-builds, --build-timeout).
const (
	DefaultMaxBuilds    = 2
	DefaultBuildTimeout = 30 * time.Minute
)

// ErrBuildTimeout is wrapped when a build ran longer than the build timeout.
var ErrBuildTimeout = errors.New("the build timed out")

// errBuildTimeout is the cause of the context of a build that timed out.
var errBuildTimeout = errors.New("build timeout")

// Option configures New.
type Option func(*Builder)

// WithMaxBuilds lets at most n builds run at once (n <= 0: the default);
// the others wait for a slot.
func WithMaxBuilds(n int) Option {
	return func(b *Builder) {
		if n <= 0 {
			n = DefaultMaxBuilds
		}
		b.slots = make(chan struct{}, n)
	}
}

// WithTimeout bounds each build (d <= 0: the default).
func WithTimeout(d time.Duration) Option {
	return func(b *Builder) {
		if d <= 0 {
			d = DefaultBuildTimeout
		}
		b.timeout = d
	}
}

// acquire waits for a build slot, saying so in out when all are taken, and
// returns the function that gives it back.
func (b *Builder) acquire(ctx context.Context, out io.Writer) (func(), error) {
	select {
	case b.slots <- struct{}{}:
		return func() { <-b.slots }, nil
	default:
	}
	fmt.Fprintf(out, "waiting for a build slot (%d builds running)\n", len(b.slots))
	start := time.Now()
	select {
	case b.slots <- struct{}{}:
		fmt.Fprintf(out, "got a build slot after %s\n", time.Since(start).Round(100*time.Millisecond))
		return func() { <-b.slots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("build: waiting for a build slot: %w", context.Cause(ctx))
	}
}
