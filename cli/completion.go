package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plat-paas/plat/api"
)

// completionTimeout bounds a completion's calls to the daemon: a shell
// waits for them at every TAB, so a slow daemon means no suggestions.
const completionTimeout = 2 * time.Second

// hiddenCommands run but are not listed by `plat help`.
var hiddenCommands []*command

func init() {
	hiddenCommands = []*command{
		{"__complete", "WORD...", "print completions for the command line WORD... (the last is the word being completed); the shell scripts call it", cmdComplete},
	}
}

// errDescribed: parse stored the command's FlagSet instead of parsing.
var errDescribed = errors.New("flags described")

// argKind is what a positional argument names.
type argKind int

const (
	argNone      argKind = iota
	argApp               // an app name
	argRelease           // a release version of the app named before it
	argCommand           // a plat command
	argToken             // an API token name
	argConfigKey         // a config var of the app named before it
	argChoice            // one of a fixed list
)

// argSpec is one positional argument of a command.
type argSpec struct {
	kind    argKind
	choices []string
}

// flagGroupRE matches the optional flag groups of a usage: "[--max-age 1y]", "[flags]".
var flagGroupRE = regexp.MustCompile(`\[(?:-[^\]]*|flags)\]`)

// positionals reads a command's positional arguments from its usage line
// (the command table in main.go), and whether the last one repeats.
func positionals(c *command) (specs []argSpec, repeats bool) {
	words := strings.Fields(flagGroupRE.ReplaceAllString(c.args, ""))
	for i := 0; i < len(words); i++ {
		w := words[i]
		if strings.HasPrefix(w, "-") { // "--confirm NAME": a flag and its value
			if i+1 < len(words) && !strings.HasPrefix(words[i+1], "-") {
				i++
			}
			continue
		}
		w = strings.Trim(w, "[]")
		repeats = strings.HasSuffix(w, "...")
		w = strings.TrimSuffix(w, "...")
		specs = append(specs, specFor(c.name, w))
	}
	return specs, repeats
}

func specFor(cmd, word string) argSpec {
	switch {
	case strings.Contains(word, "|"):
		return argSpec{kind: argChoice, choices: strings.Split(word, "|")}
	case word == "NAME" && strings.HasPrefix(cmd, "tokens:"):
		return argSpec{kind: argToken}
	case word == "NAME" && cmd == "tokens:create", word == "NAME" && cmd == "apps:create":
		return argSpec{} // a new name
	case word == "NAME":
		return argSpec{kind: argApp}
	case word == "vN":
		return argSpec{kind: argRelease}
	case word == "COMMAND":
		return argSpec{kind: argCommand}
	case word == "KEY" && cmd == "config:unset":
		return argSpec{kind: argConfigKey}
	}
	return argSpec{}
}

// describeFlags returns the FlagSet c parses, by running it in a mode where
// its first e.parse call hands over the FlagSet and returns.
func describeFlags(c *command) *flag.FlagSet {
	var fs *flag.FlagSet
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a command that reached the network anyway would stop at once
	e := &env{ctx: ctx, stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, cmd: c, describe: &fs}
	if err := c.run(e, nil); !errors.Is(err, errDescribed) || fs == nil {
		return flag.NewFlagSet(c.name, flag.ContinueOnError)
	}
	return fs
}

// completer answers `plat __complete`; fetch calls the daemon (nil: no
// daemon, e.g. not logged in).
type completer struct {
	fetch func(path string, out any) error
}

