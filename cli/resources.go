package cli

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/plat-paas/plat/api"
)

func cmdResources(e *env, args []string) error {
	name, c, err := e.appCmd(args)
	if err != nil {
		return err
	}
	var r api.Resources
	raw, err := c.get(e.ctx, appPath(name, "resources"), &r)
	if err != nil {
		return err
	}
	if e.json {
		return writeRawJSON(e.stdout, raw)
	}
	table(e.stdout, [][]string{
		{"memory:", formatBytes(r.MemoryBytes)},
		{"cpus:", strconv.FormatFloat(r.CPUs, 'f', -1, 64)},
		{"read-only:", onOff(r.ReadOnly)},
	})
	return nil
}

func cmdResourcesSet(e *env, args []string) error {
	fs := e.flags()
	memory := fs.String("memory", "", "memory limit, e.g. 256m or 1g")
	cpus := fs.String("cpus", "", "CPU limit in CPUs, e.g. 0.5 or 2")
	readOnly := fs.String("read-only", "", "on: read-only root filesystem with a writable /tmp; off: writable")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	name := pos[0]
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	change, err := parseResources(given, *memory, *cpus, *readOnly)
	if err != nil {
		return err
	}
	return e.deploy(name, appPath(name, "resources"), change, func(r api.Release) string {
		if r.Version == 0 {
			return name + ": no new release (see above)"
		}
		return fmt.Sprintf("%s v%d (resources) is live: %s", name, r.Version, r.Reason)
	})
}

// parseResources checks the flags of `plat resources:set` (given holds the
// names of the flags given) and returns the request body.
func parseResources(given map[string]bool, memory, cpus, readOnly string) (api.ResourcesChange, error) {
	var c api.ResourcesChange
	if !given["memory"] && !given["cpus"] && !given["read-only"] {
		return c, usagef("nothing to change: give --memory, --cpus or --read-only on|off")
	}
	if given["memory"] {
		n, err := parseBytes(memory)
		if err != nil {
			return c, usagef("--memory %q: %v", memory, err)
		}
		c.MemoryBytes = &n
	}
	if given["cpus"] {
		f, err := strconv.ParseFloat(cpus, 64)
		if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return c, usagef("--cpus %q: give a positive number of CPUs, e.g. 0.5 or 2", cpus)
		}
		c.CPUs = &f
	}
	if given["read-only"] {
		switch strings.ToLower(readOnly) {
		case "on", "true", "yes":
			c.ReadOnly = new(true)
		case "off", "false", "no":
			c.ReadOnly = new(false)
		default:
			return c, usagef("--read-only %q: give on or off", readOnly)
		}
	}
	return c, nil
}

// parseBytes reads a size like Docker's --memory: a number with an
// optional unit b, k, m or g (powers of 1024; "mib", "mb" and "gb" too).
func parseBytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	mult := map[string]float64{"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
		"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}[unit]
	f, err := strconv.ParseFloat(num, 64)
	if mult == 0 || err != nil || f <= 0 {
		return 0, fmt.Errorf("give a size like 256m or 1g")
	}
	if f*mult >= math.MaxInt64 {
		return 0, fmt.Errorf("too large")
	}
	return int64(f * mult), nil
}

// formatBytes writes n in MiB or GiB when it is a whole number of them.
func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
