package deploy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/store"
)

// Canary analysis: how often a step's numbers are read, and how often a step
// with too few requests is extended before the rollout goes on anyway.
const (
	canaryCheckInterval = 500 * time.Millisecond
	// canaryExtensions: a step without MinRequests requests is run again
	// (its window grows) up to this many times. An idle canary is not a
	// failed one (flagger rolls idle canaries back, flagger#1035): after the
	// last extension it goes on with a warning, unless the few requests it
	// saw already fail above the limit.
	canaryExtensions = 3
	// canaryProgressEvery: how often a long step tells the pusher its
	// numbers so far (twice per step for shorter ones).
	canaryProgressEvery = 10 * time.Second
)

// canary ships a release by giving it a growing share of requests, judged
// by the router's own counters (deploy.SplitSwitcher):
//
//  1. start the new release's replicas beside the stable ones, as many as
//     the app runs (so the last step, 100%, has the app's full capacity),
//     and health-check them; until here a failure is a blue-green failure;
//  2. for each step: one atomic route change to the step's weight, then
//     every canaryCheckInterval the canary's requests of this step are
//     judged (judge): its 5xx answers and proxy errors over its requests
//     above MaxErrorRate percent, or its p99 above MaxP99, with at least
//     MinRequests requests, abort at once; at the step's end enough
//     requests and no breach go on, too few extend the step;
//  3. after the last step (or rollout:promote) Activate: the canary serves
//     alone, is recorded active, and the stable release drains and stops.
//
// Abort (a breach, rollout:abort, a rollback, a cancelled deploy): all
// traffic back to the stable replicas in one switch, the canary drained
// and stopped, the release failed with the numbers in its reason.
//
// An app with nothing serving (first deploy, asleep) has nothing to
// compare with and no traffic: it ships blue-green.
type canary struct{ s store.Strategy }

func (canary) Name() string { return string(store.StrategyCanary) }

// stepNumbers are one release's counters over a step.
type stepNumbers struct {
	requests, errors uint64
	p50, p99         time.Duration
}

func numbersOf(before, now ReleaseStats) stepNumbers {
	if now.Requests < before.Requests || now.Status5xx < before.Status5xx {
		before = ReleaseStats{} // counted afresh since (the release was routed again)
	}
	lat := now.Latency.Sub(before.Latency)
	return stepNumbers{
		requests: now.Requests - before.Requests,
		errors:   now.Status5xx - before.Status5xx,
		p50:      lat.Quantile(0.5), p99: lat.Quantile(0.99),
	}
}

func (n stepNumbers) rate() float64 {
	if n.requests == 0 {
		return 0
	}
	return float64(n.errors) * 100 / float64(n.requests)
}

// verdict is what judge decides about a step.
type verdict int

const (
	goOn         verdict = iota // the step runs on
	passed                      // step over, enough requests, no breach
	breached                    // abort now
	inconclusive                // step over with too few requests
)

// judge decides a step on the canary's numbers so far; over says the step
// time has run out. A breach needs MinRequests requests: a handful of
// early errors does not abort.
func judge(s store.Strategy, n stepNumbers, over bool) (verdict, string) {
	enough := n.requests > 0 && n.requests >= uint64(s.MinRequests)
	if enough {
		if why := breach(s, n); why != "" {
			return breached, why
		}
	}
	switch {
	case !over:
		return goOn, ""
	case enough || s.MinRequests == 0:
		return passed, ""
	default:
		return inconclusive, fmt.Sprintf("only %d of %d requests", n.requests, s.MinRequests)
	}
}

// breach says which limit n is over, "" if none.
func breach(s store.Strategy, n stepNumbers) string {
	if n.requests == 0 {
		return ""
	}
	if r := n.rate(); r > s.MaxErrorRate {
		return fmt.Sprintf("5xx %.1f%% of %d requests > %s%%", r, n.requests, strconv.FormatFloat(s.MaxErrorRate, 'f', -1, 64))
	}
	if s.MaxP99 > 0 && n.p99 > s.MaxP99 {
		return fmt.Sprintf("p99 %s over %d requests > %s", roundDuration(n.p99), n.requests, s.MaxP99)
	}
	return ""
}

