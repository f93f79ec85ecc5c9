package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/plat-paas/plat/api"
)

// client loads the config and returns a client for the daemon.
func (e *env) client() (*client, error) {
	cfg, err := loadConfig()
	if err != nil {
		return nil, err
	}
	if cfg.URL == "" || cfg.Token == "" {
		return nil, errors.New("not logged in: run `plat login URL --token TOKEN` (or set PLAT_URL and PLAT_TOKEN)")
	}
	return newClient(cfg.URL, cfg.Token, cfg.CAFile)
}

func cmdLogin(e *env, args []string) error {
	fs := e.flags()
	token := fs.String("token", "", "API token printed by the daemon (default $PLAT_TOKEN, else read from stdin)")
	caFile := fs.String("ca-file", os.Getenv("PLAT_CA_FILE"), "PEM root certificate to trust for an https URL (plat's local CA: `plat ca`)")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	base, err := normalizeURL(pos[0])
	if err != nil {
		return &usageError{err.Error()}
	}
	tok := strings.TrimSpace(*token)
	if tok == "" {
		tok = os.Getenv("PLAT_TOKEN")
	}
	if tok == "" && !isTerminal(e.stdin) {
		line, _ := bufio.NewReader(e.stdin).ReadString('\n')
		tok = strings.TrimSpace(line)
	}
	if tok == "" {
		return usagef("missing --token (the daemon prints its token when it starts)")
	}
	ca := *caFile
	if ca != "" {
		if ca, err = filepath.Abs(ca); err != nil {
			return err
		}
	}
	c, err := newClient(base, tok, ca)
	if err != nil {
		return err
	}
	if _, err := c.get(e.ctx, "/api/whoami", nil); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
			return fmt.Errorf("the daemon at %s refused that token: check it and try again", base)
		}
		return err
	}
	path, err := configPath()
	if err != nil {
		return err
	}
	if err := saveConfig(path, config{URL: base, Token: tok, CAFile: ca}); err != nil {
		return err
	}
	if os.Getenv("PLAT_URL") != "" || (os.Getenv("PLAT_TOKEN") != "" && os.Getenv("PLAT_TOKEN") != tok) {
		fmt.Fprintln(e.stderr, "note: PLAT_URL/PLAT_TOKEN are set in your environment and override the saved login")
	}
	if e.json {
		return writeJSON(e.stdout, map[string]any{"url": base, "config": path, "logged_in": true})
	}
	fmt.Fprintf(e.stdout, "Logged in to %s (saved in %s)\n", base, path)
	return nil
}

func cmdLogout(e *env, args []string) error {
	if _, err := e.parse(e.flags(), args, 0, 0); err != nil {
		return err
	}
	path, err := configPath()
	if err != nil {
		return err
	}
	err = os.Remove(path)
	removed := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("logging out: %v", err)
	}
	if os.Getenv("PLAT_TOKEN") != "" {
		fmt.Fprintln(e.stderr, "note: PLAT_TOKEN is still set in your environment")
	}
	if e.json {
		return writeJSON(e.stdout, map[string]any{"logged_out": removed, "config": path})
	}
	if removed {
		fmt.Fprintf(e.stdout, "Logged out (removed %s)\n", path)
	} else {
		fmt.Fprintln(e.stdout, "Not logged in")
	}
	return nil
}

// appCmd parses a command taking exactly one app NAME and returns it with a client.
func (e *env) appCmd(args []string) (string, *client, error) {
	pos, err := e.parse(e.flags(), args, 1, 1)
	if err != nil {
		return "", nil, err
	}
	c, err := e.client()
	return pos[0], c, err
}

func cmdApps(e *env, args []string) error {
	if _, err := e.parse(e.flags(), args, 0, 0); err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var apps []api.App
	raw, err := c.get(e.ctx, "/api/apps", &apps)
	if err != nil {
		return err
	}
	if e.json {
		return writeRawJSON(e.stdout, raw)
	}
	if len(apps) == 0 {
		fmt.Fprintln(e.stdout, "No apps yet: create one with `plat apps:create NAME`")
		return nil
	}
	sort.SliceStable(apps, func(i, j int) bool { return apps[i].Name < apps[j].Name })
	rows := [][]string{{"NAME", "STATUS", "REPLICAS", "RELEASE", "URL", "DEPLOYED"}}
	for _, a := range apps {
		rows = append(rows, []string{a.Name, statusString(a), replicasString(a), vstr(a.Active), orDash(a.URL), ago(a.DeployedAt)})
	}
	table(e.stdout, rows)
	for _, a := range apps { // beside the status, never instead of it
		if a.Warning != "" {
			fmt.Fprintf(e.stdout, "warning: %s: %s\n", a.Name, a.Warning)
		}
	}
	return nil
}