// complete returns the candidates for the last of words (the word being
// completed, "" after a space), given the words before it; words do not
// include "plat" itself.
func (cp *completer) complete(words []string) []string {
	if len(words) == 0 {
		return nil
	}
	cur, before := words[len(words)-1], words[:len(words)-1]
	for len(before) > 0 && strings.HasPrefix(before[0], "-") { // global flags: --json
		before = before[1:]
	}
	if len(before) == 0 {
		if strings.HasPrefix(cur, "-") {
			return matching([]string{"--json", "--help", "--version"}, cur)
		}
		return matching(commandNames(), cur)
	}
	c := findCommand(before[0])
	if c == nil {
		return nil
	}
	fs := describeFlags(c)
	var pos []string
	args := before[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return nil // what follows is the app's own command line
		}
		if len(a) > 1 && a[0] == '-' {
			if f := lookupFlag(fs, a); f != nil && !isBoolFlag(f) && !strings.Contains(a, "=") {
				if i == len(args)-1 {
					return cp.flagValue(f, pos, cur)
				}
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	if strings.HasPrefix(cur, "-") {
		var names []string
		fs.VisitAll(func(f *flag.Flag) {
			if len(f.Name) == 1 {
				names = append(names, "-"+f.Name) // -f, -n
			} else {
				names = append(names, "--"+f.Name)
			}
		})
		return matching(names, cur)
	}
	specs, repeats := positionals(c)
	n := len(pos)
	if n >= len(specs) {
		if !repeats || len(specs) == 0 {
			return nil
		}
		n = len(specs) - 1
	}
	return cp.values(specs[n], pos, cur)
}

// flagValue completes the value of flag f: a release for --release.
func (cp *completer) flagValue(f *flag.Flag, pos []string, cur string) []string {
	if f.Name == "release" {
		return cp.values(argSpec{kind: argRelease}, pos, cur)
	}
	return nil
}

func (cp *completer) values(spec argSpec, pos []string, cur string) []string {
	app := ""
	if len(pos) > 0 {
		app = pos[0]
	}
	switch spec.kind {
	case argChoice:
		return matching(spec.choices, cur)
	case argCommand:
		return matching(commandNames(), cur)
	case argApp:
		var apps []api.App
		if cp.get("/api/apps", &apps) != nil {
			return nil
		}
		names := make([]string, len(apps))
		for i, a := range apps {
			names[i] = a.Name
		}
		return matching(names, cur)
	case argToken:
		var toks []api.Token
		if cp.get("/api/tokens", &toks) != nil {
			return nil
		}
		names := make([]string, len(toks))
		for i, t := range toks {
			names[i] = t.Name
		}
		return matching(names, cur)
	case argRelease:
		var rels []api.Release
		if app == "" || cp.get(appPath(app, "releases"), &rels) != nil {
			return nil
		}
		slices.SortFunc(rels, func(a, b api.Release) int { return b.Version - a.Version })
		prefix := "v"
		if cur != "" && cur[0] >= '0' && cur[0] <= '9' {
			prefix = "" // the user types bare numbers
		}
		vs := make([]string, len(rels))
		for i, r := range rels {
			vs[i] = prefix + strconv.Itoa(r.Version)
		}
		return matching(vs, cur)
	case argConfigKey:
		var a api.App
		if app == "" || cp.get(appPath(app), &a) != nil {
			return nil
		}
		return matching(a.EnvKeys, cur)
	}
	return nil
}

func (cp *completer) get(path string, out any) error {
	if cp.fetch == nil {
		return errors.New("no daemon")
	}
	return cp.fetch(path, out)
}

func lookupFlag(fs *flag.FlagSet, arg string) *flag.Flag {
	name := strings.TrimLeft(arg, "-")
	name, _, _ = strings.Cut(name, "=")
	return fs.Lookup(name)
}

func isBoolFlag(f *flag.Flag) bool {
	bf, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && bf.IsBoolFlag()
}

// commandNames lists the listed commands (not the hidden ones).
func commandNames() []string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	return names
}

// matching returns the candidates that start with prefix, in order.
func matching(cands []string, prefix string) []string {
	var out []string
	for _, c := range cands {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// cmdComplete is `plat __complete WORD...`: one candidate a line. It is
// silent on every error (not logged in, daemon down): a shell prints
// whatever it gets in the middle of the user's command line.
func cmdComplete(e *env, args []string) error {
	cp := &completer{}
	if c, err := e.client(); err == nil {
		c.plain.Timeout = completionTimeout
		cp.fetch = func(path string, out any) error {
			ctx, cancel := context.WithTimeout(e.ctx, completionTimeout)
			defer cancel()
			_, err := c.get(ctx, path, out)
			return err
		}
	}
	for _, s := range cp.complete(args) {
		fmt.Fprintln(e.stdout, s)
	}
	return nil
}

func cmdCompletion(e *env, args []string) error {
	pos, err := e.parse(e.flags(), args, 1, 1)
	if err != nil {
		return err
	}
	script, ok := completionScripts[pos[0]]
	if !ok {
		return usagef("no completion for the shell %q: choose bash, zsh or fish", pos[0])
	}
	_, err = io.WriteString(e.stdout, script)
	return err
}

// completionScripts ask `plat __complete` for the candidates, so commands,
// flags, app names and releases come from this binary and the daemon.
var completionScripts = map[string]string{
	"bash": `# bash completion for plat. Load it with
#   eval "$(plat completion bash)"        (e.g. in ~/.bashrc), or save it:
#   plat completion bash > ~/.local/share/bash-completion/completions/plat
_plat() {
    local line="${COMP_LINE:0:COMP_POINT}" cur
    local -a words
    read -r -a words <<<"$line"
    case "$line" in *[[:space:]]) words+=("") ;; esac
    [ "${#words[@]}" -lt 2 ] && return 0
    cur="${words[${#words[@]}-1]}"
    local IFS=$'\n'
    COMPREPLY=($(command plat __complete "${words[@]:1}" 2>/dev/null))
    # bash splits words at ':' (apps:create): replace only the part after it.
    if [[ "$cur" == *:* && "$COMP_WORDBREAKS" == *:* ]]; then
        local pre="${cur%"${cur##*:}"}" i
        for i in "${!COMPREPLY[@]}"; do COMPREPLY[i]="${COMPREPLY[i]#"$pre"}"; done
    fi
    return 0
}
complete -o default -F _plat plat
`,
	"zsh": `#compdef plat
# zsh completion for plat. Load it with
#   source <(plat completion zsh)          (after compinit, e.g. in ~/.zshrc), or save it:
#   plat completion zsh > "${fpath[1]}/_plat"
_plat() {
  local -a cands
  cands=("${(@f)$(plat __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
  cands=(${cands:#})
  if (( ${#cands} )); then
    compadd -- "${cands[@]}"
  else
    _files
  fi
}
if [ "$funcstack[1]" = "_plat" ]; then
  _plat "$@"
else
  compdef _plat plat
fi
`,
	"fish": `# fish completion for plat. Load it with
#   plat completion fish | source, or save it:
#   plat completion fish > ~/.config/fish/completions/plat.fish
function __plat_complete
    set -l words (commandline -opc)
    set -e words[1]
    plat __complete $words (commandline -ct) 2>/dev/null
end
complete -c plat -f -a '(__plat_complete)'
`,
}
