package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/store"
)

// What the dashboard needs beyond the CLI's API: live updates pushed as
// server-sent events, each release's kept deploy output, and what a
// rollback would change.

const (
	// watchInterval is how often a watch stream looks for changes; only
	// what changed is sent.
	watchInterval = time.Second
	// watchPing keeps an idle stream open through proxies.
	watchPing = 15 * time.Second
	// watchRetry is how soon a browser reconnects a stream that broke.
	watchRetry = 2 * time.Second
	// watchEvents is how many of an app's latest events a stream carries.
	watchEvents = 200
)

func (s *server) dashboardRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/watch", s.watchApps)
	mux.HandleFunc("GET /api/apps/{app}/watch", s.watchApp)
	mux.HandleFunc("GET /api/apps/{app}/releases/{version}/deploy-log", s.deployLog)
	mux.HandleFunc("GET /api/apps/{app}/rollback/preview", s.rollbackPreview)
}

// appStatus is what an app serves: deploying (a release is being
// deployed), new (never deployed), sleeping, down (an active release but
// no replica running) or running. A failed last deploy does not change
// it: the previous release keeps serving (see lastFailed).
func appStatus(app store.App, replicas int, releases []store.Release) string {
	switch {
	case len(releases) > 0 && releases[len(releases)-1].Status == store.StatusDeploying:
		return api.StatusDeploying
	case app.Active == 0:
		return api.StatusNew
	case app.Asleep:
		return api.StatusSleeping
	case replicas == 0:
		return api.StatusDown
	}
	return api.StatusRunning
}

// lastFailed reports the newest release when its deploy failed, and a
// warning that says so and what is still served.
func lastFailed(app store.App, releases []store.Release) (*api.FailedDeploy, string) {
	if len(releases) == 0 || releases[len(releases)-1].Status != store.StatusFailed {
		return nil, ""
	}
	r := releases[len(releases)-1]
	serving := "nothing is serving yet"
	if app.Active > 0 {
		serving = fmt.Sprintf("still serving v%d", app.Active)
	}
	reason := r.Reason
	if reason == "" {
		reason = "no reason recorded"
	}
	return &api.FailedDeploy{Version: r.Version, Reason: r.Reason, FinishedAt: r.FinishedAt},
		fmt.Sprintf("deploy of v%d failed: %s; %s", r.Version, reason, serving)
}

// infoFor is info with the Git URL a client that made r can use.
func (s *server) infoFor(r *http.Request, app store.App) api.App {
	ai := s.info(app)
	ai.GitURL = s.publicBase(r) + "/git/" + app.Name + ".git"
	return ai
}

// publicBase is the URL clients reach the API at: --public-url when given,
// else the HTTPS API host when HTTPS is on, else the address the client
// used (a remote browser's, not the daemon's loopback listener).
func (s *server) publicBase(r *http.Request) string {
	tlsHost := ""
	if s.routerTLSAddr != "" {
		tlsHost = s.cfg.apiHost()
		if _, port, err := net.SplitHostPort(s.routerTLSAddr); err == nil && port != "443" {
			tlsHost = net.JoinHostPort(tlsHost, port)
		}
	}
	return publicBase(s.publicURLGiven, s.cfg.PublicURL, tlsHost, s.origin(r))
}

func publicBase(given bool, publicURL, tlsHost, origin string) string {
	switch {
	case given:
		return strings.TrimRight(publicURL, "/")
	case tlsHost != "":
		return "https://" + tlsHost
	}
	return origin
}

// deployLog serves a release's deploy output: live while it deploys, then
// as kept with the release.
func (s *server) deployLog(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	v, err := strconv.Atoi(strings.TrimPrefix(r.PathValue("version"), "v"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "release version must be a number like 3 or v3")
		return
	}
	var out []byte
	if p, ok := s.deployer.Progress(app.Name, 0); ok && p.Version == v && p.Running {
		out = []byte(strings.Join(p.Lines, "\n") + "\n")
	} else if out, err = s.store.DeployLog(app.Name, v); errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s v%d has no deploy output kept (it predates kept output, or does not exist; see `plat releases %s`)", app.Name, v, app.Name))
		return
	} else if err != nil {
		s.internalError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(out)
}

// rollbackPreview says what rolling back to ?version would change: the
// image, and which config keys would be added, removed or changed (names
// only: values stay behind GET /config).
type rollbackPreview struct {
	From       int      `json:"from"`
	To         int      `json:"to"`
	ImageFrom  string   `json:"image_from"`
	ImageTo    string   `json:"image_to"`
	SameImage  bool     `json:"same_image"`
	GitSHAFrom string   `json:"git_sha_from,omitempty"`
	GitSHATo   string   `json:"git_sha_to,omitempty"`
	Added      []string `json:"added"`
	Removed    []string `json:"removed"`
	Changed    []string `json:"changed"`
}

func (s *server) rollbackPreview(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	v, err := strconv.Atoi(strings.TrimPrefix(r.URL.Query().Get("version"), "v"))
	if err != nil || v <= 0 {
		writeError(w, http.StatusBadRequest, "give the release to roll back to as ?version=N")
		return
	}
	releases, err := s.store.ListReleases(app.Name)
	if err != nil {
		s.internalError(w, err)
		return
	}
	var from, to *store.Release
	for i := range releases {
		switch releases[i].Version {
		case app.Active:
			from = &releases[i]
		case v:
			to = &releases[i]
		}
	}
	switch {
	case to == nil:
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s has no release v%d; see `plat releases %s`", app.Name, v, app.Name))
		return
	case from == nil:
		writeError(w, http.StatusConflict, fmt.Sprintf("%s has no active release to roll back from", app.Name))
		return
	}
	writeJSON(w, http.StatusOK, previewRollback(*from, *to))
}

