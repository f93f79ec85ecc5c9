// Package cli is plat's command-line client: Heroku-style topic:command
// commands that talk to the daemon's HTTP API (docs/api.md).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
)

// Version is the CLI version; set it with -ldflags "-X github.com/plat-paas/plat/cli.Version=v1.2.3".
var Version = "dev"

func version() string {
	if Version == "dev" {
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
	}
	return Version
}

// command is one `plat` command.
type command struct {
	name    string
	args    string // usage after the name
	summary string
	run     func(e *env, args []string) error
}

var commands []*command

func init() {
	commands = []*command{
		{"login", "URL --token TOKEN", "check a token against the daemon and save both", cmdLogin},
		{"logout", "", "forget the saved daemon URL and token", cmdLogout},
		{"apps", "", "list apps", cmdApps},
		{"apps:create", "NAME", "create an app", cmdAppsCreate},
		{"apps:info", "NAME", "show an app's details", cmdAppsInfo},
		{"apps:destroy", "NAME --confirm NAME", "delete an app, its releases and containers", cmdAppsDestroy},
		{"releases", "NAME [--preview BRANCH]", "list an app's releases (or its preview's), newest first", cmdReleases},
		{"previews", "NAME", "list an app's branch previews: branch, release, URL, last push, status", cmdPreviews},
		{"releases:log", "NAME vN", "print a release's build log", cmdReleasesLog},
		{"releases:dockerfile", "NAME vN", "print the Dockerfile plat generated for a release pushed without one", cmdReleasesDockerfile},
		{"events", "NAME", "show an app's timeline (deploys, rollbacks, scaling, sleeping and waking)", cmdEvents},
		{"dora", "[NAME] [--days 30]", "show the DORA metrics (deploy frequency, lead time, change failure rate, time to restore) of an app or of all apps, with their trend", cmdDora},
		{"config", "NAME [--preview]", "print an app's config vars (or its preview-only values) as KEY=VALUE", cmdConfig},
		{"config:set", "NAME KEY=VALUE...", "set config vars and deploy a new release; --build-arg K=V, --build-secret K=V, --build-target STAGE set what the next push builds with (no release); --preview sets values only branch previews get", cmdConfigSet},
		{"config:unset", "NAME KEY...", "remove config vars and deploy a new release; --build-arg K, --build-secret K, --build-target remove build settings (no release); --preview unsets preview-only values", cmdConfigUnset},
		{"config:build", "NAME", "print an app's build args, build secret names and build target", cmdConfigBuild},
		{"deploy:cancel", "NAME", "cancel an app's running deploy (push, config change, rollback); the previous release keeps serving", cmdDeployCancel},
		{"release-mode", "NAME", "show whether an app's pushes go live (auto) or are staged (manual)", cmdReleaseMode},
		{"release-mode:set", "NAME auto|manual", "manual: pushes and config changes are staged at https://vN.NAME.<domain>/ until promoted", cmdReleaseModeSet},
		{"promote", "NAME vN", "release the staged vN through the app's strategy", cmdPromote},
		{"releases:unstage", "NAME vN", "stop the staged vN's containers", cmdUnstage},
		{"rollback", "NAME [vN]", "redeploy an earlier release (default: the one before the active one)", cmdRollback},
		{"scale", "NAME [web=N] [flags]", "show or change an app's replicas (web=3), sleep when idle (--min 0 --idle 5m), autoscaling (--max 5 --target 10)", cmdScale},
		{"resources", "NAME", "show an app's memory and CPU limits and whether its root filesystem is read-only", cmdResources},
		{"resources:set", "NAME [--memory 512m] [--cpus 0.5] [--read-only on|off]", "change an app's limits and deploy a new release", cmdResourcesSet},
		{"ps", "NAME", "list an app's replicas (containers) and their state", cmdPs},
		{"run", "NAME [--release vN] [-i] [--no-tty] -- CMD [ARGS...]", "run a one-off command in a new container of the app's release (exit code passed through; a terminal when stdin is one)", cmdRun},
		{"restart", "NAME", "replace every replica with a new container of the same release (health-checked, no downtime)", cmdRestart},
		{"health:set", "NAME [flags]", "change the health check: --path, --timeout, --interval, --deadline", cmdHealthSet},
		{"strategy", "NAME", "show how an app's new releases go live (blue-green, canary, rolling or in-place) and the settings", cmdStrategy},
		{"strategy:set", "NAME blue-green|canary|rolling|in-place [flags]", "choose how the app's next releases go live; canary: --steps --step-time --max-error-rate --max-p99 --min-requests, rolling: --batch, in-place: --hold (unset flags take their defaults)", cmdStrategySet},
		{"rollout", "NAME [-f]", "show the rollout in progress: step, weights, per-release requests, 5xx %, p50/p99 (-f follows it to its end)", cmdRollout},
		{"rollout:promote", "NAME", "skip the remaining steps of the rollout in progress: the new release serves alone now", cmdRolloutPromote},
		{"rollout:abort", "NAME", "abort the rollout in progress: all traffic back on the stable release now, the new release failed", cmdRolloutAbort},
		{"logs", "NAME [-f] [-n 100] [--source app|router] [--preview BRANCH]", "print an app's (or its preview's) output and the router's request lines; -f follows them", cmdLogs},
		{"logs:router", "NAME on|off", "turn the router's request lines in an app's logs on (the default) or off", cmdLogsRouter},
		{"metrics", "NAME [--since 1h] [--step 5m]", "show an app's traffic: requests, status classes, p50/p95/p99 latency, bytes, in flight (kept 24h)", cmdMetrics},
		{"domains", "NAME", "list the host names an app is served at", cmdDomains},
		{"domains:add", "NAME HOST", "serve an app at a custom domain too (HTTPS certificate on first visit)", cmdDomainsAdd},
		{"domains:remove", "NAME HOST", "stop serving an app at a custom domain", cmdDomainsRemove},
		{"tokens", "", "list API tokens: name, created, last used, expiry (never the secret)", cmdTokens},
		{"tokens:create", "NAME [--expires 90d]", "create an API token and print its secret once", cmdTokensCreate},
		{"tokens:revoke", "NAME [--force]", "revoke an API token at once: API, git, dashboard sessions and open connections", cmdTokensRevoke},
		{"hsts:set", "NAME on|off [--max-age 1y]", "send Strict-Transport-Security on the app's HTTPS hosts with a public certificate", cmdHSTSSet},
		{"flags", "NAME", "list an app's feature flags and their rollout (the router tells the app in the Plat-Flags header)", cmdFlags},
		{"flags:set", "NAME FLAG=25%|on|off...", "turn feature flags on for a share of users (sticky per browser), everyone or no one; applies at once, no release", cmdFlagsSet},
		{"flags:unset", "NAME FLAG", "remove a feature flag", cmdFlagsUnset},
		{"shadow", "NAME [vN] [--percent 100] [--methods GET,HEAD]", "mirror live requests to a running non-active release (vN) and compare its answers; without vN, show the comparison: mirrored, dropped, status match, p50/p99 live vs shadow", cmdShadow},
		{"shadow:stop", "NAME", "stop mirroring an app's live requests and print the final comparison", cmdShadowStop},
		{"nodes", "", "list the swarm's nodes: role, state, address and the apps' replicas on each (daemon in swarm mode)", cmdNodes},
		{"nodes:join-command", "", "print the command a new host runs to join the swarm as a worker", cmdNodesJoinCommand},
		{"ca", "", "print the root certificate of plat's local CA (trust it for https://APP.localhost)", cmdCA},
		{"git:url", "NAME", "print an app's git URL", cmdGitURL},
		{"git:remote", "NAME [--remote platform] [--ssh]", "add the app as a git remote here, authenticated with your token (--ssh: with your SSH key)", cmdGitRemote},
		{"keys", "", "list SSH keys that may git push (name, type, fingerprint, added) and the daemon's host key", cmdKeys},
		{"keys:add", "NAME PATH_TO_PUBKEY|-", "allow an SSH public key to git push over SSH (- reads it from stdin)", cmdKeysAdd},
		{"keys:remove", "NAME", "remove an SSH key: its next connection is refused", cmdKeysRemove},
		{"git-credential", "get|store|erase", "git credential helper (git:remote sets it up)", cmdGitCredential},
		{"open", "NAME [--print]", "open an app in the browser (--print: only print its URL)", cmdOpen},
		{"dashboard", "[--print]", "open the dashboard logged in, through a one-time login link (valid for a minute; never the token in a URL)", cmdDashboard},
		{"completion", "bash|zsh|fish", "print a shell completion script (commands, flags, app names, releases)", cmdCompletion},
		{"version", "", "print plat's version", cmdVersion},
		{"help", "[COMMAND]", "show this help, or a command's", cmdHelp},
	}
}

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	for _, c := range hiddenCommands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// env is what a command runs with.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	json   bool // --json
	cmd    *command
	// describe, when set, receives the command's FlagSet at its first
	// parse, which then returns errDescribed (shell completion).
	describe **flag.FlagSet
}

