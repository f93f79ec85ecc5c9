package deploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

// Replica is one container of an app's active release that the router
// sends traffic to.
type Replica struct {
	Name    string `json:"name"`  // container name, e.g. plat-myapp-v3.2
	Label   string `json:"label"` // e.g. web.2
	ID      string `json:"container_id"`
	Index   int    `json:"index"`
	Release int    `json:"release"`
	Addr    string `json:"addr"` // where the router reaches it
}

// routedReplicas remembers, per app, the replicas the router serves. It
// changes only under the app's deploy lock; mu guards the map for readers
// (the log hub, the API) that do not hold it.
type routedReplicas struct {
	mu   sync.Mutex
	apps map[string][]Replica
}

func (r *routedReplicas) get(app string) []Replica {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.apps[app])
}

func (r *routedReplicas) set(app string, reps []Replica) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.apps == nil {
		r.apps = map[string][]Replica{}
	}
	if len(reps) == 0 {
		delete(r.apps, app)
		return
	}
	r.apps[app] = slices.Clone(reps)
}

// replicaSet is the only code that moves an app's traffic: it starts
// replicas (through containers), points the router at them and drains the
// ones that leave.
type replicaSet struct {
	*containers
	switcher Switcher
	// onSwitch is told of every route change (the log hub follows the
	// replicas); see Deployer.OnSwitch.
	onSwitch func(app string, replicas []Replica)
	routed   routedReplicas
	// previews and staged own the preview hosts (preview.go, staged.go).
	previews previews
	staged   stagedSet
	// frozen are the replicas of warm-sleeping apps, for a wake without
	// a listing; whatever changes them otherwise forgets them.
	frozen frozenReplicas
}

// Replicas returns the replicas app's traffic goes to now, by index; none
// while it sleeps or before its first deploy.
func (rs *replicaSet) Replicas(app string) []Replica {
	return rs.routed.get(app)
}

// route points app's traffic at reps (sorted by index) and remembers them.
// Backends that stay are kept as they are; drainOld waits for the ones that
// left.
func (rs *replicaSet) route(app string, reps []Replica) (drainOld func(context.Context) error, err error) {
	slices.SortFunc(reps, func(a, b Replica) int { return cmp.Compare(a.Index, b.Index) })
	addrs := make([]string, len(reps))
	for i, r := range reps {
		addrs[i] = r.Addr
	}
	// The router counts requests per release label: give it the release
	// when the switcher takes one (all reps run one release here).
	if ss, ok := rs.switcher.(SplitSwitcher); ok && len(reps) > 0 {
		drainOld, err = ss.SwitchSplit(app, Split{Stable: Group{Release: ReleaseLabel(reps[0].Release), Addrs: addrs}})
	} else {
		drainOld, err = rs.switcher.Switch(app, addrs)
	}
	if err != nil {
		return nil, err
	}
	rs.routed.set(app, reps)
	if rs.onSwitch != nil {
		rs.onSwitch(app, slices.Clone(reps))
	}
	rs.syncLivePreviews(app, reps, 0)
	return drainOld, nil
}

// routeAsleep makes app's hosts wake it on the next request.
func (rs *replicaSet) routeAsleep(app string) (drainOld func(context.Context) error, err error) {
	drainOld, err = rs.switcher.Sleep(app)
	if err != nil {
		return nil, err
	}
	rs.routed.set(app, nil)
	if rs.onSwitch != nil {
		rs.onSwitch(app, nil)
	}
	if a, err := rs.store.GetApp(app); err == nil {
		rs.syncLivePreviews(app, nil, a.Active)
	}
	return drainOld, nil
}

// without returns reps minus the replica whose container is id.
func without(reps []Replica, id string) []Replica {
	return slices.DeleteFunc(slices.Clone(reps), func(r Replica) bool { return r.ID == id })
}

func replicaOf(reps []Replica, id string) (Replica, bool) {
	i := slices.IndexFunc(reps, func(r Replica) bool { return r.ID == id })
	if i < 0 {
		return Replica{}, false
	}
	return reps[i], true
}

// replica describes a container of rel as a Replica. It keeps the
// container's own name: a rollback that thawed a standby is served by an
// earlier release's containers (store.Release.ContainersOf).
func (ct *containers) replica(app string, rel int, index int, c engine.ContainerInfo) Replica {
	name := c.Name
	if name == "" {
		name = ct.containerName(app, rel, index)
	}
	return Replica{
		Name: name, Label: "web." + strconv.Itoa(index),
		ID: c.ID, Index: index, Release: rel, Addr: c.HostAddr,
	}
}

// replicaIndex reads a container's replica number; containers made before
// replicas existed have none and count as replica 1.
func replicaIndex(c engine.ContainerInfo) int {
	if n, err := strconv.Atoi(c.Labels[engine.LabelReplica]); err == nil && n > 0 {
		return n
	}
	return 1
}

