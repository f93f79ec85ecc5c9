package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

// startHealthy starts rel's container and waits until it is healthy, then
// turns on its restart policy. On failure the container is removed and its
// last output written to out.
func (d *Deployer) startHealthy(ctx context.Context, app store.App, rel store.Release, index int, tm *timings, out io.Writer) (engine.ContainerInfo, error) {
	name := d.containerName(app.Name, rel.Version, index)
	step(out, "Starting %s", name)
	started := time.Now()
	cmd, err := d.webCommand(ctx, rel)
	if err != nil {
		return engine.ContainerInfo{}, err
	}
	spec := d.isolation(app.Name, rel)
	spec.Name, spec.Port, spec.Cmd = name, d.cfg.Port, cmd
	spec.Labels = map[string]string{
		engine.LabelManaged:  "true",
		engine.LabelRole:     engine.RoleApp,
		engine.LabelInstance: d.cfg.Instance,
		engine.LabelApp:      app.Name,
		engine.LabelRelease:  strconv.Itoa(rel.Version),
		engine.LabelReplica:  strconv.Itoa(index),
		engine.LabelGitSHA:   rel.GitSHA,
	}
	if token, ok := ctx.Value(restartKey{}).(string); ok {
		spec.Labels[engine.LabelRestart] = token
	}
	c, err := d.engine.Run(ctx, spec)
	if errors.Is(err, engine.ErrNameInUse) {
		// A container of this name can only be a leftover of a killed
		// daemon; looking for one only then keeps the usual path short.
		d.removeByName(ctx, app.Name, name)
		c, err = d.engine.Run(ctx, spec)
	}
	if err != nil {
		return c, fmt.Errorf("start container: %w", err)
	}
	if index == 1 {
		if err := d.store.UpdateRelease(app.Name, rel.Version, func(r *store.Release) error {
			r.ContainerID = c.ID
			return nil
		}); err != nil {
			d.remove(c.ID)
			return c, fmt.Errorf("record container: %w", err)
		}
	}
	tm.mark("start")
	hc := withHealthDefaults(app.Health)
	step(out, "Waiting for %s to answer GET %s on port %d (deadline %s)", name, hc.Path, d.cfg.Port, hc.Deadline)
	checker := healthChecker{
		check: hc,
		probe: httpProbe(d.probe, c.HostAddr, hc.Path),
		alive: func(ctx context.Context) error { return d.alive(ctx, c.ID) },
	}
	if err := checker.wait(ctx); err != nil {
		logs := d.lastLogs(c.ID)
		d.remove(c.ID)
		if logs != "" {
			step(out, "Last output of %s:", name)
			io.WriteString(indent(out), logs)
		}
		return c, fmt.Errorf("health check failed: %w", err)
	}
	step(out, "Healthy after %s", time.Since(started).Round(time.Millisecond))
	d.event(app.Name, "healthy", rel.Version, "%s answered on %s", name, c.HostAddr)
	if err := d.engine.SetRestart(ctx, c.ID); err != nil {
		d.remove(c.ID)
		return c, fmt.Errorf("set restart policy: %w", err)
	}
	tm.mark("health")
	return c, nil
}

// alive returns an error wrapping errExited when the container stopped.
func (d *Deployer) alive(ctx context.Context, id string) error {
	info, err := d.engine.Inspect(ctx, id)
	if err != nil {
		return fmt.Errorf("inspect container: %w", err)
	}
	if !info.Running || info.Restarts > 0 {
		return fmt.Errorf("%w with code %d", errExited, info.ExitCode)
	}
	return nil
}

func (d *Deployer) lastLogs(id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var buf bytes.Buffer
	if err := d.engine.Logs(ctx, id, crashLogLines, false, &buf); err != nil {
		return ""
	}
	return buf.String()
}

// remove force-removes a container, logging instead of failing: it runs on
// paths that already report another error.
func (d *Deployer) remove(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.engine.Remove(ctx, id); err != nil && !errors.Is(err, engine.ErrNotFound) {
		d.log.Warn("remove container", "id", shortID(id), "err", err)
	}
}

func (d *Deployer) removeByName(ctx context.Context, app, name string) {
	cs, err := d.engine.List(ctx, d.labels(engine.LabelApp, app))
	if err != nil {
		return
	}
	for _, c := range cs {
		if c.Name == name {
			d.remove(c.ID)
		}
	}
}

