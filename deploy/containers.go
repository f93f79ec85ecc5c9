package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

// containers is the only code that starts, stops and removes an app's
// containers on the engine. It never touches the router (replicaSet does).
type containers struct {
	recorder
	*specs
	probe *http.Client
}

// specs is what an app's containers run with: their names and labels, the
// command, the config, limits and network.
type specs struct {
	engine engine.Engine
	cfg    Config
	shells shellCache
}

// startHealthy starts rel's container and waits until it is healthy, then
// turns on its restart policy. On failure the container is removed and its
// last output written to out.
func (ct *containers) startHealthy(ctx context.Context, app store.App, rel store.Release, index int, tm *timings, out io.Writer) (engine.ContainerInfo, error) {
	name := ct.containerName(app.Name, rel.Version, index)
	step(out, "Starting %s", name)
	started := time.Now()
	cmd, err := ct.webCommand(ctx, rel)
	if err != nil {
		return engine.ContainerInfo{}, err
	}
	spec := ct.isolation(app.Name, rel)
	spec.Name, spec.Port, spec.Cmd = name, ct.cfg.Port, cmd
	spec.Labels = map[string]string{
		engine.LabelManaged:  "true",
		engine.LabelRole:     engine.RoleApp,
		engine.LabelInstance: ct.cfg.Instance,
		engine.LabelApp:      app.Name,
		engine.LabelRelease:  strconv.Itoa(rel.Version),
		engine.LabelReplica:  strconv.Itoa(index),
		engine.LabelGitSHA:   rel.GitSHA,
	}
	if token, ok := ctx.Value(restartKey{}).(string); ok {
		spec.Labels[engine.LabelRestart] = token
	}
	c, err := ct.engine.Run(ctx, spec)
	if errors.Is(err, engine.ErrNameInUse) {
		// A container of this name can only be a leftover of a killed
		// daemon; looking for one only then keeps the usual path short.
		ct.removeByName(ctx, app.Name, name)
		c, err = ct.engine.Run(ctx, spec)
	}
	if err != nil {
		return c, fmt.Errorf("start container: %w", err)
	}
	if index == 1 {
		if err := ct.store.UpdateRelease(app.Name, rel.Version, func(r *store.Release) error {
			r.ContainerID = c.ID
			return nil
		}); err != nil {
			ct.remove(c.ID)
			return c, fmt.Errorf("record container: %w", err)
		}
	}
	tm.mark("start")
	hc := withHealthDefaults(app.Health)
	step(out, "Waiting for %s to answer GET %s on port %d (deadline %s)", name, hc.Path, ct.cfg.Port, hc.Deadline)
	checker := healthChecker{
		check: hc,
		probe: httpProbe(ct.probe, c.HostAddr, hc.Path),
		alive: func(ctx context.Context) error { return ct.alive(ctx, c.ID) },
	}
	if err := checker.wait(ctx); err != nil {
		logs := ct.lastLogs(c.ID)
		ct.remove(c.ID)
		if logs != "" {
			step(out, "Last output of %s:", name)
			io.WriteString(indent(out), logs)
		}
		return c, fmt.Errorf("health check failed: %w", err)
	}
	step(out, "Healthy after %s", time.Since(started).Round(time.Millisecond))
	ct.event(app.Name, "healthy", rel.Version, "%s answered on %s", name, c.HostAddr)
	if err := ct.engine.SetRestart(ctx, c.ID); err != nil {
		ct.remove(c.ID)
		return c, fmt.Errorf("set restart policy: %w", err)
	}
	tm.mark("health")
	return c, nil
}

// alive returns an error wrapping errExited when the container stopped.
func (ct *containers) alive(ctx context.Context, id string) error {
	info, err := ct.engine.Inspect(ctx, id)
	if err != nil {
		return fmt.Errorf("inspect container: %w", err)
	}
	if !info.Running || info.Restarts > 0 {
		return fmt.Errorf("%w with code %d", errExited, info.ExitCode)
	}
	return nil
}

func (ct *containers) lastLogs(id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var buf bytes.Buffer
	if err := ct.engine.Logs(ctx, id, crashLogLines, false, &buf); err != nil {
		return ""
	}
	return buf.String()
}

// remove force-removes a container, logging instead of failing: it runs on
// paths that already report another error.
func (ct *containers) remove(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ct.engine.Remove(ctx, id); err != nil && !errors.Is(err, engine.ErrNotFound) {
		ct.log.Warn("remove container", "id", shortID(id), "err", err)
	}
}

func (ct *containers) removeByName(ctx context.Context, app, name string) {
	cs, err := ct.engine.List(ctx, ct.labels(engine.LabelApp, app))
	if err != nil {
		return
	}
	for _, c := range cs {
		if c.Name == name {
			ct.remove(c.ID)
		}
	}
}

