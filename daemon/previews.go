package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/store"
)

// Branch previews (docs/previews.md): a push of a branch other than main
// runs it as its own app record, deploy.PreviewName(app, label), with its
// own releases and logs, served at <label>.<app>.<domain>. It inherits the
// app's config (plus the app's preview-only values) at each push, sleeps
// when idle, and goes away with its branch or its app.

// errPreviewRefused wraps the reasons a preview push is refused before it
// builds.
var errPreviewRefused = errors.New("preview refused")

func (c Config) maxPreviews() int {
	if c.MaxPreviews <= 0 {
		return deploy.DefaultMaxPreviews
	}
	return c.MaxPreviews
}

func (c Config) previewIdle() time.Duration {
	if c.PreviewIdle <= 0 {
		return deploy.DefaultPreviewIdle
	}
	return c.PreviewIdle
}

// previewPush is a preview push under way: its record and its lease.
type previewPush struct {
	name    string
	label   string
	created bool // this push made the record: a failed first push removes it
	lease   *deploy.Lease
}

// startPreviewPush finds or makes the preview record of app's branch,
// refreshes its inherited settings, and starts its lease under the git
// push's lease (so it holds the preview's lock until git records the branch).
func (s *server) startPreviewPush(appName, branch, leaseID string) (*previewPush, error) {
	label, err := deploy.SlugBranch(branch)
	if err != nil {
		return nil, err
	}
	name := deploy.PreviewName(appName, label)
	s.previewMu.Lock()
	defer s.previewMu.Unlock()
	app, err := s.store.GetApp(appName)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", appName, err)
	}
	pv := &previewPush{name: name, label: label}
	cur, err := s.store.GetApp(name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		previews, err := s.previewsOf(appName)
		if err != nil {
			return nil, err
		}
		if max := s.cfg.maxPreviews(); len(previews) >= max {
			branches := make([]string, len(previews))
			for i, p := range previews {
				branches[i] = p.Preview.Branch
			}
			return nil, fmt.Errorf("%w: %s already has %d previews (%s), the most this daemon allows (plat daemon --max-previews); delete one with `git push platform :BRANCH` and push again",
				errPreviewRefused, appName, len(previews), strings.Join(branches, ", "))
		}
		if err := s.store.CreateApp(store.App{
			Name: name, CreatedAt: time.Now().UTC(),
			Scale:   store.Scale{Min: 0, Max: 1, Idle: s.cfg.previewIdle()},
			Preview: &store.Preview{App: appName, Branch: branch, Label: label},
		}); err != nil {
			return nil, err
		}
		pv.created = true
	case err != nil:
		return nil, err
	case cur.Preview == nil || cur.Preview.Branch != branch:
		other := name
		if cur.Preview != nil {
			other = cur.Preview.Branch
		}
		return nil, fmt.Errorf("%w: branches %q and %q both make the host label %q; rename this branch, or delete the other's preview (git push platform :%s)",
			errPreviewRefused, branch, other, label, other)
	}
	// Inherited at every push: the app's config with its preview-only
	// values over it, and its health check, resources and build settings.
	env := maps.Clone(app.Env)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, app.PreviewEnv)
	if err := s.store.UpdateApp(name, func(a *store.App) error {
		a.Env, a.Health, a.Resources, a.Build = env, app.Health, app.Resources, app.Build
		a.Preview.LastPush = time.Now().UTC()
		return nil
	}); err != nil {
		return nil, err
	}
	pv.lease, err = s.deployer.SubLease(leaseID, appName, name)
	if err != nil {
		if pv.created {
			s.store.DeleteApp(name)
		}
		return nil, err
	}
	return pv, nil
}

