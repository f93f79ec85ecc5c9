package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plat-paas/plat/builder"
	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

// DefaultReleaseTimeout bounds a release command (as on Heroku): past it
// the command is stopped and the release fails.
const DefaultReleaseTimeout = time.Hour

// ErrNotDeployed: a one-off command or a restart of an app without a release.
var ErrNotDeployed = errors.New("not deployed")

// releaseLabel is the plat.run label of the release phase's container; a
// `plat run` container has its number.
const releaseLabel = "release"

// oneOffs runs an app's one-off containers: `plat run` and the release
// command.
type oneOffs struct {
	*containers
	runs runsInUse
}

// ResolveRun is oneOffs.ResolveRun.
func (d *Deployer) ResolveRun(ctx context.Context, appName string, version int) (store.Release, error) {
	return d.oneOffs.ResolveRun(ctx, appName, version)
}

// RunOnce is oneOffs.RunOnce.
func (d *Deployer) RunOnce(ctx context.Context, req RunRequest) (int, error) {
	return d.oneOffs.RunOnce(ctx, req)
}

// OneOffs is oneOffs.OneOffs.
func (d *Deployer) OneOffs(ctx context.Context, app string) []Replica {
	return d.oneOffs.OneOffs(ctx, app)
}

// isolation is what every container of app's release rel runs with, the
// replicas and one-off containers alike: its config, limits and network.
func (sp *specs) isolation(app string, rel store.Release) engine.ContainerSpec {
	res := sp.effectiveResources(rel.Resources)
	return engine.ContainerSpec{
		Image:         rel.ImageID,
		Env:           containerEnv(rel.Env, sp.cfg.Port),
		MemoryBytes:   res.MemoryBytes,
		NanoCPUs:      res.NanoCPUs,
		ReadOnly:      res.ReadOnly,
		Network:       NetworkName(sp.cfg.Instance, app),
		NetworkLabels: map[string]string{engine.LabelInstance: sp.cfg.Instance, engine.LabelApp: app},
	}
}

// oneOffSpec is the spec of a one-off container of rel labelled run.
func (o *oneOffs) oneOffSpec(app string, rel store.Release, run string, argv []string) engine.ContainerSpec {
	spec := o.isolation(app, rel)
	spec.Name = fmt.Sprintf("%s-%s-v%d.%s", o.cfg.Instance, app, rel.Version, run)
	if run != releaseLabel {
		spec.Name = fmt.Sprintf("%s-%s-run.%s", o.cfg.Instance, app, run)
	}
	spec.Cmd = argv
	spec.Labels = map[string]string{
		engine.LabelManaged:  "true",
		engine.LabelRole:     engine.RoleRun,
		engine.LabelInstance: o.cfg.Instance,
		engine.LabelApp:      app,
		engine.LabelRelease:  strconv.Itoa(rel.Version),
		engine.LabelRun:      run,
	}
	return spec
}

// runsInUse hands out the numbers of `plat run` containers per app: the
// smallest free one, so `plat ps` shows run.1, run.2...
type runsInUse struct {
	mu   sync.Mutex
	apps map[string]map[int]bool
}

func (r *runsInUse) take(app string) (n int, done func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.apps == nil {
		r.apps = map[string]map[int]bool{}
	}
	if r.apps[app] == nil {
		r.apps[app] = map[int]bool{}
	}
	for n = 1; r.apps[app][n]; n++ {
	}
	r.apps[app][n] = true
	return n, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.apps[app], n)
	}
}

// RunRequest is one `plat run`.
type RunRequest struct {
	App string
	// Release is the version whose image and config run; 0 means the
	// active release.
	Release int
	// Command is run as it is: no shell parses it again (use sh -c in an
	// image with a shell for pipes and variables).
	Command []string
	engine.OneOff
}

// ResolveRun checks a run request and returns the release it runs: an
// error wrapping ErrNotDeployed or ErrNoRelease says what to do instead.
func (o *oneOffs) ResolveRun(ctx context.Context, appName string, version int) (store.Release, error) {
	app, err := o.store.GetApp(appName)
	if err != nil {
		return store.Release{}, fmt.Errorf("app %s: %w", appName, err)
	}
	if app.Active == 0 {
		return store.Release{}, fmt.Errorf("%w: %s has never been deployed, so there is no image to run; push it first (git push platform main)", ErrNotDeployed, appName)
	}
	if version == 0 {
		version = app.Active
	}
	rel, err := o.store.GetRelease(appName, version)
	if errors.Is(err, store.ErrNotFound) {
		return rel, fmt.Errorf("%w: %s has no release v%d; see `plat releases %s`", ErrNoRelease, appName, version, appName)
	}
	if err != nil {
		return rel, err
	}
	if rel.ImageID == "" {
		return rel, fmt.Errorf("%w: v%d of %s was never built (%s); pick a release that went live", ErrNoRelease, version, appName, rel.Reason)
	}
	if ok, err := o.engine.ImageExists(ctx, rel.ImageID); err != nil {
		return rel, fmt.Errorf("check image of v%d: %w", version, err)
	} else if !ok {
		return rel, fmt.Errorf("%w: the image of v%d was removed (plat keeps the images of the last %d releases); pick a newer release", ErrNoRelease, version, o.cfg.Retain)
	}
	return rel, nil
}

