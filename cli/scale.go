package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/plat-paas/plat/api"
)

// processType is the one process type an app has (Procfile-style "web=N").
const processType = "web"

func cmdScale(e *env, args []string) error {
	fs := e.flags()
	minN := fs.Int("min", 0, "fewest replicas; 0 lets the app sleep when idle")
	maxN := fs.Int("max", 0, "most replicas the autoscaler may run")
	idle := fs.String("idle", "", "with --min 0: time without requests before the app sleeps, e.g. 5m")
	target := fs.Int("target", 0, "in-flight requests per replica the autoscaler aims at")
	coldAfter := fs.String("cold-after", "", "with --min 0: how long a sleeping app stays paused (warm, wakes in milliseconds) before it is stopped, e.g. 1h; 0 stops it at once")
	pos, err := e.parse(fs, args, 1, 2)
	if err != nil {
		return err
	}
	name := pos[0]
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	delete(given, "json")
	if len(pos) == 1 && len(given) == 0 {
		return showScale(e, name)
	}
	change, err := parseScale(pos[1:], given, *minN, *maxN, *idle, *target)
	if err != nil {
		return err
	}
	if given["cold-after"] {
		if change.ColdAfter, err = parseColdAfter(*coldAfter); err != nil {
			return err
		}
	}
	raw, err := e.operation(appPath(name, "scale"), change, "plat scale "+name)
	if err != nil {
		return err
	}
	var a api.App
	if done, err := e.jsonOrDecode(raw, &a); done || err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: %s; %s running now\n", name, scaleString(a.Scale), plural(a.Replicas, "replica"))
	return nil
}

// parseScale checks the command line of `plat scale NAME [web=N] [flags]`
// (flags holds the names of the flags given) and returns the request body.
func parseScale(procs []string, given map[string]bool, minN, maxN int, idle string, target int) (api.ScaleChange, error) {
	var c api.ScaleChange
	for _, p := range procs {
		typ, count, ok := strings.Cut(p, "=")
		if !ok {
			return c, usagef("%q is not %s=N", p, processType)
		}
		if typ != processType {
			return c, usagef("%s: apps have one process type, %s (e.g. %s=3)", p, processType, processType)
		}
		n, err := strconv.Atoi(count)
		switch {
		case err != nil || n < 0:
			return c, usagef("%s: give a number of replicas, e.g. %s=3", p, processType)
		case n == 0:
			return c, usagef("%s: use --min 0 to let the app sleep when idle (it wakes on the next request)", p)
		case given["min"] || given["max"]:
			return c, usagef("%s sets min and max to %d: give either %s=N or --min/--max", p, n, processType)
		}
		c.Replicas = &n
	}
	if given["min"] {
		if minN < 0 {
			return c, usagef("--min must be 0 or more")
		}
		c.Min = &minN
	}
	if given["max"] {
		if maxN < 1 {
			return c, usagef("--max must be 1 or more")
		}
		c.Max = &maxN
	}
	if given["min"] && given["max"] && minN > maxN {
		return c, usagef("--min %d is more than --max %d", minN, maxN)
	}
	if given["idle"] {
		d, err := time.ParseDuration(idle)
		if err != nil || d <= 0 {
			return c, usagef("--idle %q: give a positive duration like 5m or 30s", idle)
		}
		c.Idle = &idle
	}
	if given["target"] {
		if target < 1 {
			return c, usagef("--target must be 1 or more in-flight requests per replica")
		}
		c.Target = &target
	}
	return c, nil
}

// showScale prints an app's scale settings and its replicas.
func showScale(e *env, name string) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	var a api.App
	rawApp, err := c.get(e.ctx, appPath(name), &a)
	if err != nil {
		return err
	}
	var reps []api.Replica
	rawPs, err := c.get(e.ctx, appPath(name, "ps"), &reps)
	if err != nil {
		return err
	}
	if e.json {
		var scale json.RawMessage
		var fields map[string]json.RawMessage
		if json.Unmarshal(rawApp, &fields) == nil {
			scale = fields["scale"]
		}
		return writeJSON(e.stdout, map[string]any{"app": name, "status": a.Status, "scale": scale, "replicas": json.RawMessage(rawPs)})
	}
	table(e.stdout, [][]string{
		{"status:", statusString(a)},
		{"scale:", scaleString(a.Scale)},
		{"replicas:", fmt.Sprintf("%d running", a.Replicas)},
	})
	if len(reps) > 0 {
		fmt.Fprintln(e.stdout)
		printReplicas(e, reps)
	}
	return nil
}

func cmdPs(e *env, args []string) error {
	name, c, err := e.appCmd(args)
	if err != nil {
		return err
	}
	var reps []api.Replica
	raw, err := c.get(e.ctx, appPath(name, "ps"), &reps)
	if err != nil {
		return err
	}
	if e.json {
		return writeRawJSON(e.stdout, raw)
	}
	if len(reps) == 0 {
		fmt.Fprintf(e.stdout, "%s has no replicas: not deployed yet (git push), or asleep (the next request wakes it)\n", name)
		return nil
	}
	printReplicas(e, reps)
	return nil
}

func printReplicas(e *env, reps []api.Replica) {
	rows := [][]string{{"REPLICA", "STATE", "RELEASE", "IN-FLIGHT", "ADDRESS", "CONTAINER"}}
	for _, r := range reps {
		rows = append(rows, []string{orDash(r.Label), replicaState(r), vstr(r.Release), strconv.FormatInt(r.InFlight, 10), orDash(r.Addr), orDash(shortContainer(r.ContainerID))})
	}
	table(e.stdout, rows)
}

// scaleString describes scale settings: "min 0, max 3, idle 5m, target 10
// (sleeps after 5m without requests; autoscales 1-3)".
func scaleString(s api.Scale) string {
	if s.Max == 0 {
		return "-" // a daemon without scaling
	}
	parts := []string{fmt.Sprintf("min %d", s.Min), fmt.Sprintf("max %d", s.Max)}
	if s.Idle != 0 {
		parts = append(parts, "idle "+fmtDur(time.Duration(s.Idle)))
	}
	if s.Target != 0 {
		parts = append(parts, fmt.Sprintf("target %d", s.Target))
	}
	var notes []string
	if s.Min == 0 {
		note := "sleeps when idle"
		if s.Idle != 0 {
			note = "sleeps after " + fmtDur(time.Duration(s.Idle)) + " without requests"
		}
		if s.ColdAfter != 0 {
			note += ", paused, stopped after " + fmtDur(time.Duration(s.ColdAfter))
		}
		notes = append(notes, note)
	}
	if low := max(s.Min, 1); s.Max > low {
		notes = append(notes, fmt.Sprintf("autoscales %d-%d", low, s.Max))
	}
	out := strings.Join(parts, ", ")
	if len(notes) > 0 {
		out += " (" + strings.Join(notes, "; ") + ")"
	}
	return out
}

// replicasString is an app's REPLICAS column: "-" before its first deploy.
func replicasString(a api.App) string {
	if a.Active == 0 {
		return "-"
	}
	return strconv.Itoa(a.Replicas)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func shortContainer(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