func cmdAppsCreate(e *env, args []string) error {
	name, c, err := e.appCmd(args)
	if err != nil {
		return err
	}
	raw, err := c.call(e.ctx, http.MethodPost, "/api/apps", map[string]string{"name": name})
	if err != nil {
		return err
	}
	var a api.App
	if done, err := e.jsonOrDecode(raw, &a); done || err != nil {
		return err
	}
	gitURL := a.GitURL
	if gitURL == "" {
		gitURL = c.base + "/git/" + url.PathEscape(name) + ".git"
	}
	fmt.Fprintf(e.stdout, "Created %s: %s\n\nNext, in your app's git repo:\n  git remote add platform %s\nor, to also let git use your plat token:\n  plat git:remote %s\n",
		a.Name, orDash(a.URL), gitURL, a.Name)
	return nil
}

func cmdAppsInfo(e *env, args []string) error {
	name, c, err := e.appCmd(args)
	if err != nil {
		return err
	}
	var a api.App
	raw, err := c.get(e.ctx, appPath(name), &a)
	if err != nil {
		return err
	}
	if e.json {
		return writeRawJSON(e.stdout, raw)
	}
	deployed := ago(a.DeployedAt)
	if !a.DeployedAt.IsZero() {
		deployed += " (" + a.DeployedAt.Local().Format("2006-01-02 15:04:05") + ")"
	}
	keys := append([]string(nil), a.EnvKeys...)
	sort.Strings(keys)
	cfgKeys := strings.Join(keys, ", ")
	if cfgKeys == "" {
		cfgKeys = "none"
	}
	rows := [][]string{
		{"name:", a.Name},
		{"status:", statusString(a)},
		{"release:", vstr(a.Active)},
		{"standby:", standbyString(a)},
		{"replicas:", replicasString(a)},
		{"scale:", scaleString(a.Scale)},
		{"url:", orDash(a.URL)},
		{"git url:", orDash(a.GitURL)},
		{"git sha:", orDash(shortSHA(a.GitSHA))},
		{"image:", orDash(shortImage(a.ImageID))},
		{"deployed:", deployed},
		{"health check:", healthString(a.Health)},
		{"config keys:", cfgKeys},
		{"hsts:", hstsString(a.HSTS)},
		{"strategy:", orDash(a.Strategy.Description)},
		{"release mode:", orDash(a.ReleaseMode)},
	}
	if a.Staged > 0 {
		rows = append(rows, []string{"staged:", fmt.Sprintf("v%d at %s", a.Staged, a.StagedURL)})
	}
	if a.Warning != "" { // beside the status: what it serves is the status
		rows = slices.Insert(rows, 2, []string{"warning:", a.Warning})
	}
	table(e.stdout, rows)
	return nil
}

func cmdAppsDestroy(e *env, args []string) error {
	fs := e.flags()
	confirm := fs.String("confirm", "", "the app's name again, to confirm")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	name := pos[0]
	how := fmt.Sprintf("to destroy it with its releases, config and containers, run: plat apps:destroy %s --confirm %s", name, name)
	switch {
	case *confirm == "":
		return fmt.Errorf("refusing to destroy %s without --confirm; %s", name, how)
	case *confirm != name:
		return fmt.Errorf("--confirm %s does not match the app name %s; %s", *confirm, name, how)
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	raw, err := c.call(e.ctx, http.MethodDelete, appPath(name)+"?confirm="+url.QueryEscape(name), nil)
	if err != nil {
		return err
	}
	if e.json {
		return writeRawJSON(e.stdout, raw)
	}
	fmt.Fprintf(e.stdout, "Destroyed %s\n", name)
	return nil
}

func cmdReleases(e *env, args []string) error {
	fs := e.flags()
	preview := fs.String("preview", "", "list the releases of the app's preview of this branch")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	name := pos[0]
	c, err := e.client()
	if err != nil {
		return err
	}
	if *preview != "" {
		if name, err = previewApp(e.ctx, c, name, *preview); err != nil {
			return err
		}
	}
	var raws []json.RawMessage
	if _, err := c.get(e.ctx, appPath(name, "releases"), &raws); err != nil {
		return err
	}
	type item struct {
		rel api.Release
		raw json.RawMessage
	}
	items := make([]item, len(raws))
	for i, r := range raws {
		items[i].raw = r
		if err := json.Unmarshal(r, &items[i].rel); err != nil {
			return fmt.Errorf("unexpected release in the answer: %v", err)
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].rel.Version > items[j].rel.Version })
	if e.json {
		out := make([]json.RawMessage, len(items))
		for i, it := range items {
			out[i] = it.raw
		}
		return writeJSON(e.stdout, out)
	}
	if len(items) == 0 {
		fmt.Fprintf(e.stdout, "%s has no releases yet: git push to deploy it (see `plat git:remote %s`)\n", name, name)
		return nil
	}
	rows := [][]string{{"VERSION", "CAUSE", "STATUS", "SHA", "CREATED", "REASON"}}
	for _, it := range items {
		r := it.rel
		reason := r.Reason
		if r.Status == api.ReleaseStaged && r.PreviewURL != "" {
			reason = r.PreviewURL // what a staged release is for
		}
		rows = append(rows, []string{vstr(r.Version), orDash(r.Cause), orDash(r.Status), orDash(shortSHA(r.GitSHA)), ago(r.CreatedAt), reason})
	}
	table(e.stdout, rows)
	return nil
}