// previewsOf lists the preview records of app, oldest first.
func (s *server) previewsOf(app string) ([]store.App, error) {
	apps, err := s.store.ListApps()
	if err != nil {
		return nil, err
	}
	var out []store.App
	for _, a := range apps {
		if a.Preview != nil && a.Preview.App == app {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b store.App) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// destroyPreviews removes every preview of app (before the app itself).
func (s *server) destroyPreviews(ctx context.Context, app string) error {
	previews, err := s.previewsOf(app)
	if err != nil {
		return err
	}
	for _, p := range previews {
		if err := s.deployer.Destroy(ctx, p.Name); err != nil {
			return fmt.Errorf("destroy preview %s of %s: %w", p.Preview.Branch, app, err)
		}
		s.log.Info("preview destroyed", "app", app, "branch", p.Preview.Branch)
	}
	return nil
}

// hookPreviewDelete deletes the preview of a deleted branch (`git push
// platform :BRANCH`): its route, containers, images, network and records.
func (s *server) hookPreviewDelete(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	app, branch := q.Get("app"), q.Get("branch")
	w.Header().Set("Trailer", resultTrailer)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	out := newFlushWriter(w)
	fail := func(err error) {
		fmt.Fprintf(out, " !     Branch deletion rejected: %v\n", err)
		w.Header().Set(resultTrailer, "failed")
	}
	label, err := deploy.SlugBranch(branch)
	if err != nil {
		// No preview can exist for it: only the branch goes.
		fmt.Fprintf(out, "=====> %s had no preview; branch deleted\n", branch)
		w.Header().Set(resultTrailer, "ok")
		return
	}
	name := deploy.PreviewName(app, label)
	// The push's lease proves this runs for the push that owns it.
	l, err := s.deployer.SubLease(q.Get("lease"), app, name)
	if err != nil {
		fail(err)
		return
	}
	l.Release()
	pv, err := s.store.GetApp(name)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && (pv.Preview == nil || pv.Preview.Branch != branch)):
		fmt.Fprintf(out, "=====> %s had no preview; branch deleted\n", branch)
		w.Header().Set(resultTrailer, "ok")
		return
	case err != nil:
		fail(err)
		return
	}
	fmt.Fprintf(out, "-----> Deleting the preview of %s (%s)\n", branch, s.appURL(name))
	if err := s.deployer.Destroy(r.Context(), name); err != nil {
		fail(err)
		return
	}
	s.previewEvent(app, "preview-deleted", "preview of %s deleted with its branch", branch)
	fmt.Fprintf(out, "=====> Preview of %s deleted: containers, images, network and route removed\n", branch)
	w.Header().Set(resultTrailer, "ok")
}

// hookPreviewDelete asks the daemon to delete branch's preview of app.
func hookPreviewDelete(socket, app, branch, lease string) int {
	q := url.Values{"app": {app}, "branch": {branch}, "lease": {lease}}
	resp, err := unixClient(socket).Post("http://plat/hook/preview/delete?"+q.Encode(), "text/plain", nil)
	if err != nil {
		fmt.Printf("plat: cannot reach the plat daemon: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil || resp.Trailer.Get(resultTrailer) != "ok" {
		return 1
	}
	return 0
}

// listPreviews answers GET /api/apps/{app}/previews.
func (s *server) listPreviews(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	previews, err := s.previewsOf(app.Name)
	if err != nil {
		s.internalError(w, err)
		return
	}
	out := make([]api.Preview, 0, len(previews))
	for _, p := range previews {
		releases, _ := s.store.ListReleases(p.Name)
		out = append(out, api.Preview{
			Branch: p.Preview.Branch, Label: p.Preview.Label, App: p.Name, Release: p.Active,
			URL: s.appURL(p.Name), LastPush: p.Preview.LastPush,
			Status: appStatus(p, len(s.deployer.Replicas(p.Name)), releases),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// getPreviewConfig answers GET /api/apps/{app}/preview-config: the values
// only the app's previews get.
func (s *server) getPreviewConfig(w http.ResponseWriter, r *http.Request) {
	if app, ok := s.app(w, r); ok {
		writeJSON(w, http.StatusOK, api.Config(nonNil(app.PreviewEnv)))
	}
}

// setPreviewConfig answers POST /api/apps/{app}/preview-config: it changes
// the preview-only values, which each preview takes at its next push.
func (s *server) setPreviewConfig(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	if app.Preview != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s is a preview; set preview values on its app: plat config:set %s --preview KEY=VALUE", app.Name, app.Preview.App))
		return
	}
	change, ok := readConfigChange(w, r)
	if !ok {
		return
	}
	var env map[string]string
	err := s.store.UpdateApp(app.Name, func(a *store.App) error {
		var err error
		env, err = deploy.ValidateConfigChange(a.PreviewEnv, change)
		a.PreviewEnv = env
		return err
	})
	if errors.Is(err, deploy.ErrInvalidConfig) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		s.internalError(w, err)
		return
	}
	s.log.Info("preview config changed", "app", app.Name, "set", slices.Sorted(maps.Keys(change.Set)), "unset", change.Unset)
	writeJSON(w, http.StatusOK, api.Config(nonNil(env)))
}

// previewEvent records a preview's change in its app's timeline (the
// preview's own releases are in its own).
func (s *server) previewEvent(app, kind, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.log.Info(kind, "app", app, "msg", msg)
	if err := s.store.AddEvent(store.Event{App: app, Kind: kind, Message: msg}); err != nil {
		s.log.Warn("record event", "app", app, "err", err)
	}
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
