package cli

import (
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/plat-paas/plat/api"
)

func cmdStrategy(e *env, args []string) error {
	pos, err := e.parse(e.flags(), args, 1, 1)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	raw, err := c.call(e.ctx, http.MethodGet, appPath(pos[0], "strategy"), nil)
	if err != nil {
		return err
	}
	var s api.Strategy
	if done, err := e.jsonOrDecode(raw, &s); done || err != nil {
		return err
	}
	printStrategy(e, pos[0], s)
	return nil
}

// strategyFlags maps strategy:set's flags to the API's setting names; the
// daemon says which strategy takes which.
var strategyFlags = []struct{ flag, setting, usage string }{
	{"steps", "steps", "canary: percentages of traffic, strictly increasing, ending at 100 (default 10,50,100)"},
	{"step-time", "step_time", "canary: how long each step runs before it is judged (default 1m)"},
	{"max-error-rate", "max_error_rate", "canary: percent of the canary's requests in a step that may fail (5xx, proxy errors) before it aborts (default 1)"},
	{"max-p99", "max_p99", "canary: abort when the canary's p99 latency in a step is above this, e.g. 800ms (default off)"},
	{"min-requests", "min_requests", "canary: requests a step must see for its numbers to count (default 50)"},
	{"batch", "batch", "rolling: replicas replaced at a time (default 1)"},
	{"hold", "hold", "in-place: how long requests are held while the new release starts (default 30s)"},
}

func cmdStrategySet(e *env, args []string) error {
	fs := e.flags()
	values := map[string]*string{}
	for _, f := range strategyFlags {
		values[f.flag] = fs.String(f.flag, "", f.usage)
	}
	pos, err := e.parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	name := pos[0]
	body := map[string]any{"name": pos[1]}
	var bad error
	fs.Visit(func(fl *flag.Flag) {
		for _, f := range strategyFlags {
			if f.flag != fl.Name || bad != nil {
				continue
			}
			v, err := strategyValue(f.flag, *values[f.flag])
			if err != nil {
				bad = err
				return
			}
			body[f.setting] = v
		}
	})
	if bad != nil {
		return bad
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	raw, err := c.call(e.ctx, http.MethodPut, appPath(name, "strategy"), body)
	if err != nil {
		return err
	}
	var s api.Strategy
	if done, err := e.jsonOrDecode(raw, &s); done || err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s strategy set to %s\n", name, s.Name)
	printStrategy(e, name, s)
	return nil
}

// strategyValue converts a strategy:set flag to its JSON value; the daemon
// checks the ranges.
func strategyValue(flagName, v string) (any, error) {
	v = strings.TrimSpace(v)
	switch flagName {
	case "steps":
		var steps []int
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSuffix(strings.TrimSpace(f), "%")
			n, err := strconv.Atoi(f)
			if err != nil {
				return nil, usagef("--steps %q: give whole percentages separated by commas, like 10,50,100", v)
			}
			steps = append(steps, n)
		}
		return steps, nil
	case "max-error-rate":
		f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
		if err != nil {
			return nil, usagef("--max-error-rate %q: give a percentage like 1 or 0.5", v)
		}
		return f, nil
	case "min-requests", "batch":
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, usagef("--%s %q: give a whole number", flagName, v)
		}
		return n, nil
	}
	return v, nil // durations: the daemon parses them
}

// printStrategy writes a strategy's settings, one a line.
func printStrategy(e *env, app string, s api.Strategy) {
	rows := [][]string{{"app:", app}, {"strategy:", s.Name}}
	switch s.Name {
	case "canary":
		steps := make([]string, len(s.Steps))
		for i, p := range s.Steps {
			steps[i] = strconv.Itoa(p) + "%"
		}
		p99 := s.MaxP99
		if p99 == "" || p99 == "0s" {
			p99 = "off"
		}
		rows = append(rows,
			[]string{"steps:", strings.Join(steps, ", ") + " of requests"},
			[]string{"step time:", s.StepTime},
			[]string{"max error rate:", floatString(s.MaxErrorRate) + "% of the canary's requests per step (5xx and proxy errors)"},
			[]string{"max p99:", p99},
			[]string{"min requests:", intString(s.MinRequests) + " per step"})
	case "rolling":
		rows = append(rows, []string{"batch:", intString(s.Batch) + " replica(s) at a time"})
	case "in-place":
		rows = append(rows, []string{"hold:", s.Hold + " (requests held while the new release starts)"})
	}
	rows = append(rows, []string{"summary:", s.Description})
	table(e.stdout, rows)
}

func floatString(f *float64) string {
	if f == nil {
		return "-"
	}
	return strconv.FormatFloat(*f, 'f', -1, 64)
}

func intString(n *int) string {
	if n == nil {
		return "-"
	}
	return strconv.Itoa(*n)
}
