package cli

import (
	"flag"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/plat-paas/plat/api"
)

// listFlag collects a flag given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// buildFlags are config:set's and config:unset's build flags.
type buildFlags struct {
	args, secrets listFlag
	target        string
	targetSet     bool
}

func (b *buildFlags) register(fs *flag.FlagSet, unset bool) {
	if unset {
		fs.Var(&b.args, "build-arg", "remove a build arg (KEY; repeatable)")
		fs.Var(&b.secrets, "build-secret", "remove a build secret (ID; repeatable)")
		fs.BoolVar(&b.targetSet, "build-target", false, "build the Dockerfile's last stage again")
		return
	}
	fs.Var(&b.args, "build-arg", "set a Dockerfile ARG for the next builds (KEY=VALUE; repeatable)")
	fs.Var(&b.secrets, "build-secret", "set a build secret for RUN --mount=type=secret,id=ID (ID=VALUE; repeatable); never shown, logged or put in the image or the env")
	fs.StringVar(&b.target, "build-target", "", "build this Dockerfile stage (FROM ... AS NAME) instead of the last one")
}

// change turns the flags into a build change; set says whether they set
// (KEY=VALUE) or unset (KEY) values.
func (b *buildFlags) change(fs *flag.FlagSet, set bool) (api.BuildChange, error) {
	var c api.BuildChange
	for _, list := range []struct {
		vals  listFlag
		flag  string
		set   *map[string]string
		unset *[]string
	}{{b.args, "--build-arg", &c.SetArgs, &c.UnsetArgs}, {b.secrets, "--build-secret", &c.SetSecrets, &c.UnsetSecrets}} {
		for _, kv := range list.vals {
			k, v, ok := strings.Cut(kv, "=")
			switch {
			case set && !ok:
				return c, usagef("%s %q is not KEY=VALUE", list.flag, kv)
			case !set && ok:
				return c, usagef("%s %q: config:unset takes only the KEY", list.flag, kv)
			case set:
				if *list.set == nil {
					*list.set = map[string]string{}
				}
				(*list.set)[k] = v
			default:
				*list.unset = append(*list.unset, k)
			}
		}
	}
	if set {
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "build-target" {
				c.Target = &b.target
			}
		})
	} else if b.targetSet {
		empty := ""
		c.Target = &empty
	}
	return c, nil
}

// changeBuild sends a build change and prints the settings it made.
func (e *env) changeBuild(name string, c api.BuildChange) error {
	cl, err := e.client()
	if err != nil {
		return err
	}
	raw, err := cl.call(e.ctx, http.MethodPatch, appPath(name, "build"), c)
	if err != nil {
		return err
	}
	var b api.BuildSettings
	if done, err := e.jsonOrDecode(raw, &b); done || err != nil {
		return err
	}
	printBuildSettings(e, name, b)
	return nil
}

func printBuildSettings(e *env, name string, b api.BuildSettings) {
	keys := make([]string, 0, len(b.Args))
	for k := range b.Args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(e.stdout, "%s build settings (%s):\n", name, b.Note)
	for _, k := range keys {
		fmt.Fprintf(e.stdout, "  build arg     %s=%s\n", k, b.Args[k])
	}
	for _, k := range b.Secrets {
		fmt.Fprintf(e.stdout, "  build secret  %s (value hidden)\n", k)
	}
	target := b.Target
	if target == "" {
		target = "(the last stage)"
	}
	fmt.Fprintf(e.stdout, "  build target  %s\n", target)
}

// cmdConfigBuild prints an app's build settings (secret names only).
func cmdConfigBuild(e *env, args []string) error {
	name, c, err := e.appCmd(args)
	if err != nil {
		return err
	}
	var b api.BuildSettings
	raw, err := c.get(e.ctx, appPath(name, "build"), &b)
	if err != nil {
		return err
	}
	if e.json {
		return writeRawJSON(e.stdout, raw)
	}
	printBuildSettings(e, name, b)
	return nil
}