// checkInterval is how often a step of length stepTime is judged.
func checkInterval(stepTime time.Duration) time.Duration {
	return min(canaryCheckInterval, max(stepTime/4, 10*time.Millisecond))
}

func (c canary) Rollout(ctx context.Context, ro *Rollout) error {
	sw, ok := ro.rs.switcher.(SplitSwitcher)
	if !ok || len(ro.Serving) == 0 || ro.From.Version == 0 {
		ro.Step("Canary: no release serves %s now to compare with; v%d goes live blue-green", ro.App.Name, ro.To.Version)
		return blueGreen{}.Rollout(ctx, ro)
	}
	run := &canaryRun{canary: c, ro: ro, sw: sw}
	run.live = ro.live.begin(ro.App.Name, api.Rollout{
		App: ro.App.Name, Strategy: c.Name(), From: ro.From.Version, To: ro.To.Version,
		State: "starting", Steps: c.s.Steps, Started: time.Now().UTC(),
	})
	defer ro.live.end(ro.App.Name, run.live)
	return run.rollout(ctx)
}

// canaryRun is one canary rollout in progress.
type canaryRun struct {
	canary
	ro   *Rollout
	sw   SplitSwitcher
	live *liveRollout
	reps []Replica // the canary's replicas
	// step is the current step (1-based) and weight its share.
	step, weight int
	// base are both releases' counters when the step (or rollout) began.
	base, first [2]ReleaseStats
	// cmd is the promote or abort being carried out.
	cmd *rolloutCmd
}

func (r *canaryRun) rollout(ctx context.Context) error {
	ro := r.ro
	n := ro.Replicas
	reps, err := ro.Start(ctx, ro.To, replicaIndexes(n))
	if err != nil {
		return ro.Failed("the start and health check", err)
	}
	r.reps = reps
	ro.To.ContainerID = reps[0].ID
	for i, weight := range r.s.Steps {
		r.step, r.weight = i+1, weight
		promote, err := r.runStep(ctx)
		if err != nil {
			return err
		}
		if promote {
			ro.Step("Promoted v%d at step %d (%d%%): %s", ro.To.Version, r.step, r.weight, "rollout:promote skips the remaining steps")
			ro.Event("promoted", "promoted by rollout:promote at step %d (%d%%)", r.step, r.weight)
			break
		}
	}
	r.live.update(func(st *api.Rollout) { st.State = "promoting" })
	drainOld, err := ro.Activate(ctx, reps)
	if err != nil {
		var live *liveError
		if !errors.As(err, &live) {
			r.backToStable(ctx)
		}
		return err
	}
	r.acted()
	ro.Step("Switched all traffic to v%d (%d %s)", ro.To.Version, n, plural(n, "replica", "replicas"))
	ro.Event("switched", "traffic now goes to %s", replicaNames(reps))
	ro.Drain(ctx, drainOld)
	ro.Mark("drain")
	ro.StopOthers(ctx)
	return nil
}

// acted tells the promote or abort being carried out that traffic switched.
func (r *canaryRun) acted() {
	if r.cmd != nil {
		close(r.cmd.done)
		r.cmd = nil
	}
}

// stepName names the current step in reasons and events: "step 2 (50%)".
func (r *canaryRun) stepName() string { return fmt.Sprintf("step %d (%d%%)", r.step, r.weight) }

