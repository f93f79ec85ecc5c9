package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// shellPath is the shell Procfile commands run with when the image has one.
const shellPath = "/bin/sh"

// ErrBadCommand: a command that cannot be split into arguments.
var ErrBadCommand = errors.New("bad command")

// shellCache remembers, per image ID, whether the image has a shell:
// images are immutable, so the engine is asked once per image.
type shellCache struct {
	mu     sync.Mutex
	images map[string]bool
}

// hasShell reports whether image has /bin/sh, asking the engine once.
func (sp *specs) hasShell(ctx context.Context, image string) (bool, error) {
	sp.shells.mu.Lock()
	has, ok := sp.shells.images[image]
	sp.shells.mu.Unlock()
	if ok {
		return has, nil
	}
	has, err := sp.engine.HasFile(ctx, image, shellPath)
	if err != nil {
		return false, fmt.Errorf("look for a shell in the image: %w", err)
	}
	sp.shells.mu.Lock()
	if sp.shells.images == nil {
		sp.shells.images = map[string]bool{}
	}
	sp.shells.images[image] = has
	sp.shells.mu.Unlock()
	return has, nil
}

// command is the one place that turns a Procfile command line into the
// argv of a container of image: `/bin/sh -c LINE` when the image has a
// shell (pipes, $VARS and && work as on Heroku), else LINE split into
// arguments (SplitCommand) and run directly (images FROM scratch).
func (sp *specs) command(ctx context.Context, image, line string) ([]string, error) {
	has, err := sp.hasShell(ctx, image)
	if err != nil {
		return nil, err
	}
	return commandFor(line, has)
}

func commandFor(line string, hasShell bool) ([]string, error) {
	if hasShell {
		return []string{shellPath, "-c", line}, nil
	}
	args, err := SplitCommand(line)
	if err != nil {
		return nil, fmt.Errorf("%w: the image has no shell (%s), so the command %q is split into arguments: %w", ErrBadCommand, shellPath, line, err)
	}
	return args, nil
}

// SplitCommand splits a command line into arguments as a POSIX shell would
// for a simple command: on blanks, with 'single quotes' (literal), "double
// quotes" (where \ escapes " \ $ and `) and \ outside quotes. It expands
// nothing: no variables, globs or operators.
func SplitCommand(line string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord := false
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			inWord = true
			if i+1 >= len(rs) {
				return nil, errors.New("it ends with a lone \\")
			}
			i++
			if rs[i] != '\n' {
				cur.WriteRune(rs[i])
			}
		case c == '\'':
			inWord = true
			end := -1
			for j := i + 1; j < len(rs); j++ {
				if rs[j] == '\'' {
					end = j
					break
				}
			}
			if end < 0 {
				return nil, errors.New("a ' quote is not closed")
			}
			cur.WriteString(string(rs[i+1 : end]))
			i = end
		case c == '"':
			inWord = true
			closed := false
			for i++; i < len(rs); i++ {
				if rs[i] == '"' {
					closed = true
					break
				}
				if rs[i] == '\\' && i+1 < len(rs) && strings.ContainsRune("\"\\$`", rs[i+1]) {
					i++
				}
				cur.WriteRune(rs[i])
			}
			if !closed {
				return nil, errors.New("a \" quote is not closed")
			}
		default:
			inWord = true
			cur.WriteRune(c)
		}
	}
	if inWord {
		args = append(args, cur.String())
	}
	if len(args) == 0 {
		return nil, errors.New("it is empty")
	}
	return args, nil
}