// RunOnce runs req.Command in a one-off container of the app's release:
// its image and config, the replicas' limits, network and hardening, no
// port, no traffic. It is listed by OneOffs while it runs and removed when
// it ends; ending ctx stops it. It returns the command's exit code.
func (o *oneOffs) RunOnce(ctx context.Context, req RunRequest) (int, error) {
	if len(req.Command) == 0 {
		return -1, fmt.Errorf("%w: give the command to run after --, e.g. plat run %s -- ./migrate status", ErrBadCommand, req.App)
	}
	rel, err := o.ResolveRun(ctx, req.App, req.Release)
	if err != nil {
		return -1, err
	}
	n, done := o.runs.take(req.App)
	defer done()
	spec := o.oneOffSpec(req.App, rel, strconv.Itoa(n), req.Command)
	o.log.Info("one-off command", "app", req.App, "release", rel.Version, "run", n, "argv0", req.Command[0])
	started := time.Now()
	code, err := o.engine.RunOnce(ctx, spec, req.OneOff)
	if errors.Is(err, engine.ErrNameInUse) {
		// A leftover of a daemon that died while it ran.
		o.removeRunByName(ctx, req.App, spec.Name)
		code, err = o.engine.RunOnce(ctx, spec, req.OneOff)
	}
	if err != nil {
		return code, fmt.Errorf("run.%d: %w", n, err)
	}
	o.log.Info("one-off command ended", "app", req.App, "run", n, "exit", code, "took", roundDuration(time.Since(started)))
	return code, nil
}

func (o *oneOffs) removeRunByName(ctx context.Context, app, name string) {
	cs, err := o.engine.List(ctx, map[string]string{engine.LabelRole: engine.RoleRun, engine.LabelInstance: o.cfg.Instance, engine.LabelApp: app})
	if err != nil {
		return
	}
	for _, c := range cs {
		if c.Name == name {
			o.remove(c.ID)
		}
	}
}

// OneOffs lists app's running one-off containers: `plat run` ones as
// run.N and a release phase as release.
func (o *oneOffs) OneOffs(ctx context.Context, app string) []Replica {
	cs, err := o.engine.List(ctx, map[string]string{engine.LabelRole: engine.RoleRun, engine.LabelInstance: o.cfg.Instance, engine.LabelApp: app})
	if err != nil {
		o.log.Warn("list one-off containers", "app", app, "err", err)
		return nil
	}
	var out []Replica
	for _, c := range cs {
		if !c.Running {
			continue
		}
		run := c.Labels[engine.LabelRun]
		label, idx := releaseLabel, 0
		if n, err := strconv.Atoi(run); err == nil {
			label, idx = "run."+run, n
		}
		v, _ := strconv.Atoi(c.Labels[engine.LabelRelease])
		out = append(out, Replica{Name: c.Name, Label: label, ID: c.ID, Index: idx, Release: v})
	}
	slices.SortFunc(out, func(a, b Replica) int { return a.Index - b.Index })
	return out
}

// releasePhase runs rel's release command, if its Procfile has one, in a
// one-off container of rel, its output streamed to out. It runs for pushes
// and config changes: the command (a migration, a cache warm-up) may
// depend on the code and on the config. It does not run for rollbacks
// (the command already ran for that code, a rollback must be quick, and
// migrations must not run again) nor for resource changes (same code,
// same config). A non-zero exit, the timeout or a cancel is an error: the
// deploy stops before any new replica starts.
func (o *oneOffs) releasePhase(ctx context.Context, app string, rel store.Release, out io.Writer) (ran bool, err error) {
	line := rel.Procfile[builder.ProcessRelease]
	if line == "" || (rel.Cause != store.CausePush && rel.Cause != store.CauseConfig) {
		return false, nil
	}
	step(out, "Running release command: %s", line)
	argv, err := o.command(ctx, rel.ImageID, line)
	if err != nil {
		return true, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, o.cfg.ReleaseTimeout, errReleaseTimeout)
	defer cancel()
	started := time.Now()
	w := &syncWriter{w: indent(out)}
	code, err := o.engine.RunOnce(ctx, o.oneOffSpec(app, rel, releaseLabel, argv), engine.OneOff{Stdout: w, Stderr: w})
	took := roundDuration(time.Since(started))
	switch {
	case err != nil && errors.Is(context.Cause(ctx), errReleaseTimeout):
		return true, fmt.Errorf("the release command did not finish within %s and was stopped", o.cfg.ReleaseTimeout)
	case err != nil:
		return true, fmt.Errorf("release command: %w", err)
	case code != 0:
		o.event(app, "release command", rel.Version, "%q failed with exit code %d after %s", line, code, took)
		return true, fmt.Errorf("the release command %q failed with exit code %d (its output is above); nothing was changed", line, code)
	}
	step(out, "Release command succeeded in %s", took)
	o.event(app, "release command", rel.Version, "%q succeeded in %s", line, took)
	return true, nil
}

var errReleaseTimeout = errors.New("release command timed out")

// webCommand is the argv of rel's web replicas: the Procfile's web line
// through command, or nil for the image's CMD.
func (sp *specs) webCommand(ctx context.Context, rel store.Release) ([]string, error) {
	line := rel.Procfile[builder.ProcessWeb]
	if strings.TrimSpace(line) == "" {
		return nil, nil
	}
	return sp.command(ctx, rel.ImageID, line)
}