// parseVersion reads "v3" or "3".
func parseVersion(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimPrefix(s, "v"), "V"))
	if err != nil || n <= 0 {
		return 0, usagef("bad release version %q: use vN or N, e.g. v3", s)
	}
	return n, nil
}

// releaseArgs reads a command's NAME vN arguments.
func (e *env) releaseArgs(args []string) (string, int, error) {
	pos, err := e.parse(e.flags(), args, 2, 2)
	if err != nil {
		return "", 0, err
	}
	v, err := parseVersion(pos[1])
	return pos[0], v, err
}

func cmdReleasesLog(e *env, args []string) error {
	return e.releaseText(args, "build-log", "log")
}

// releaseText prints a text kept with a release (GET
// .../releases/{v}/{kind}); with --json as {"app","version",key}.
func (e *env) releaseText(args []string, kind, key string) error {
	name, v, err := e.releaseArgs(args)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	resp, err := c.do(e.ctx, true, http.MethodGet, appPath(name, "releases", strconv.Itoa(v), kind), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if e.json {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return c.transportError(e.ctx, err)
		}
		return writeJSON(e.stdout, map[string]any{"app": name, "version": v, key: string(b)})
	}
	if _, err := io.Copy(e.stdout, resp.Body); err != nil {
		return c.transportError(e.ctx, err)
	}
	return nil
}

// cmdEvents prints an app's deploy events, oldest first like a log.
func cmdEvents(e *env, args []string) error {
	name, c, err := e.appCmd(args)
	if err != nil {
		return err
	}
	var events []api.Event
	raw, err := c.get(e.ctx, appPath(name, "events"), &events)
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e.stdout, json.RawMessage(raw))
	}
	if len(events) == 0 {
		fmt.Fprintf(e.stdout, "%s has no deploy events yet\n", name)
		return nil
	}
	rows := [][]string{{"TIME", "RELEASE", "EVENT", "MESSAGE"}}
	for _, ev := range events {
		rel := "-"
		if ev.Release > 0 {
			rel = vstr(ev.Release)
		}
		rows = append(rows, []string{ev.Time.Local().Format("2006-01-02 15:04:05"), rel, ev.Kind, ev.Message})
	}
	table(e.stdout, rows)
	return nil
}

func cmdConfig(e *env, args []string) error {
	fs := e.flags()
	preview := fs.Bool("preview", false, "show the values only the app's branch previews get")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	name := pos[0]
	c, err := e.client()
	if err != nil {
		return err
	}
	path := appPath(name, "config")
	if *preview {
		path = appPath(name, "preview-config")
	}
	var vars api.Config
	raw, err := c.get(e.ctx, path, &vars)
	if err != nil {
		return err
	}
	if e.json {
		return writeRawJSON(e.stdout, raw)
	}
	if len(vars) == 0 {
		fmt.Fprintf(e.stderr, "%s has no config vars: set some with `plat config:set %s KEY=VALUE`\n", name, name)
		return nil
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(e.stdout, "%s=%s\n", k, vars[k])
	}
	return nil
}

var keyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func checkKey(k string) error {
	if !keyRE.MatchString(k) {
		return usagef("invalid config key %q: keys are letters, digits and _, not starting with a digit (e.g. DATABASE_URL)", k)
	}
	return nil
}