// runStep routes the step's weight to the canary and judges it until its
// time is over; promote is true when rollout:promote asked to skip the rest.
func (r *canaryRun) runStep(ctx context.Context) (promote bool, err error) {
	ro, s := r.ro, r.s
	// A promote or abort sent while the replicas started acts before any
	// request reaches the canary.
	select {
	case cmd := <-r.live.cmds:
		return r.command(ctx, cmd)
	default:
	}
	if err := r.split(ctx); err != nil {
		return false, r.abort(ctx, ro.Failed(r.stepName(), err))
	}
	ro.Mark(fmt.Sprintf("switch %d", r.step))
	ro.Step("Canary step %d of %d: %d%% of requests to v%d, %d%% to v%d for %s", r.step, len(s.Steps), r.weight, ro.To.Version, 100-r.weight, ro.From.Version, s.StepTime)
	// The step's name first: start-up after a crash reads it back.
	ro.Event("canary", "%s: %d%% of requests to v%d", r.stepName(), r.weight, ro.To.Version)
	r.base, _ = r.stats()
	if r.step == 1 {
		r.first = r.base
	}
	started := time.Now()
	ends := started.Add(s.StepTime)
	r.live.update(func(st *api.Rollout) {
		st.State, st.Step, st.Weight, st.StepStarted, st.StepEnds, st.Extensions = "step", r.step, r.weight, started.UTC(), ends.UTC(), 0
	})
	r.publish(r.base)
	tick := time.NewTicker(checkInterval(s.StepTime))
	defer tick.Stop()
	said := started
	for extensions := 0; ; {
		select {
		case <-ctx.Done():
			return false, r.abort(ctx, ro.Failed(r.stepName(), context.Cause(ctx)))
		case cmd := <-r.live.cmds:
			return r.command(ctx, cmd)
		case now := <-tick.C:
			cur, ok := r.stats()
			if !ok {
				// A crash recovery re-routed the stable replicas and
				// ended the split: route it again, count afresh.
				if err := r.split(ctx); err != nil {
					return false, r.abort(ctx, ro.Failed(r.stepName(), err))
				}
				r.base, _ = r.stats()
				continue
			}
			r.publish(cur)
			n := numbersOf(r.base[1], cur[1])
			v, why := judge(s, n, !now.Before(ends))
			switch v {
			case goOn:
				if now.Sub(said) >= min(canaryProgressEvery, s.StepTime/2) {
					said = now
					ro.Step("Step %d (%d%%) so far: %s", r.step, r.weight, r.numbers(cur))
				}
				continue
			case breached:
				return false, r.abort(ctx, fmt.Errorf("canary v%d: %s at %s", ro.To.Version, why, r.stepName()))
			case inconclusive:
				if extensions < canaryExtensions {
					extensions++
					ends = ends.Add(s.StepTime)
					ro.Step("Step %d inconclusive: %s; extended by %s (%d of %d)", r.step, why, s.StepTime, extensions, canaryExtensions)
					r.live.update(func(st *api.Rollout) { st.StepEnds, st.Extensions = ends.UTC(), extensions })
					continue
				}
				// Idle is not failed, but going on against evidence is.
				if b := breach(store.Strategy{MaxErrorRate: s.MaxErrorRate, MaxP99: s.MaxP99}, n); b != "" {
					return false, r.abort(ctx, fmt.Errorf("canary v%d: %s, too few to be sure but over the limit after %d extensions, at %s", ro.To.Version, b, extensions, r.stepName()))
				}
				ro.Step("Warning: step %d stayed inconclusive (%s) after %d extensions; going on", r.step, why, extensions)
				ro.Event("inconclusive", "%s: %s after %d extensions; went on", r.stepName(), why, extensions)
			}
			r.report(cur)
			ro.Mark(fmt.Sprintf("step %d (%d%%)", r.step, r.weight))
			return false, nil
		}
	}
}

// split routes the step's weight to the canary, the rest to the stable
// replicas, in one route change. The stable ones are those routed now: the
// supervisor keeps that list (a crashed replica restarted), the canary's
// are never in it.
func (r *canaryRun) split(ctx context.Context) error {
	ro := r.ro
	unlock, err := ro.locks.lockReplicas(ctx, ro.App.Name)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = r.sw.SwitchSplit(ro.App.Name, Split{
		Stable: Group{Release: ReleaseLabel(ro.From.Version), Addrs: addrsOfReplicas(ro.rs.routed.get(ro.App.Name))},
		Canary: &Group{Release: ReleaseLabel(ro.To.Version), Addrs: addrsOfReplicas(r.reps)},
		Weight: r.weight,
	})
	if err != nil {
		return fmt.Errorf("switch router: %w", err)
	}
	return nil
}

// command carries out a promote (true: skip the remaining steps) or abort.
func (r *canaryRun) command(ctx context.Context, cmd rolloutCmd) (promote bool, err error) {
	r.cmd = &cmd
	if cmd.promote {
		return true, nil
	}
	return false, r.abort(ctx, fmt.Errorf("canary v%d: aborted by %s at %s", r.ro.To.Version, cmd.by, r.stepName()))
}

