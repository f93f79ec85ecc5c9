package cli

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/plat-paas/plat/api"
)

func cmdPreviews(e *env, args []string) error {
	name, c, err := e.appCmd(args)
	if err != nil {
		return err
	}
	var ps []api.Preview
	raw, err := c.get(e.ctx, appPath(name, "previews"), &ps)
	if err != nil {
		return err
	}
	if e.json {
		return writeRawJSON(e.stdout, raw)
	}
	if len(ps) == 0 {
		fmt.Fprintf(e.stderr, "%s has no previews: push a branch to make one (git push platform feature-x)\n", name)
		return nil
	}
	rows := [][]string{{"BRANCH", "RELEASE", "URL", "LAST PUSH", "STATUS"}}
	for _, p := range ps {
		rel := "-"
		if p.Release > 0 {
			rel = vstr(p.Release)
		}
		rows = append(rows, []string{p.Branch, rel, p.URL, ago(p.LastPush), p.Status})
	}
	table(e.stdout, rows)
	return nil
}

// previewApp resolves --preview BRANCH (a branch name or its host label)
// to the preview's own app name, which its logs and releases are under.
func previewApp(ctx context.Context, c *client, app, branch string) (string, error) {
	var ps []api.Preview
	if _, err := c.get(ctx, appPath(app, "previews"), &ps); err != nil {
		return "", err
	}
	for _, p := range ps {
		if p.Branch == branch || p.Label == branch {
			return p.App, nil
		}
	}
	return "", fmt.Errorf("%s has no preview of branch %q; see `plat previews %s`", app, branch, app)
}

// setPreviewConfig changes the values only app's previews get.
func (e *env) setPreviewConfig(app string, change api.ConfigChange) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	raw, err := c.call(e.ctx, http.MethodPost, appPath(app, "preview-config"), change)
	if err != nil {
		return err
	}
	var cfg api.Config
	if done, err := e.jsonOrDecode(raw, &cfg); done || err != nil {
		return err
	}
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	fmt.Fprintf(e.stdout, "Preview config of %s: %s. Previews take it (over %s's config) at their next push.\n",
		app, strings.Join(sortedOrNone(keys), ", "), app)
	return nil
}

func sortedOrNone(keys []string) []string {
	if len(keys) == 0 {
		return []string{"(none)"}
	}
	slices.Sort(keys)
	return keys
}