// usageError is bad command-line input; it exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// errHelpShown: -h was given and the help was printed.
var errHelpShown = errors.New("help shown")

// Main runs the plat CLI with args (without the program name) and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}

	args = append([]string(nil), args...)
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "--json", "-json", "--json=true", "-json=true":
			e.json = true
			args = args[1:]
			continue
		case "-h", "-help", "--help":
			args[0] = "help"
		case "-v", "-version", "--version":
			args[0] = "version"
		default:
			fmt.Fprintf(stderr, "plat: unknown flag %s before the command: run `plat help`\n", args[0])
			return 2
		}
		break
	}
	if len(args) == 0 {
		args = []string{"help"}
	}
	e.cmd = findCommand(args[0])
	if e.cmd == nil {
		fmt.Fprintf(stderr, "plat: unknown command %q: run `plat help` for the list\n", args[0])
		return 2
	}
	err := e.cmd.run(e, args[1:])
	var ue *usageError
	var ec *exitCodeError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ec):
		return ec.code
	case errors.Is(err, errHelpShown):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "plat: %s\nusage: plat %s\n", ue.msg, e.cmd.usage())
		return 2
	default:
		fmt.Fprintf(stderr, "plat: %s\n", err)
		return 1
	}
}

func (c *command) usage() string {
	if c.args == "" {
		return c.name
	}
	return c.name + " " + c.args
}