func cmdConfigSet(e *env, args []string) error {
	fs := e.flags()
	var bf buildFlags
	bf.register(fs, false)
	preview := fs.Bool("preview", false, "set values only the app's branch previews get (over its config), from their next push")
	pos, err := e.parse(fs, args, 1, -1)
	if err != nil {
		return err
	}
	name := pos[0]
	bc, err := bf.change(fs, true)
	if err != nil {
		return err
	}
	if len(pos) == 1 && bc.Empty() {
		return usagef("give KEY=VALUE pairs, or --build-arg/--build-secret KEY=VALUE or --build-target NAME")
	}
	set := map[string]string{}
	for _, kv := range pos[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return usagef("%q is not KEY=VALUE", kv)
		}
		if err := checkKey(k); err != nil {
			return err
		}
		set[k] = v
	}
	if *preview {
		if !bc.Empty() || len(set) == 0 {
			return usagef("--preview takes KEY=VALUE pairs only")
		}
		return e.setPreviewConfig(name, api.ConfigChange{Set: set})
	}
	// Build settings make no release: the next push uses them.
	if !bc.Empty() {
		if err := e.changeBuild(name, bc); err != nil || len(set) == 0 {
			return err
		}
	}
	return e.deploy(name, appPath(name, "config"), api.ConfigChange{Set: set}, nil)
}

func cmdConfigUnset(e *env, args []string) error {
	fs := e.flags()
	var bf buildFlags
	bf.register(fs, true)
	preview := fs.Bool("preview", false, "unset values only the app's branch previews get")
	pos, err := e.parse(fs, args, 1, -1)
	if err != nil {
		return err
	}
	name := pos[0]
	bc, err := bf.change(fs, false)
	if err != nil {
		return err
	}
	if len(pos) == 1 && bc.Empty() {
		return usagef("give keys to unset, or --build-arg/--build-secret KEY or --build-target")
	}
	for _, k := range pos[1:] {
		if strings.Contains(k, "=") {
			return usagef("%q: config:unset takes only keys, not KEY=VALUE", k)
		}
		if err := checkKey(k); err != nil {
			return err
		}
	}
	if *preview {
		if !bc.Empty() || len(pos) == 1 {
			return usagef("--preview takes keys only")
		}
		return e.setPreviewConfig(name, api.ConfigChange{Unset: pos[1:]})
	}
	if !bc.Empty() {
		if err := e.changeBuild(name, bc); err != nil || len(pos) == 1 {
			return err
		}
	}
	return e.deploy(name, appPath(name, "config"), api.ConfigChange{Unset: pos[1:]}, nil)
}

func cmdRollback(e *env, args []string) error {
	pos, err := e.parse(e.flags(), args, 1, 2)
	if err != nil {
		return err
	}
	name, v := pos[0], 0
	if len(pos) == 2 {
		if v, err = parseVersion(pos[1]); err != nil {
			return err
		}
	}
	return e.deploy(name, appPath(name, "rollback"), api.Rollback{Version: v}, func(r api.Release) string {
		if r.RolledBackTo > 0 {
			return fmt.Sprintf("rolled back %s to v%d as v%d", name, r.RolledBackTo, r.Version)
		}
		return fmt.Sprintf("rolled back %s as v%d", name, r.Version)
	})
}

// deploy runs a long operation that ends in a release, streaming its progress
// lines (formatted by the daemon, as in a git push) to stderr. done formats the success line (nil: the
// default "myapp v5 (config) is live").
func (e *env) deploy(name, path string, body any, done func(api.Release) string) error {
	raw, err := e.operation(path, body, "plat releases "+name)
	if err != nil {
		return err
	}
	var r api.Release
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("unexpected release in the answer: %v", err)
	}
	if r.Status == "failed" {
		return fmt.Errorf("%s v%d failed: %s", name, r.Version, orDash(r.Reason))
	}
	if e.json {
		return writeRawJSON(e.stdout, raw)
	}
	msg := fmt.Sprintf("%s v%d (%s) is live", name, r.Version, r.Cause)
	if r.Status == api.ReleaseStaged {
		msg = fmt.Sprintf("v%d is staged at %s (plat promote %s v%d to release it)", r.Version, orDash(r.PreviewURL), name, r.Version)
	} else if done != nil {
		msg = done(r)
	}
	fmt.Fprintln(e.stdout, msg)
	return nil
}

