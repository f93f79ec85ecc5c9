package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/plat-paas/plat/api"
)

func cmdFlags(e *env, args []string) error {
	name, c, err := e.appCmd(args)
	if err != nil {
		return err
	}
	var f api.Flags
	raw, err := c.get(e.ctx, appPath(name, "flags"), &f)
	if err != nil {
		return err
	}
	if e.json {
		return writeRawJSON(e.stdout, raw)
	}
	printFlags(e.stdout, name, f)
	return nil
}

func printFlags(w io.Writer, app string, f api.Flags) {
	if len(f.Flags) == 0 {
		fmt.Fprintf(w, "%s has no feature flags; add one with: plat flags:set %s NAME=25%%\n", app, app)
		return
	}
	rows := [][]string{{"FLAG", "ROLLOUT"}}
	for _, fl := range f.Flags {
		rows = append(rows, []string{fl.Name, rolloutText(fl.Percent)})
	}
	table(w, rows)
}

// rolloutText says who has a flag on.
func rolloutText(p int) string {
	switch p {
	case 0:
		return "off (no one)"
	case 100:
		return "on (everyone)"
	}
	return fmt.Sprintf("%d%% of users", p)
}

// parseFlagValue reads what flags:set takes after NAME=: on, off or a
// percentage (25%, or 25).
func parseFlagValue(v string) (int, error) {
	switch strings.ToLower(v) {
	case "on", "true":
		return 100, nil
	case "off", "false":
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSuffix(v, "%"))
	if err != nil || n < 0 || n > 100 {
		return 0, fmt.Errorf("%q is not on, off or a percentage from 0%% to 100%%", v)
	}
	return n, nil
}

func cmdFlagsSet(e *env, args []string) error {
	pos, err := e.parse(e.flags(), args, 2, -1)
	if err != nil {
		return err
	}
	name := pos[0]
	set := map[string]int{}
	for _, a := range pos[1:] {
		flag, v, ok := strings.Cut(a, "=")
		if !ok || flag == "" {
			return usagef("give FLAG=on, FLAG=off or FLAG=25%%, not %q", a)
		}
		p, err := parseFlagValue(v)
		if err != nil {
			return usagef("flag %s: %v; nothing was changed", flag, err)
		}
		set[flag] = p
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	raw, err := c.call(e.ctx, http.MethodPost, appPath(name, "flags"), api.FlagsChange{Flags: set})
	if err != nil {
		return err
	}
	return e.flagsDone(raw, name)
}

func cmdFlagsUnset(e *env, args []string) error {
	pos, err := e.parse(e.flags(), args, 2, 2)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	raw, err := c.call(e.ctx, http.MethodDelete, appPath(pos[0], "flags", url.PathEscape(pos[1])), nil)
	if err != nil {
		return err
	}
	return e.flagsDone(raw, pos[0])
}

func (e *env) flagsDone(raw []byte, app string) error {
	var f api.Flags
	if done, err := e.jsonOrDecode(raw, &f); done || err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Flags of %s (they apply now, no release needed):\n", app)
	printFlags(e.stdout, app, f)
	return nil
}