func previewRollback(from, to store.Release) rollbackPreview {
	p := rollbackPreview{From: from.Version, To: to.Version, ImageFrom: from.ImageID, ImageTo: to.ImageID,
		SameImage: from.ImageID == to.ImageID, GitSHAFrom: from.GitSHA, GitSHATo: to.GitSHA,
		Added: []string{}, Removed: []string{}, Changed: []string{}}
	for _, k := range slices.Sorted(maps.Keys(to.Env)) {
		old, had := from.Env[k]
		switch {
		case !had:
			p.Added = append(p.Added, k)
		case old != to.Env[k]:
			p.Changed = append(p.Changed, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(from.Env)) {
		if _, ok := to.Env[k]; !ok {
			p.Removed = append(p.Removed, k)
		}
	}
	return p
}

// sseWriter writes server-sent events, each only when its data changed.
type sseWriter struct {
	fw   *flushWriter
	last map[string][]byte
}

func newSSE(w http.ResponseWriter) *sseWriter {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{fw: newFlushWriter(w), last: map[string][]byte{}}
	fmt.Fprintf(sw.fw, "retry: %d\n\n", watchRetry.Milliseconds())
	return sw
}

// send writes event name with v as its data unless it equals what was sent last.
func (sw *sseWriter) send(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	if bytes.Equal(sw.last[name], b) {
		return nil
	}
	sw.last[name] = b
	_, err = fmt.Fprintf(sw.fw, "event: %s\ndata: %s\n\n", name, b)
	return err
}

func (sw *sseWriter) ping() error {
	_, err := io.WriteString(sw.fw, ": ping\n\n")
	return err
}

// watch calls tick now and every watchInterval until the client goes, the
// daemon shuts down or tick fails, pinging an idle stream.
func (s *server) watch(r *http.Request, sw *sseWriter, tick func() error) {
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	lastPing := time.Now()
	for {
		if err := tick(); err != nil {
			return
		}
		if time.Since(lastPing) >= watchPing {
			if sw.ping() != nil {
				return
			}
			lastPing = time.Now()
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.logHub.Done(): // shutting down: don't hold the response open
			return
		case <-t.C:
		}
	}
}

// watchApps streams the apps list ("apps" events) as it changes.
func (s *server) watchApps(w http.ResponseWriter, r *http.Request) {
	sw := newSSE(w)
	s.watch(r, sw, func() error {
		apps, err := s.store.ListApps()
		if err != nil {
			return err
		}
		out := make([]api.App, 0, len(apps))
		for _, a := range apps {
			if a.Preview == nil { // previews are not production deploys
				out = append(out, s.infoFor(r, a))
			}
		}
		return sw.send("apps", out)
	})
}

// deployUpdate is a "deploy" event: the output of the app's latest deploy
// from line From on; Reset says it replaces what was shown.
type deployUpdate struct {
	Version int      `json:"version"`
	Running bool     `json:"running"`
	Reset   bool     `json:"reset"`
	From    int      `json:"from"`
	Lines   []string `json:"lines"`
	Kept    bool     `json:"kept,omitempty"` // read back from the store, not live
}

// watchApp streams an app's state as events named app, releases, events,
// domains, ps and deploy, each when it changed; "gone" when the app is
// destroyed, and the stream ends. An unknown app is a 404 before any
// stream starts, so a browser's EventSource does not retry it.
func (s *server) watchApp(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	name := app.Name
	sw := newSSE(w)
	var sent struct {
		version, lines int
		running, any   bool
	}
	s.watch(r, sw, func() error {
		app, err := s.store.GetApp(name)
		if errors.Is(err, store.ErrNotFound) {
			sw.send("gone", map[string]string{"app": name})
			return err
		}
		if err != nil {
			return err
		}
		releases, err := s.store.ListReleases(name)
		if err != nil {
			return err
		}
		events, err := s.store.ListEvents(name, watchEvents)
		if err != nil {
			return err
		}
		rels := make([]api.Release, len(releases))
		for i, rel := range releases {
			rels[i] = apiRelease(rel)
		}
		for _, ev := range []struct {
			name string
			v    any
		}{
			{"app", s.infoFor(r, app)}, {"releases", rels}, {"events", apiEvents(events)},
			{"domains", s.domainsInfo(app)}, {"ps", s.replicas(r.Context(), app)},
		} {
			if err := sw.send(ev.name, ev.v); err != nil {
				return err
			}
		}
		// Deploy output: live from memory, from the line last sent; after a
		// daemon restart, the newest release's kept output.
		p, ok := s.deployer.Progress(name, sent.lines)
		if !ok {
			if sent.any || len(releases) == 0 {
				return nil
			}
			sent.any = true
			last := releases[len(releases)-1]
			log, err := s.store.DeployLog(name, last.Version)
			if err != nil {
				return nil // none kept: nothing to show
			}
			lines := strings.Split(strings.TrimSuffix(string(log), "\n"), "\n")
			return sw.send("deploy", deployUpdate{Version: last.Version, Reset: true, Lines: lines, Kept: true})
		}
		if p.Version != sent.version {
			if p, ok = s.deployer.Progress(name, 0); !ok {
				return nil
			}
			sent.version, sent.lines, sent.running, sent.any = p.Version, p.Dropped+len(p.Lines), p.Running, true
			return sw.send("deploy", deployUpdate{Version: p.Version, Running: p.Running, Reset: true, From: p.Dropped, Lines: p.Lines})
		}
		if len(p.Lines) == 0 && p.Running == sent.running {
			return nil
		}
		from := max(sent.lines, p.Dropped)
		sent.lines, sent.running = from+len(p.Lines), p.Running
		return sw.send("deploy", deployUpdate{Version: p.Version, Running: p.Running, From: from, Lines: p.Lines})
	})
}
