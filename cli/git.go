package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/plat-paas/plat/api"
)

// executable is the path git runs as the credential helper; tests replace it.
var executable = os.Executable

func gitURL(base, app string) string {
	return base + "/git/" + url.PathEscape(app) + ".git"
}

func cmdGitURL(e *env, args []string) error {
	pos, err := e.parse(e.flags(), args, 1, 1)
	if err != nil {
		return err
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	if cfg.URL == "" {
		return errors.New("not logged in: run `plat login URL --token TOKEN` (or set PLAT_URL and PLAT_TOKEN)")
	}
	u := gitURL(cfg.URL, pos[0])
	if e.json {
		return writeJSON(e.stdout, map[string]string{"app": pos[0], "git_url": u})
	}
	fmt.Fprintln(e.stdout, u)
	return nil
}

// git runs git in the current directory and returns its trimmed output.
func (e *env) git(args ...string) (string, error) {
	cmd := exec.CommandContext(e.ctx, "git", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", errors.New("git is not installed or not on PATH")
		}
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("git %s: %s", strings.Join(args, " "), msg)
	}
	return strings.TrimSpace(out.String()), nil
}

func cmdGitRemote(e *env, args []string) error {
	fs := e.flags()
	remote := fs.String("remote", "platform", "name of the git remote")
	overSSH := fs.Bool("ssh", false, "push over SSH with your registered key (plat keys:add) instead of HTTP with your token")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	name := pos[0]
	if *remote == "" {
		return usagef("--remote must not be empty")
	}
	if _, err := e.git("rev-parse", "--git-dir"); err != nil {
		if strings.Contains(err.Error(), "not installed") {
			return err
		}
		return errors.New("not inside a git repository: cd into your app's repo (or run `git init`) first")
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	if _, err := c.get(e.ctx, appPath(name), nil); err != nil { // the app must exist
		return err
	}
	u := gitURL(c.base, name)
	var info api.SSHInfo
	if *overSSH {
		if _, err := c.get(e.ctx, "/api/ssh", &info); err != nil {
			return err
		}
		if !info.Enabled {
			return errors.New("this daemon does not serve SSH (it runs with --ssh \"\"): use `plat git:remote " + name + "` (HTTP) or ask the operator to turn SSH on")
		}
		if u, err = sshRemoteURL(c.base, info.Port, name); err != nil {
			return err
		}
	}
	if _, err := e.git("remote", "get-url", *remote); err == nil {
		_, err = e.git("remote", "set-url", *remote, u)
		if err != nil {
			return err
		}
	} else if _, err := e.git("remote", "add", *remote, u); err != nil {
		return err
	}

	if *overSSH {
		return e.sshRemoteAdded(name, *remote, u, info)
	}
	exe, err := executable()
	if err != nil {
		return fmt.Errorf("cannot find the plat binary for git's credential helper: %v", err)
	}
	if abs, err := filepath.Abs(exe); err == nil {
		exe = abs
	}
	helper := "!" + shellQuote(exe) + " git-credential"
	section := "credential." + c.base
	// An empty helper first clears helpers from the global config for this
	// URL, so git asks plat and nothing else; then ours. The token itself is
	// never written to .git/config.
	steps := [][]string{
		{"config", "--replace-all", section + ".helper", ""},
		{"config", "--add", section + ".helper", helper},
		{"config", section + ".username", "plat"},
	}
	if c.caFile != "" && strings.HasPrefix(c.base, "https://") {
		// git trusts plat's local CA for this URL only.
		steps = append(steps, []string{"config", "http." + c.base + ".sslCAInfo", c.caFile})
	}
	for _, s := range steps {
		if _, err := e.git(s...); err != nil {
			return err
		}
	}
	if e.json {
		return writeJSON(e.stdout, map[string]string{"app": name, "remote": *remote, "git_url": u, "credential_helper": helper})
	}
	branch, err := e.git("symbolic-ref", "--short", "HEAD")
	if err != nil || branch == "" {
		branch = "main"
	}
	fmt.Fprintf(e.stdout, "Git remote %s is %s\ngit authenticates with your plat token (credential helper for %s).\nDeploy with: git push %s %s\n",
		*remote, u, c.base, *remote, branch)
	return nil
}

// shellQuote quotes s for sh when it holds anything but safe characters.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@%=,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// cmdGitCredential implements git's credential helper protocol
// (gitcredentials(7)): on "get" it answers with the saved token when the
// request is for the configured daemon, and with nothing otherwise.
func cmdGitCredential(e *env, args []string) error {
	pos, err := e.parse(e.flags(), args, 1, 1)
	if err != nil {
		return err
	}
	// Drain stdin for every operation so git never sees a broken pipe.
	req := map[string]string{}
	sc := bufio.NewScanner(e.stdin)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			req[k] = v
		}
	}
	if pos[0] != "get" {
		return nil // store, erase and unknown operations: nothing to do
	}
	cfg, err := loadConfig()
	if err != nil || cfg.URL == "" || cfg.Token == "" {
		return nil // not ours to answer: let git try other helpers or prompt
	}
	if !credentialMatches(cfg.URL, req) {
		return nil
	}
	fmt.Fprintf(e.stdout, "username=plat\npassword=%s\n", cfg.Token)
	return nil
}

// credentialMatches reports whether a git credential request is for the daemon at base.
func credentialMatches(base string, req map[string]string) bool {
	want, err := url.Parse(base)
	if err != nil {
		return false
	}
	proto, host, path := req["protocol"], req["host"], req["path"]
	if u := req["url"]; u != "" {
		if pu, err := url.Parse(u); err == nil {
			proto, host, path = pu.Scheme, pu.Host, strings.TrimPrefix(pu.Path, "/")
		}
	}
	if !strings.EqualFold(proto, want.Scheme) || canonHost(want.Scheme, host) != canonHost(want.Scheme, want.Host) {
		return false
	}
	// A daemon under a path prefix: when git sends the path, it must be under it.
	if prefix := strings.Trim(want.Path, "/"); prefix != "" && path != "" {
		return path == prefix || strings.HasPrefix(path, prefix+"/")
	}
	return true
}

// canonHost lowercases host and drops the scheme's default port.
func canonHost(scheme, host string) string {
	host = strings.ToLower(host)
	if h, port, err := net.SplitHostPort(host); err == nil {
		if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
			if strings.Contains(h, ":") {
				return "[" + h + "]"
			}
			return h
		}
	}
	return host
}

// sshRemoteAdded reports a remote over SSH: no credential helper, the
// host key to check when ssh first asks.
func (e *env) sshRemoteAdded(app, remote, u string, info api.SSHInfo) error {
	if e.json {
		return writeJSON(e.stdout, map[string]string{"app": app, "remote": remote, "git_url": u, "host_key_fingerprint": info.HostKeyFingerprint})
	}
	branch, err := e.git("symbolic-ref", "--short", "HEAD")
	if err != nil || branch == "" {
		branch = "main"
	}
	fmt.Fprintf(e.stdout, "Git remote %s is %s\ngit authenticates with your SSH key (add it with `plat keys:add NAME ~/.ssh/id_ed25519.pub`).\nThe daemon's host key is %s: check it when ssh asks the first time.\nDeploy with: git push %s %s\n",
		remote, u, info.HostKeyFingerprint, remote, branch)
	return nil
}