// operation runs a long operation, streaming its progress lines (formatted
// by the daemon, as in a git push) to stderr, and returns its raw result.
// check is the command that shows how it ended after an interruption.
func (e *env) operation(path string, body any, check string) (json.RawMessage, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	raw, err := c.stream(e.ctx, path, body, func(msg string) {
		fmt.Fprintln(e.stderr, msg)
	})
	switch {
	case errors.Is(err, errInterrupted):
		return nil, fmt.Errorf("interrupted: the daemon may still finish; check with `%s`", check)
	case errors.Is(err, errStreamEnded):
		return nil, fmt.Errorf("%v: check with `%s`", err, check)
	}
	return raw, err
}

func cmdHealthSet(e *env, args []string) error {
	fs := e.flags()
	path := fs.String("path", "", "HTTP path to check, e.g. /up")
	timeout := fs.String("timeout", "", "time limit of one attempt, e.g. 2s")
	interval := fs.String("interval", "", "pause between attempts, e.g. 500ms")
	deadline := fs.String("deadline", "", "time limit of the whole check, e.g. 60s")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	name := pos[0]
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	delete(given, "json")
	if len(given) == 0 {
		return usagef("nothing to change: give --path, --timeout, --interval or --deadline")
	}
	if given["path"] && !strings.HasPrefix(*path, "/") {
		return usagef("--path %q must start with /", *path)
	}
	durs := map[string]*string{"timeout": timeout, "interval": interval, "deadline": deadline}
	parsed := map[string]time.Duration{}
	for _, k := range []string{"timeout", "interval", "deadline"} {
		if !given[k] {
			continue
		}
		d, err := time.ParseDuration(*durs[k])
		if err != nil || d <= 0 {
			return usagef("--%s %q: give a positive duration like 2s or 500ms", k, *durs[k])
		}
		parsed[k] = d
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	// The daemon merges (PUT and PATCH alike): only the settings given
	// are sent, the others keep their values.
	var h api.HealthCheck
	if given["path"] {
		h.Path = *path
	}
	if d, ok := parsed["timeout"]; ok {
		h.Timeout = api.Duration(d)
	}
	if d, ok := parsed["interval"]; ok {
		h.Interval = api.Duration(d)
	}
	if d, ok := parsed["deadline"]; ok {
		h.Deadline = api.Duration(d)
	}
	raw, err := c.call(e.ctx, http.MethodPut, appPath(name, "health"), h)
	if err != nil {
		return err
	}
	var a api.App
	if done, err := e.jsonOrDecode(raw, &a); done || err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s health check: %s\n", name, healthString(a.Health))
	return nil
}

func cmdLogs(e *env, args []string) error {
	fs := e.flags()
	follow := fs.Bool("f", false, "keep following the output until Ctrl-C")
	n := fs.Int("n", 100, "number of recent lines to show first")
	source := fs.String("source", "", "only the app's output (app) or the router's request lines (router)")
	preview := fs.String("preview", "", "show the output of the app's preview of this branch")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *n < 0 {
		return usagef("-n must be 0 or more")
	}
	if *source != "" && *source != "app" && *source != "router" {
		return usagef("--source %q: say app (the app's output) or router (its request lines)", *source)
	}
	name := pos[0]
	c, err := e.client()
	if err != nil {
		return err
	}
	if *preview != "" {
		if name, err = previewApp(e.ctx, c, name, *preview); err != nil {
			return err
		}
	}
	if *follow {
		return followLogs(e, c, name, *source, *n)
	}
	q := url.Values{"tail": {strconv.Itoa(*n)}}
	if *source != "" {
		q.Set("source", *source)
	}
	resp, err := c.do(e.ctx, true, http.MethodGet, appPath(name, "logs")+"?"+q.Encode(), nil)
	if errors.Is(err, errInterrupted) {
		return nil
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if e.json {
		enc := json.NewEncoder(e.stdout)
		br := bufio.NewReader(resp.Body)
		for {
			line, rerr := br.ReadString('\n')
			if line != "" {
				if err := enc.Encode(map[string]string{"app": name, "line": strings.TrimSuffix(line, "\n")}); err != nil {
					return err
				}
			}
			if rerr != nil {
				err = rerr
				break
			}
		}
	} else {
		err = copyLogs(e.stdout, resp.Body, isTerminal(e.stdout))
	}
	if err == nil || errors.Is(err, io.EOF) || e.ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("the log stream broke: %v", err)
}
