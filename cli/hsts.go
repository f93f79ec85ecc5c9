package cli

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/plat-paas/plat/api"
)

// defaultHSTSMaxAge is what --max-age defaults to (the daemon's default).
const defaultHSTSMaxAge = "1y"

func cmdHSTSSet(e *env, args []string) error {
	fs := e.flags()
	maxAge := fs.String("max-age", defaultHSTSMaxAge, "how long browsers keep to HTTPS: 1y, 180d, 12h")
	pos, err := e.parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	name := pos[0]
	body := map[string]any{}
	switch strings.ToLower(pos[1]) {
	case "on":
		d, err := parseLongDuration(*maxAge)
		if err != nil {
			return usagef("--max-age %q: %v", *maxAge, err)
		}
		body["enabled"], body["max_age"] = true, int64(d/time.Second)
	case "off":
		body["enabled"] = false
	default:
		return usagef("say on or off: plat hsts:set %s on [--max-age 1y]", name)
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	raw, err := c.call(e.ctx, http.MethodPut, appPath(name, "hsts"), body)
	if err != nil {
		return err
	}
	var h api.HSTS
	if done, err := e.jsonOrDecode(raw, &h); done || err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s HSTS: %s\n", name, hstsString(h))
	return nil
}

// hstsString describes an HSTS setting in one line.
func hstsString(h api.HSTS) string {
	if !h.Enabled {
		return "off"
	}
	return fmt.Sprintf("on (%s; %s)", h.Header, h.Note)
}

// parseLongDuration reads a duration that may be given in days (180d) or
// years (1y, 365 days) as well as in Go's units (12h).
func parseLongDuration(s string) (time.Duration, error) {
	day := 24 * time.Hour
	for suffix, unit := range map[string]time.Duration{"d": day, "y": 365 * day} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			if err != nil || v <= 0 {
				return 0, fmt.Errorf("give a positive number before %s, like 1%s", suffix, suffix)
			}
			return time.Duration(v * float64(unit)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("give a positive duration like 1y, 180d or 12h")
	}
	return d, nil
}