// stopOldReleases stops and removes every container of app that is not of
// release rel (the one that just went live) nor in keep.
func (ct *containers) stopOldReleases(ctx context.Context, app string, rel store.Release, keep ...string) {
	cs, err := ct.engine.List(ctx, ct.labels(engine.LabelApp, app))
	if err != nil {
		ct.log.Warn("list containers", "app", app, "err", err)
		return
	}
	kept := map[string]bool{}
	for _, c := range cs {
		if ofRelease(c.Labels, rel) || slices.Contains(keep, c.ID) {
			kept[c.ID] = true
		}
	}
	ct.stopContainers(ctx, app, cs, kept)
}

// stopOthers stops and removes every container of app not in keep.
func (ct *containers) stopOthers(ctx context.Context, app string, keep map[string]bool) {
	cs, err := ct.engine.List(ctx, ct.labels(engine.LabelApp, app))
	if err != nil {
		ct.log.Warn("list containers", "app", app, "err", err)
		return
	}
	ct.stopContainers(ctx, app, cs, keep)
}

func (ct *containers) stopContainers(ctx context.Context, app string, cs []engine.ContainerInfo, keep map[string]bool) {
	for _, c := range cs {
		if keep[c.ID] {
			continue
		}
		if c.Running {
			ct.stopPaused(ctx, app, c)
			ct.remove(c.ID)
		} else {
			ct.remove(c.ID)
		}
	}
}

func (sp *specs) containerName(app string, version, replica int) string {
	return fmt.Sprintf("%s-%s-v%d.%d", sp.cfg.Instance, app, version, replica)
}

func replicaNames(reps []Replica) string {
	names := make([]string, len(reps))
	for i, r := range reps {
		names[i] = r.Name
	}
	return strings.Join(names, ", ")
}

// labels selects this daemon's app containers, plus the given key/value pairs.
func (sp *specs) labels(kv ...string) map[string]string {
	m := map[string]string{engine.LabelRole: engine.RoleApp, engine.LabelInstance: sp.cfg.Instance}
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

// restart starts a stopped replica again (or unpauses a paused one) and
// waits until it answers. The probes come close together: a request is
// waiting.
func (ct *containers) restart(ctx context.Context, app store.App, rel store.Release, idx int, c engine.ContainerInfo) (r Replica, startTook, readyTook time.Duration, err error) {
	t0 := time.Now()
	switch {
	case c.Paused:
		// A warm replica: thawed, not started.
		if err := ct.engine.Unpause(ctx, c.ID); err != nil {
			// Thawed already (by hand)? Then it serves as it is.
			info, ierr := ct.engine.Inspect(ctx, c.ID)
			if ierr != nil || !info.Running || info.Paused {
				return Replica{}, 0, 0, fmt.Errorf("unpause %s: %w", c.Name, err)
			}
			c = info
		}
	case !c.Running:
		if err := ct.engine.Start(ctx, c.ID); err != nil {
			return Replica{}, 0, 0, fmt.Errorf("start %s: %w", c.Name, err)
		}
	}
	info := c
	if c.Paused && c.HostAddr != "" {
		// A paused container keeps its published port: no inspect needed.
		info.Paused, info.State = false, "running"
	} else if info, err = ct.engine.Inspect(ctx, c.ID); err != nil {
		return Replica{}, 0, 0, fmt.Errorf("inspect %s: %w", c.Name, err)
	}
	r = ct.replica(app.Name, rel.Version, idx, info)
	if info.HostAddr == "" {
		return r, 0, 0, fmt.Errorf("%s is not running (state %s)", c.Name, info.State)
	}
	t1 := time.Now()
	hc := withHealthDefaults(app.Health)
	checker := healthChecker{
		check:      hc,
		probe:      httpProbe(ct.probe, info.HostAddr, hc.Path),
		alive:      func(ctx context.Context) error { return ct.alive(ctx, c.ID) },
		pause:      func(int) time.Duration { return wakeProbePause },
		aliveEvery: wakeAliveEvery,
	}
	if err := checker.wait(ctx); err != nil {
		return r, 0, 0, fmt.Errorf("%s: health check failed: %w", r.Name, err)
	}
	return r, t1.Sub(t0), time.Since(t1), nil
}

// stopKeep stops a container and keeps it for a wake.
func (ct *containers) stopKeep(ctx context.Context, app, id string) {
	if err := ct.engine.Stop(ctx, id, ct.cfg.StopTimeout); err != nil && !errors.Is(err, engine.ErrNotFound) {
		ct.log.Warn("stop container", "app", app, "id", shortID(id), "err", err)
	}
}

// stopAndRemove stops a container gracefully, then removes it.
func (ct *containers) stopAndRemove(ctx context.Context, app, id string) {
	if err := ct.engine.Stop(ctx, id, ct.cfg.StopTimeout); err != nil && !errors.Is(err, engine.ErrNotFound) {
		ct.log.Warn("stop container", "app", app, "id", shortID(id), "err", err)
	}
	ct.remove(id)
}