// flags makes a command's FlagSet, with the global --json.
func (e *env) flags() *flag.FlagSet {
	fs := flag.NewFlagSet(e.cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&e.json, "json", e.json, "print JSON to stdout instead of text")
	return fs
}

// parse parses flags given anywhere among args (e.g. `plat logs myapp -f`)
// and returns the positional arguments, checking there are min to max of
// them (max < 0: no limit). Everything after "--" is positional.
func (e *env) parse(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	if e.describe != nil {
		*e.describe = fs
		return nil, errDescribed
	}
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // Parse reports it
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if err := fs.Parse(flags); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			e.printCommandHelp(fs)
			return nil, errHelpShown
		}
		return nil, &usageError{err.Error()}
	}
	pos = append(pos, fs.Args()...)
	switch {
	case len(pos) < min:
		return nil, usagef("not enough arguments")
	case max >= 0 && len(pos) > max:
		return nil, usagef("unexpected argument %q", pos[max])
	}
	return pos, nil
}

func (e *env) printCommandHelp(fs *flag.FlagSet) {
	fmt.Fprintf(e.stdout, "usage: plat %s\n\n%s.\n\nflags:\n", e.cmd.usage(), capitalize(e.cmd.summary))
	fs.SetOutput(e.stdout)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func cmdHelp(e *env, args []string) error {
	fs := e.flags()
	pos, err := e.parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	if len(pos) == 1 {
		c := findCommand(pos[0])
		if c == nil {
			return usagef("unknown command %q", pos[0])
		}
		sub := &env{ctx: e.ctx, stdin: e.stdin, stdout: e.stdout, stderr: e.stderr, cmd: c}
		return c.run(sub, []string{"-h"})
	}
	if e.json {
		type entry struct {
			Command string `json:"command"`
			Usage   string `json:"usage"`
			Summary string `json:"summary"`
		}
		var list []entry
		for _, c := range commands {
			list = append(list, entry{c.name, "plat " + c.usage(), c.summary})
		}
		return writeJSON(e.stdout, list)
	}
	w := e.stdout
	fmt.Fprint(w, "plat: git push to deploy, on your own server.\n\nusage: plat COMMAND [ARGS] [--json]\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.usage(), c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, `
Every command takes --json to print JSON instead of text, and -h for its help.
Flags may come before or after arguments.

Environment: PLAT_URL and PLAT_TOKEN override the saved login;
PLAT_CONFIG is the config file (default $XDG_CONFIG_HOME/plat/config.json).
`)
	return nil
}

func cmdVersion(e *env, args []string) error {
	if _, err := e.parse(e.flags(), args, 0, 0); err != nil {
		return err
	}
	if e.json {
		return writeJSON(e.stdout, map[string]string{
			"version": version(), "go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
		})
	}
	fmt.Fprintf(e.stdout, "plat %s (%s, %s/%s)\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
