package cli

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/plat-paas/plat/api"
)

// defaultShadowPercent is what --percent defaults to (the daemon's default).
const defaultShadowPercent = 100

func cmdShadow(e *env, args []string) error {
	fs := e.flags()
	percent := fs.Int("percent", defaultShadowPercent, "share of the live requests to mirror, 1 to 100")
	methods := fs.String("methods", "GET,HEAD", "methods to mirror, comma separated (others copy bodies up to 1 MiB)")
	pos, err := e.parse(fs, args, 1, 2)
	if err != nil {
		return err
	}
	name := pos[0]
	c, err := e.client()
	if err != nil {
		return err
	}
	if len(pos) == 1 {
		var sh api.Shadow
		raw, err := c.get(e.ctx, appPath(name, "shadow"), &sh)
		if err != nil {
			return err
		}
		if e.json {
			return writeRawJSON(e.stdout, raw)
		}
		printShadow(e.stdout, sh)
		return nil
	}
	if *percent < 1 || *percent > 100 {
		return usagef("--percent %d: give 1 to 100", *percent)
	}
	body := api.ShadowStart{Release: pos[1], Percent: *percent, Methods: strings.Split(*methods, ",")}
	raw, err := c.call(e.ctx, http.MethodPost, appPath(name, "shadow"), body)
	if err != nil {
		return err
	}
	var sh api.Shadow
	if done, err := e.jsonOrDecode(raw, &sh); done || err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Mirroring %d%% of %s's %s requests to %s (answers compared, then discarded; the live answer never waits).\nSee how it compares with: plat shadow %s\n",
		sh.Percent, name, strings.Join(sh.Methods, ","), sh.Release, name)
	return nil
}

func cmdShadowStop(e *env, args []string) error {
	name, c, err := e.appCmd(args)
	if err != nil {
		return err
	}
	raw, err := c.call(e.ctx, http.MethodDelete, appPath(name, "shadow"), nil)
	if err != nil {
		return err
	}
	var sh api.Shadow
	if done, err := e.jsonOrDecode(raw, &sh); done || err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Stopped shadowing %s to %s. Final numbers:\n", name, sh.Release)
	printShadow(e.stdout, sh)
	return nil
}

func printShadow(w io.Writer, sh api.Shadow) {
	if !sh.Active && sh.Release == "" {
		fmt.Fprintf(w, "%s has no shadow; start one with: plat shadow %s vN\n", sh.App, sh.App)
		return
	}
	dash := func(s string) string {
		if s == "" {
			return "—"
		}
		return s
	}
	rows := [][]string{
		{"release", sh.Release + " (" + strings.Join(sh.Addrs, ", ") + ")"},
		{"mirroring", fmt.Sprintf("%d%% of %s", sh.Percent, strings.Join(sh.Methods, ","))},
		{"mirrored", fmt.Sprint(sh.Mirrored)},
		{"dropped", fmt.Sprintf("%d (queue full)", sh.Dropped)},
		{"not mirrored", fmt.Sprintf("%d (body over 1 MiB)", sh.TooLarge)},
		{"shadow errors", fmt.Sprintf("%d (no answer)", sh.Errors)},
		{"status match", fmt.Sprint(sh.Match)},
		{"status mismatch", fmt.Sprint(sh.Mismatch)},
	}
	for _, k := range slices.Sorted(maps.Keys(sh.Pairs)) {
		rows = append(rows, []string{"  live→shadow " + k, fmt.Sprint(sh.Pairs[k])})
	}
	rows = append(rows,
		[]string{"p50 live / shadow", dash(sh.LiveP50) + " / " + dash(sh.ShadowP50)},
		[]string{"p99 live / shadow", dash(sh.LiveP99) + " / " + dash(sh.ShadowP99)})
	table(w, rows)
}
