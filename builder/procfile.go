package builder

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// Process types a Procfile may name.
const (
	// ProcessWeb is the command of the web replicas; it replaces the
	// image's CMD.
	ProcessWeb = "web"
	// ProcessRelease is the release phase: run once per release, after the
	// build and before any new replica takes traffic.
	ProcessRelease = "release"
)

// maxProcfileBytes bounds the Procfile read from a push; a real one is a
// few lines.
const maxProcfileBytes = 64 << 10

// ErrProcfile is wrapped by every error about a pushed Procfile.
var ErrProcfile = errors.New("bad Procfile")

var procfileLine = regexp.MustCompile(`^([A-Za-z0-9_-]+)[ \t]*:[ \t]*(.*)$`)

// ParseProcfile reads a Procfile ("type: command" lines, as on Heroku; blank
// lines and # comments are skipped) and returns its commands by process
// type. Only ProcessWeb and ProcessRelease are known: another type, a type
// named twice, an empty command or a line that is not "type: command" is an
// error wrapping ErrProcfile that says which line and what to do.
func ParseProcfile(r io.Reader) (map[string]string, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxProcfileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read Procfile: %w", err)
	}
	if len(data) > maxProcfileBytes {
		return nil, fmt.Errorf("%w: it is larger than %d KiB; keep one line per process type", ErrProcfile, maxProcfileBytes>>10)
	}
	known := []string{ProcessWeb, ProcessRelease}
	procs := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(nil, maxProcfileBytes+1)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := procfileLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("%w: line %d %q is not \"type: command\" (e.g. \"release: ./migrate up\")", ErrProcfile, n, line)
		}
		typ, cmd := m[1], strings.TrimSpace(m[2])
		switch {
		case !slices.Contains(known, typ):
			return nil, fmt.Errorf("%w: line %d: unknown process type %q; plat runs %q (the web replicas' command) and %q (the release phase); remove the line or rename it", ErrProcfile, n, typ, ProcessWeb, ProcessRelease)
		case procs[typ] != "":
			return nil, fmt.Errorf("%w: line %d: process type %q is given twice; keep one line", ErrProcfile, n, typ)
		case cmd == "":
			return nil, fmt.Errorf("%w: line %d: process type %q has no command", ErrProcfile, n, typ)
		}
		procs[typ] = cmd
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProcfile, err)
	}
	if len(procs) == 0 {
		return nil, nil
	}
	return procs, nil
}
