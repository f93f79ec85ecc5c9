package cli

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/plat-paas/plat/api"
)

// rolloutFollowInterval is how often `plat rollout -f` reads the rollout
// (a variable for tests).
var rolloutFollowInterval = time.Second

func cmdRollout(e *env, args []string) error {
	fs := e.flags()
	follow := fs.Bool("f", false, "follow the rollout until it ends")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	name := pos[0]
	c, err := e.client()
	if err != nil {
		return err
	}
	var last string
	for {
		var st api.Rollout
		raw, err := c.get(e.ctx, appPath(name, "rollout"), &st)
		var ae *apiError
		if *follow && errors.As(err, &ae) && ae.Status == http.StatusNotFound && last != "" {
			fmt.Fprintf(e.stdout, "The rollout ended; see `plat releases %s`.\n", name)
			return nil
		}
		if err != nil {
			return err
		}
		if !*follow {
			if done, err := e.jsonOrDecode(raw, &st); done || err != nil {
				return err
			}
			printRollout(e, st)
			return nil
		}
		if e.json {
			if err := writeRawJSON(e.stdout, raw); err != nil {
				return err
			}
		} else if s := rolloutLine(st); s != last {
			fmt.Fprintln(e.stdout, time.Now().Format("15:04:05"), s)
			last = s
		}
		last = cmp.Or(last, "-") // a 404 from here on means it ended
		select {
		case <-e.ctx.Done():
			return nil
		case <-time.After(rolloutFollowInterval):
		}
	}
}

// rolloutLine is one line of `plat rollout -f`.
func rolloutLine(st api.Rollout) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s v%d→v%d", st.State, st.From, st.To)
	if st.Step > 0 {
		fmt.Fprintf(&b, " step %d/%d", st.Step, len(st.Steps))
	}
	for _, r := range st.Releases {
		fmt.Fprintf(&b, "  v%d %d%%: %d req, 5xx %.1f%%, p99 %s", r.Version, r.Weight, r.Requests, r.ErrorRate, fmtDur(r.P99.D()))
	}
	return b.String()
}

func printRollout(e *env, st api.Rollout) {
	steps := make([]string, len(st.Steps))
	for i, p := range st.Steps {
		steps[i] = fmt.Sprintf("%d%%", p)
	}
	fmt.Fprintf(e.stdout, "%s: %s rollout of v%d (stable v%d), started %s\n", st.App, st.Strategy, st.To, st.From, ago(st.Started))
	switch {
	case st.Step == 0:
		fmt.Fprintf(e.stdout, "state:  %s (the new replicas start and are health-checked)\n", st.State)
	default:
		ext := ""
		if st.Extensions > 0 {
			ext = fmt.Sprintf(", extended %d× for too few requests", st.Extensions)
		}
		fmt.Fprintf(e.stdout, "step:   %d of %d (%s), %s; judged %s%s\n", st.Step, len(st.Steps), strings.Join(steps, ", "), st.State, until(st.StepEnds), ext)
	}
	rows := [][]string{{"RELEASE", "ROLE", "WEIGHT", "REQUESTS", "5XX", "P50", "P99", "TOTAL"}}
	for _, r := range st.Releases {
		rows = append(rows, []string{vstr(r.Version), r.Role, fmt.Sprintf("%d%%", r.Weight), fmt.Sprint(r.Requests),
			fmt.Sprintf("%.1f%%", r.ErrorRate), fmtDur(r.P50.D()), fmtDur(r.P99.D()), fmt.Sprint(r.TotalRequests)})
	}
	table(e.stdout, rows)
}

// until says when t comes: "in 12s", or "now".
func until(t time.Time) string {
	d := time.Until(t).Round(time.Second)
	if d <= 0 {
		return "now"
	}
	return "in " + d.String()
}

func cmdRolloutPromote(e *env, args []string) error {
	return rolloutAction(e, args, "promote", "v%d of %s is now the active release; the remaining steps were skipped.\n")
}

func cmdRolloutAbort(e *env, args []string) error {
	return rolloutAction(e, args, "abort", "Aborted the rollout of v%d of %s: all traffic is back on the stable release.\n")
}

func rolloutAction(e *env, args []string, action, done string) error {
	name, c, err := e.appCmd(args)
	if err != nil {
		return err
	}
	raw, err := c.call(e.ctx, http.MethodPost, appPath(name, "rollout", action), nil)
	if err != nil {
		return err
	}
	var res api.RolloutAction
	if ok, err := e.jsonOrDecode(raw, &res); ok || err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, done, res.Release, name)
	return nil
}