// stats reads both releases' counters: stable [0], canary [1]; false when
// the route no longer has the canary.
func (r *canaryRun) stats() ([2]ReleaseStats, bool) {
	var out [2]ReleaseStats
	out[0], _ = r.sw.ReleaseStats(r.ro.App.Name, ReleaseLabel(r.ro.From.Version))
	var ok bool
	out[1], ok = r.sw.ReleaseStats(r.ro.App.Name, ReleaseLabel(r.ro.To.Version))
	return out, ok
}

// publish updates the live status with the step's numbers so far.
func (r *canaryRun) publish(cur [2]ReleaseStats) {
	rels := make([]api.RolloutRelease, 2)
	for i, v := range []int{r.ro.From.Version, r.ro.To.Version} {
		n := numbersOf(r.base[i], cur[i])
		rels[i] = api.RolloutRelease{
			Version: v, Role: "stable", Weight: 100 - r.weight,
			Requests: n.requests, Errors: n.errors, ErrorRate: n.rate(),
			P50: api.Duration(n.p50), P99: api.Duration(n.p99),
			TotalRequests: cur[i].Requests - r.first[i].Requests,
		}
	}
	rels[1].Role, rels[1].Weight = "canary", r.weight
	r.live.update(func(st *api.Rollout) { st.Releases = rels })
}

// report writes a passed step's numbers to the pusher.
func (r *canaryRun) report(cur [2]ReleaseStats) {
	r.ro.Step("Step %d (%d%%) passed: %s", r.step, r.weight, r.numbers(cur))
}

// numbers are both releases' numbers in the step: "v8 212 requests, 5xx
// 0.0%, p99 12ms; v7 ...".
func (r *canaryRun) numbers(cur [2]ReleaseStats) string {
	line := func(version int, n stepNumbers) string {
		return fmt.Sprintf("v%d %d requests, 5xx %.1f%%, p99 %s", version, n.requests, n.rate(), roundDuration(n.p99))
	}
	return line(r.ro.To.Version, numbersOf(r.base[1], cur[1])) + "; " + line(r.ro.From.Version, numbersOf(r.base[0], cur[0]))
}

// abort sends all traffic back to the stable replicas in one switch, then
// drains and stops the canary's, and returns why (the release's reason).
func (r *canaryRun) abort(ctx context.Context, why error) error {
	r.live.update(func(st *api.Rollout) { st.State = "aborting" })
	r.backToStable(ctx)
	r.ro.Step("Aborted: %v; all traffic is back on v%d", why, r.ro.From.Version)
	return why
}

// backToStable routes the stable replicas alone, then drains and removes
// the canary's. It runs even when ctx was cancelled.
func (r *canaryRun) backToStable(ctx context.Context) {
	ro := r.ro
	ctx = context.WithoutCancel(ctx)
	drainOld, err := ro.Switch(ctx, ro.rs.routed.get(ro.App.Name))
	if err != nil {
		// The route still splits: say so loudly; start-up would fix it.
		ro.rs.log.Error("canary abort: switch back to stable", "app", ro.App.Name, "err", err)
	}
	r.acted()
	ro.Mark("abort")
	if drainOld != nil {
		ro.Drain(ctx, drainOld)
	}
	ro.Stop(ctx, r.reps)
}

func addrsOfReplicas(reps []Replica) []string {
	out := make([]string, len(reps))
	for i, r := range reps {
		out[i] = r.Addr
	}
	return out
}

// canaryStep names the step ("step 2 (50%)") a canary rollout of rel had
// reached, from its newest "canary" event; "" if it had none.
func (sv *Supervisor) canaryStep(rel store.Release) string {
	evs, err := sv.store.ListEvents(rel.App, 200)
	if err != nil {
		return ""
	}
	for i := len(evs) - 1; i >= 0; i-- {
		if e := evs[i]; e.Release == rel.Version && e.Kind == "canary" {
			step, _, _ := strings.Cut(e.Message, ":")
			return step
		}
	}
	return ""
}