// stopOldReleases stops and removes every container of app that is not of
// release version (the one that just went live).
func (d *Deployer) stopOldReleases(ctx context.Context, app string, version int) {
	cs, err := d.engine.List(ctx, d.labels(engine.LabelApp, app))
	if err != nil {
		d.log.Warn("list containers", "app", app, "err", err)
		return
	}
	keep := map[string]bool{}
	for _, c := range cs {
		if c.Labels[engine.LabelRelease] == strconv.Itoa(version) {
			keep[c.ID] = true
		}
	}
	d.stopOthers(ctx, app, keep)
}

// stopOthers stops and removes every container of app not in keep.
func (d *Deployer) stopOthers(ctx context.Context, app string, keep map[string]bool) {
	cs, err := d.engine.List(ctx, d.labels(engine.LabelApp, app))
	if err != nil {
		d.log.Warn("list containers", "app", app, "err", err)
		return
	}
	d.stopContainers(ctx, app, cs, keep)
}

func (d *Deployer) stopContainers(ctx context.Context, app string, cs []engine.ContainerInfo, keep map[string]bool) {
	for _, c := range cs {
		if keep[c.ID] {
			continue
		}
		if c.Running {
			d.stopAndRemove(ctx, app, c.ID)
		} else {
			d.remove(c.ID)
		}
	}
}

func (d *Deployer) containerName(app string, version, replica int) string {
	return fmt.Sprintf("%s-%s-v%d.%d", d.cfg.Instance, app, version, replica)
}

func replicaNames(reps []Replica) string {
	names := make([]string, len(reps))
	for i, r := range reps {
		names[i] = r.Name
	}
	return strings.Join(names, ", ")
}

// labels selects this daemon's app containers, plus the given key/value pairs.
func (d *Deployer) labels(kv ...string) map[string]string {
	m := map[string]string{engine.LabelRole: engine.RoleApp, engine.LabelInstance: d.cfg.Instance}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func containerEnv(env map[string]string, port int) []string {
	out := make([]string, 0, len(env)+1)
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return append(out, "PORT="+strconv.Itoa(port))
}

// restart starts a stopped replica again and waits until it answers. The
// probes come close together: a request is waiting.
func (d *Deployer) restart(ctx context.Context, app store.App, rel store.Release, idx int, c engine.ContainerInfo) (r Replica, startTook, readyTook time.Duration, err error) {
	t0 := time.Now()
	if !c.Running {
		if err := d.engine.Start(ctx, c.ID); err != nil {
			return Replica{}, 0, 0, fmt.Errorf("start %s: %w", c.Name, err)
		}
	}
	info, err := d.engine.Inspect(ctx, c.ID)
	if err != nil {
		return Replica{}, 0, 0, fmt.Errorf("inspect %s: %w", c.Name, err)
	}
	r = d.replica(app.Name, rel.Version, idx, info)
	if info.HostAddr == "" {
		return r, 0, 0, fmt.Errorf("%s is not running (state %s)", c.Name, info.State)
	}
	t1 := time.Now()
	hc := withHealthDefaults(app.Health)
	checker := healthChecker{
		check:      hc,
		probe:      httpProbe(d.probe, info.HostAddr, hc.Path),
		alive:      func(ctx context.Context) error { return d.alive(ctx, c.ID) },
		pause:      func(int) time.Duration { return wakeProbePause },
		aliveEvery: wakeAliveEvery,
	}
	if err := checker.wait(ctx); err != nil {
		return r, 0, 0, fmt.Errorf("%s: health check failed: %w", r.Name, err)
	}
	return r, t1.Sub(t0), time.Since(t1), nil
}

// stopKeep stops a container and keeps it for a wake.
func (d *Deployer) stopKeep(ctx context.Context, app, id string) {
	if err := d.engine.Stop(ctx, id, d.cfg.StopTimeout); err != nil && !errors.Is(err, engine.ErrNotFound) {
		d.log.Warn("stop container", "app", app, "id", shortID(id), "err", err)
	}
}

// stopAndRemove stops a container gracefully, then removes it.
func (d *Deployer) stopAndRemove(ctx context.Context, app, id string) {
	if err := d.engine.Stop(ctx, id, d.cfg.StopTimeout); err != nil && !errors.Is(err, engine.ErrNotFound) {
		d.log.Warn("stop container", "app", app, "id", shortID(id), "err", err)
	}
	d.remove(id)
}
