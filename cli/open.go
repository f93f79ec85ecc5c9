package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"time"

	"github.com/plat-paas/plat/api"
)

// openTimeout bounds the browser launcher (xdg-open, open): they return
// once the browser has the URL.
const openTimeout = 15 * time.Second

// browserCommand is the program that opens URLs here: $BROWSER when set,
// else open (macOS) or xdg-open; "" when none is installed.
func browserCommand() string {
	if b := os.Getenv("BROWSER"); b != "" {
		return b
	}
	name := "xdg-open"
	if runtime.GOOS == "darwin" {
		name = "open"
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return ""
}

// openURL opens url in the browser, or prints it when asked to (--print,
// --json), when no browser launcher exists or when it fails.
func (e *env) openURL(url, what string, print bool) error {
	if e.json {
		return writeJSON(e.stdout, map[string]string{"url": url})
	}
	if print {
		fmt.Fprintln(e.stdout, url)
		return nil
	}
	browser := browserCommand()
	if browser == "" {
		fmt.Fprintf(e.stdout, "No browser launcher found (xdg-open, or set $BROWSER): open %s at\n%s\n", what, url)
		return nil
	}
	ctx, cancel := context.WithTimeout(e.ctx, openTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, browser, url).CombinedOutput(); err != nil {
		fmt.Fprintf(e.stderr, "plat: %s could not open the browser (%v) %s\n", browser, err, out)
		fmt.Fprintf(e.stdout, "Open %s at\n%s\n", what, url)
		return nil
	}
	fmt.Fprintf(e.stdout, "Opened %s in your browser.\n", what)
	return nil
}

func cmdOpen(e *env, args []string) error {
	fs := e.flags()
	print := fs.Bool("print", false, "print the URL instead of opening it")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var a api.App
	if _, err := c.get(e.ctx, appPath(pos[0]), &a); err != nil {
		return err
	}
	if a.URL == "" {
		return fmt.Errorf("the daemon gave no URL for %s", a.Name)
	}
	return e.openURL(a.URL, a.Name, *print)
}

// cmdDashboard opens the dashboard through a one-time login link: the
// link carries a nonce the daemon made for this token, never the token.
func cmdDashboard(e *env, args []string) error {
	fs := e.flags()
	print := fs.Bool("print", false, "print the one-time login link instead of opening it")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	raw, err := c.call(e.ctx, "POST", "/api/login-links", nil)
	if err != nil {
		return err
	}
	var l api.LoginLink
	if err := json.Unmarshal(raw, &l); err != nil || l.Path == "" || l.Path[0] != '/' {
		return fmt.Errorf("unexpected answer to POST /api/login-links: %s", raw)
	}
	return e.openURL(c.base+l.Path, "the dashboard (a login link that works once, within a minute)", *print)
}