// byReplica picks the containers of app's release rel from containers, by
// replica number: its own, and those of the release it reuses
// (rel.ContainersOf).
func byReplica(containers []engine.ContainerInfo, app string, rel store.Release) map[int]engine.ContainerInfo {
	out := map[int]engine.ContainerInfo{}
	for _, c := range containers {
		if c.Labels[engine.LabelApp] == app && ofRelease(c.Labels, rel) {
			out[replicaIndex(c)] = c
		}
	}
	return out
}

// ofRelease says whether a container's labels make it one of rel's.
func ofRelease(labels map[string]string, rel store.Release) bool {
	v := labels[engine.LabelRelease]
	return v == strconv.Itoa(rel.Version) || (rel.ContainersOf != 0 && v == strconv.Itoa(rel.ContainersOf))
}

// releaseContainers lists the containers of app's release by replica number.
func (ct *containers) releaseContainers(ctx context.Context, app string, release int) (map[int]engine.ContainerInfo, error) {
	rel, err := ct.store.GetRelease(app, release)
	if err != nil {
		return nil, fmt.Errorf("release v%d: %w", release, err)
	}
	cs, err := ct.engine.List(ctx, ct.labels(engine.LabelApp, app))
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	return byReplica(cs, app, rel), nil
}

// bringUp makes replica idx of rel answer from its container c: started
// again if it exists (found), created if not, healthy either way. created
// says which; startTook and readyTook split a restart's time between the
// engine and the app.
func (rs *replicaSet) bringUp(ctx context.Context, app store.App, rel store.Release, idx int, c engine.ContainerInfo, found bool) (r Replica, startTook, readyTook time.Duration, created bool, err error) {
	if found {
		r, startTook, readyTook, err = rs.restart(ctx, app, rel, idx, c)
		return r, startTook, readyTook, false, err
	}
	info, err := rs.startHealthy(ctx, app, rel, idx, nil, io.Discard)
	return rs.replica(app.Name, rel.Version, idx, info), 0, 0, true, err
}

// freeIndexes returns the n smallest replica numbers not in use.
func freeIndexes(used []Replica, n int) []int {
	var out []int
	for i := 1; len(out) < n; i++ {
		if !slices.ContainsFunc(used, func(r Replica) bool { return r.Index == i }) {
			out = append(out, i)
		}
	}
	return out
}

// startReplicas starts replicas with the given indexes of rel side by side
// and waits until all are healthy. If one fails, all are removed and its
// error returned: a release goes live with every replica or not at all.
func (rs *replicaSet) startReplicas(ctx context.Context, app store.App, rel store.Release, indexes []int, tm *timings, out io.Writer) ([]Replica, error) {
	out = &syncWriter{w: out}
	reps := make([]Replica, len(indexes))
	errs := make([]error, len(indexes))
	var wg sync.WaitGroup
	for i, idx := range indexes {
		t := tm
		if i > 0 {
			t = nil // phases are timed on the first replica
		}
		wg.Go(func() {
			c, err := rs.startHealthy(ctx, app, rel, idx, t, out)
			reps[i], errs[i] = rs.replica(app.Name, rel.Version, idx, c), err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for i, r := range reps {
			if errs[i] == nil {
				rs.remove(r.ID)
			}
		}
		return nil, err
	}
	return reps, nil
}

// resize brings the awake app to n replicas of its active release: new ones
// are started and health-checked before they get traffic; removed ones are
// taken out of the router, drained, stopped and removed.
func (rs *replicaSet) resize(ctx context.Context, app store.App, n int, out io.Writer) error {
	cur := rs.routed.get(app.Name)
	switch {
	case n > len(cur):
		rel, err := rs.store.GetRelease(app.Name, app.Active)
		if err != nil {
			return fmt.Errorf("active release: %w", err)
		}
		added, err := rs.startReplicas(ctx, app, rel, freeIndexes(cur, n-len(cur)), nil, out)
		if err != nil {
			return err
		}
		if _, err := rs.route(app.Name, append(cur, added...)); err != nil {
			for _, r := range added {
				rs.remove(r.ID)
			}
			return fmt.Errorf("switch router: %w", err)
		}
		step(out, "Running %d replicas of v%d", n, app.Active)
	case n < len(cur):
		keep, gone := cur[:n], cur[n:]
		drainOld, err := rs.route(app.Name, keep)
		if err != nil {
			return fmt.Errorf("switch router: %w", err)
		}
		rs.drain(ctx, drainOld, out)
		for _, r := range gone {
			rs.stopAndRemove(context.WithoutCancel(ctx), app.Name, r.ID)
		}
		step(out, "Running %d %s of v%d", n, plural(n, "replica", "replicas"), app.Active)
	}
	return nil
}

// drain waits, bounded by the drain timeout, for requests on backends that
// left the router.
func (rs *replicaSet) drain(ctx context.Context, drainOld func(context.Context) error, out io.Writer) {
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rs.cfg.DrainTimeout)
	defer cancel()
	if err := drainOld(drainCtx); err != nil {
		step(out, "Stopped waiting for old requests after %s: %v", rs.cfg.DrainTimeout, err)
	}
}

// syncWriter serializes writes of replicas started side by side.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ReleaseLabel is the router's label of release version v: "v8".
func ReleaseLabel(v int) string { return "v" + strconv.Itoa(v) }
