package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

// Resource defaults and bounds.
const (
	// DefaultNanoCPUs caps each container at one CPU: a busy or hostile app
	// cannot take every core from the router, the control plane and the
	// other apps (on a 2-core host one core stays free), and an app that
	// needs more scales out or gets a bigger cap (resources:set --cpus).
	// A hard cap rather than CPU shares, whose weight only bites once the
	// host is already saturated and leaves the daemon's own share unset.
	DefaultNanoCPUs = 1_000_000_000
	// MinNanoCPUs is the engine's own lower bound (0.01 CPU).
	MinNanoCPUs = 10_000_000
	// MinMemoryBytes: below this, even a static binary is killed at start.
	MinMemoryBytes = 16 << 20
)

// ErrInvalidResources: the resource settings asked for are impossible.
var ErrInvalidResources = errors.New("invalid resources")

// ResourcesChange changes an app's resources; nil fields stay as they are.
type ResourcesChange struct {
	MemoryBytes *int64
	NanoCPUs    *int64
	ReadOnly    *bool
}

// Empty reports whether c changes nothing.
func (c ResourcesChange) Empty() bool {
	return c.MemoryBytes == nil && c.NanoCPUs == nil && c.ReadOnly == nil
}

// check validates c against what the engine's host has.
func (c ResourcesChange) check(capacity engine.Capacity) error {
	if c.Empty() {
		return fmt.Errorf("%w: nothing to change: give a memory limit, a CPU limit or read-only on/off", ErrInvalidResources)
	}
	if m := c.MemoryBytes; m != nil {
		switch {
		case *m < MinMemoryBytes:
			return fmt.Errorf("%w: memory %s is below the minimum of %s", ErrInvalidResources, FormatBytes(*m), FormatBytes(MinMemoryBytes))
		case capacity.MemoryBytes > 0 && *m > capacity.MemoryBytes:
			return fmt.Errorf("%w: memory %s is more than the host has (%s)", ErrInvalidResources, FormatBytes(*m), FormatBytes(capacity.MemoryBytes))
		}
	}
	if n := c.NanoCPUs; n != nil {
		switch {
		case *n < MinNanoCPUs:
			return fmt.Errorf("%w: cpus %s is below the minimum of %s", ErrInvalidResources, FormatCPUs(*n), FormatCPUs(MinNanoCPUs))
		case capacity.CPUs > 0 && *n > int64(capacity.CPUs)*1e9:
			return fmt.Errorf("%w: cpus %s is more than the host has (%d)", ErrInvalidResources, FormatCPUs(*n), capacity.CPUs)
		}
	}
	return nil
}

// apply returns r changed by c.
func (c ResourcesChange) apply(r store.Resources) store.Resources {
	if c.MemoryBytes != nil {
		r.MemoryBytes = *c.MemoryBytes
	}
	if c.NanoCPUs != nil {
		r.NanoCPUs = *c.NanoCPUs
	}
	if c.ReadOnly != nil {
		r.ReadOnly = *c.ReadOnly
	}
	return r
}

// effectiveResources fills in the defaults.
func (sp *specs) effectiveResources(r store.Resources) store.Resources {
	if r.MemoryBytes <= 0 {
		r.MemoryBytes = sp.cfg.MemoryBytes
	}
	if r.NanoCPUs <= 0 {
		r.NanoCPUs = DefaultNanoCPUs
	}
	return r
}

// EffectiveResources is app's resource settings with the defaults filled in.
func (d *Deployer) EffectiveResources(app store.App) store.Resources {
	return d.effectiveResources(app.Resources)
}

// DescribeResources says what the settings are, e.g. "memory 512 MiB, 1 CPU,
// read-only off".
func DescribeResources(r store.Resources) string {
	ro := "off"
	if r.ReadOnly {
		ro = "on"
	}
	cpus := "CPU"
	if r.NanoCPUs > 1e9 {
		cpus = "CPUs"
	}
	return fmt.Sprintf("memory %s, %s %s, read-only %s", FormatBytes(r.MemoryBytes), FormatCPUs(r.NanoCPUs), cpus, ro)
}

// FormatBytes writes n in the largest binary unit it is a whole multiple of
// (512 MiB, 1 GiB), or in bytes.
func FormatBytes(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + " " + u.name
		}
	}
	if n >= 1<<20 {
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}

// FormatCPUs writes nano-CPUs as a decimal number of CPUs: 0.5, 1, 1.25.
func FormatCPUs(n int64) string {
	s := strconv.FormatFloat(float64(n)/1e9, 'f', 3, 64)
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// capacityCache remembers the engine host's capacity: it does not change
// while the daemon runs.
type capacityCache struct {
	mu  sync.Mutex
	c   engine.Capacity
	got bool
}

func (d *Deployer) capacity(ctx context.Context) (engine.Capacity, error) {
	d.hostCap.mu.Lock()
	defer d.hostCap.mu.Unlock()
	if !d.hostCap.got {
		c, err := d.engine.Capacity(ctx)
		if err != nil {
			return c, err
		}
		d.hostCap.c, d.hostCap.got = c, true
	}
	return d.hostCap.c, nil
}

// CheckResources validates a change without applying it: an error wrapping
// ErrInvalidResources says what is wrong.
func (d *Deployer) CheckResources(ctx context.Context, change ResourcesChange) error {
	c, err := d.capacity(ctx)
	if err != nil {
		return err
	}
	return change.check(c)
}

// SetResources changes app's memory and CPU limits and its read-only root
// filesystem, as a new release (same image and config, new limits) with
// the app's strategy: the change is recorded, and a rollback to an earlier
// release brings that release's limits back. If the app was never deployed
// the settings are only saved, for the first push, and the returned release
// is zero; so it is when nothing changes.
func (d *Deployer) SetResources(ctx context.Context, appName string, change ResourcesChange, out io.Writer) (store.Release, error) {
	if err := d.CheckResources(ctx, change); err != nil {
		return store.Release{}, err
	}
	app, l, err := d.lockApp(ctx, appName, true, out)
	if err != nil {
		return store.Release{}, err
	}
	defer l.Release()
	ctx = l.Context()
	res := change.apply(app.Resources)
	if d.effectiveResources(res) == d.effectiveResources(app.Resources) && app.Active != 0 {
		step(out, "Resources of %s unchanged: %s", appName, DescribeResources(d.effectiveResources(res)))
		return store.Release{}, nil
	}
	if app.Active == 0 {
		err := d.store.UpdateApp(appName, func(a *store.App) error { a.Resources = res; return nil })
		step(out, "Resources saved (%s); they take effect with the first push", DescribeResources(d.effectiveResources(res)))
		return store.Release{}, err
	}
	return d.redeploy(ctx, l, app, releaseChange{
		cause: store.CauseResources, env: app.Env, resources: res,
		kind: "resources", reason: DescribeResources(d.effectiveResources(res)), reused: "image and config",
	}, out)
}
