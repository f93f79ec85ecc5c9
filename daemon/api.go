package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/internal/authlimit"
	"github.com/plat-paas/plat/logs"
	"github.com/plat-paas/plat/metrics"
	"github.com/plat-paas/plat/router"
	"github.com/plat-paas/plat/store"
	"github.com/plat-paas/plat/web"
)

// maxJSONBody bounds API request bodies: a full config (deploy.MaxEnvBytes)
// fits even when JSON escapes every byte of it as \u00XX.
const maxJSONBody = 2 << 20

// defaultLogTail is how many recent lines `plat logs` shows.
const defaultLogTail = 100

type server struct {
	cfg        Config
	store      *store.Store
	deployer   *deploy.Deployer
	engine     engine.Engine
	log        *slog.Logger
	repos      *repos
	routerAddr string
	// routerTLSAddr is the HTTPS listener's address, "" when HTTPS is off.
	routerTLSAddr string
	switcher      *switcher
	localCA       *router.LocalCA
	logHub        *logs.Hub
	web           *web.Dashboard
	tokens        *tokenManager
	limiter       *authlimit.Limiter // failed authentication per client address
	sshInfo       sshInfo            // GET /api/ssh
	sampler       *metrics.Sampler   // GET /api/apps/{app}/metrics
	prom          http.Handler       // GET /metrics (with a token)
	upgradeState                     // pushes in flight, the hand-over (upgrade.go)

	// publicURLGiven: --public-url was set, so printed URLs use it as is.
	publicURLGiven bool
	// previewMu makes counting and creating an app's previews one step.
	previewMu sync.Mutex
}

func (s *server) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/whoami", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, api.OK{OK: true})
	})
	mux.HandleFunc("GET /api/apps", s.listApps)
	mux.HandleFunc("POST /api/apps", s.createApp)
	mux.HandleFunc("GET /api/apps/{app}", s.getApp)
	mux.HandleFunc("DELETE /api/apps/{app}", s.destroyApp)
	mux.HandleFunc("GET /api/apps/{app}/releases", s.listReleases)
	mux.HandleFunc("GET /api/apps/{app}/previews", s.listPreviews)
	mux.HandleFunc("GET /api/apps/{app}/preview-config", s.getPreviewConfig)
	mux.HandleFunc("POST /api/apps/{app}/preview-config", s.setPreviewConfig)
	mux.HandleFunc("GET /api/apps/{app}/releases/{version}/build-log", s.buildLog)
	mux.HandleFunc("GET /api/apps/{app}/releases/{version}/dockerfile", s.releaseDockerfile)
	mux.HandleFunc("GET /api/apps/{app}/events", s.listEvents)
	mux.HandleFunc("GET /api/apps/{app}/config", s.getConfig)
	mux.HandleFunc("POST /api/apps/{app}/config", s.setConfig)
	mux.HandleFunc("GET /api/apps/{app}/build", s.getBuild)
	mux.HandleFunc("PATCH /api/apps/{app}/build", s.setBuild)
	mux.HandleFunc("POST /api/apps/{app}/rollback", s.rollback)
	mux.HandleFunc("PUT /api/apps/{app}/health", s.setHealth)
	mux.HandleFunc("PATCH /api/apps/{app}/health", s.setHealth)
	mux.HandleFunc("POST /api/apps/{app}/scale", s.scale)
	mux.HandleFunc("GET /api/apps/{app}/resources", s.getResources)
	mux.HandleFunc("POST /api/apps/{app}/resources", s.setResources)
	mux.HandleFunc("GET /api/apps/{app}/ps", s.ps)
	mux.HandleFunc("GET /api/apps/{app}/logs", s.logs)
	mux.HandleFunc("GET /api/apps/{app}/domains", s.listDomains)
	mux.HandleFunc("POST /api/apps/{app}/domains", s.addDomain)
	mux.HandleFunc("DELETE /api/apps/{app}/domains/{domain}", s.removeDomain)
	mux.HandleFunc("PUT /api/apps/{app}/hsts", s.setHSTS)
	mux.HandleFunc("GET /api/ca", s.getCA)
	mux.HandleFunc("GET /api/apps/{app}/logs/ws", s.logSocket)
	mux.HandleFunc("GET /api/apps/{app}/deploy", s.deployProgress)
	mux.HandleFunc("GET /api/debug/runtime", s.debugRuntime)
	mux.HandleFunc("POST /api/apps/{app}/deploy/cancel", s.cancelDeploy)
	mux.HandleFunc("GET /api/apps/{app}/run", s.runCommand)
	mux.HandleFunc("POST /api/apps/{app}/restart", s.restartApp)
	mux.HandleFunc("GET /git/{repo}/info/refs", s.gitInfoRefs)
	mux.HandleFunc("POST /git/{repo}/git-receive-pack", s.gitReceivePack)
	mux.HandleFunc("POST /git/{repo}/git-upload-pack", s.gitUploadPack)
	s.tokenRoutes(mux)
	s.dashboardRoutes(mux)
	s.keyRoutes(mux)
	s.nodeRoutes(mux)
	s.strategyRoutes(mux)
	s.rolloutRoutes(mux)
	s.doraRoutes(mux)
	s.stagedRoutes(mux)
	s.flagRoutes(mux)
	s.shadowRoutes(mux)
	s.metricsRoutes(mux)
	mux.HandleFunc("POST /api/login-links", s.createLoginLink)
	root := http.NewServeMux()
	api := s.authenticate(mux)
	root.Handle("/api/", api)
	root.Handle("/git/", api)
	root.Handle("GET /metrics", s.authenticate(s.prom))
	s.cliRoutes(root)                 // the CLI downloads need no token
	root.Handle("/", s.web.Handler()) // the dashboard checks its own sessions
	return root
}

// info is the API's view of an app.
func (s *server) info(app store.App) api.App {
	ai := api.App{
		Name: app.Name, CreatedAt: app.CreatedAt, Active: app.Active, Status: api.StatusNew,
		URL:      s.appURL(app.Name),
		GitURL:   s.cfg.PublicURL + "/git/" + app.Name + ".git",
		Health:   apiHealth(app.Health),
		EnvKeys:  slices.Sorted(maps.Keys(app.Env)),
		Replicas: len(s.deployer.Replicas(app.Name)),
		Scale:    newScaleInfo(app.Scale),
		HSTS:     newHSTSInfo(app),
		Strategy: newStrategyInfo(app),
	}
	releases, _ := s.store.ListReleases(app.Name)
	for _, r := range releases {
		if r.Version == app.Active {
			ai.GitSHA, ai.ImageID, ai.DeployedAt = r.GitSHA, r.ImageID, r.FinishedAt
		}
	}
	ai.ReleaseMode = releaseMode(app)
	for _, r := range releases {
		if r.Status == store.StatusStaged {
			ai.Staged, ai.StagedURL = r.Version, s.switcher.PreviewURL(app.Name, r.Version)
		}
	}
	warmInfo(&ai, app)
	ai.Status = appStatus(app, ai.Replicas, releases)
	ai.LastFailed, ai.Warning = lastFailed(app, releases)
	return ai
}

// appURL is where the router serves app: over HTTPS when it is on.
func (s *server) appURL(app string) string {
	scheme, addr, defPort := "http", s.routerAddr, "80"
	if s.routerTLSAddr != "" {
		scheme, addr, defPort = "https", s.routerTLSAddr, "443"
	}
	u := scheme + "://" + deploy.HostLabel(app) + "." + s.cfg.Domain
	if _, port, err := net.SplitHostPort(addr); err == nil && port != defPort {
		u += ":" + port
	}
	return u + "/"
}

func (s *server) listApps(w http.ResponseWriter, r *http.Request) {
	apps, err := s.store.ListApps()
	if err != nil {
		s.internalError(w, err)
		return
	}
	out := make([]api.App, 0, len(apps))
	for _, a := range apps {
		if a.Preview != nil {
			continue // listed by GET /api/apps/{app}/previews
		}
		out = append(out, s.infoFor(r, a))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) createApp(w http.ResponseWriter, r *http.Request) {
	var body api.CreateApp
	if !readJSON(w, r, &body) {
		return
	}
	if err := deploy.ValidateAppName(body.Name); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	app := store.App{Name: body.Name, CreatedAt: time.Now().UTC()}
	if err := s.store.CreateApp(app); err != nil {
		if errors.Is(err, store.ErrExists) {
			writeError(w, http.StatusConflict, fmt.Sprintf("an app named %q already exists; choose another name", body.Name))
			return
		}
		s.internalError(w, err)
		return
	}
	if err := s.repos.ensure(body.Name); err != nil {
		s.internalError(w, err)
		return
	}
	s.log.Info("app created", "app", body.Name)
	writeJSON(w, http.StatusCreated, s.infoFor(r, app))
}

// app loads the {app} of the path, answering 404 itself when it is unknown.
func (s *server) app(w http.ResponseWriter, r *http.Request) (store.App, bool) {
	name := r.PathValue("app")
	app, err := s.store.GetApp(name)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no app named %q; see `plat apps`", name))
		return app, false
	}
	if err != nil {
		s.internalError(w, err)
		return app, false
	}
	return app, true
}

func (s *server) getApp(w http.ResponseWriter, r *http.Request) {
	if app, ok := s.app(w, r); ok {
		writeJSON(w, http.StatusOK, s.infoFor(r, app))
	}
}

func (s *server) destroyApp(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	if r.URL.Query().Get("confirm") != app.Name {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("destroying %s removes its releases, images and repository; confirm with `plat apps:destroy %s --confirm %s`", app.Name, app.Name, app.Name))
		return
	}
	if err := s.destroyPreviews(r.Context(), app.Name); err != nil {
		s.internalError(w, err)
		return
	}
	if err := s.deployer.Destroy(r.Context(), app.Name); err != nil {
		s.internalError(w, err)
		return
	}
	if err := s.repos.remove(app.Name); err != nil {
		s.log.Warn("remove repository", "app", app.Name, "err", err)
	}
	s.forgetTraffic(app.Name)
	s.log.Info("app destroyed", "app", app.Name)
	writeJSON(w, http.StatusOK, api.Destroyed{Destroyed: app.Name})
}

func (s *server) listReleases(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	releases, err := s.store.ListReleases(app.Name)
	if err != nil {
		s.internalError(w, err)
		return
	}
	out := make([]api.Release, len(releases))
	for i, rel := range releases {
		out[i] = s.withPreview(apiRelease(rel))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) buildLog(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	v, err := strconv.Atoi(strings.TrimPrefix(r.PathValue("version"), "v"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "release version must be a number like 3 or v3")
		return
	}
	log, err := s.store.BuildLog(app.Name, v)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s v%d has no build log (config and rollback releases are not built)", app.Name, v))
		return
	}
	if err != nil {
		s.internalError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(log)
}

func (s *server) listEvents(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	events, err := s.store.ListEvents(app.Name, 200)
	if err != nil {
		s.internalError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, apiEvents(events))
}

func (s *server) getConfig(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	env := api.Config(app.Env)
	if env == nil {
		env = api.Config{}
	}
	writeJSON(w, http.StatusOK, env)
}

// readConfigChange reads a config change from r's body, or answers 400
// for a malformed or empty one.
func readConfigChange(w http.ResponseWriter, r *http.Request) (deploy.ConfigChange, bool) {
	var body api.ConfigChange
	if !readJSON(w, r, &body) {
		return deploy.ConfigChange{}, false
	}
	change := deploy.ConfigChange{Set: body.Set, Unset: body.Unset}
	if len(change.Set)+len(change.Unset) == 0 {
		writeError(w, http.StatusBadRequest, "nothing to change: give KEY=value pairs to set or keys to unset")
		return deploy.ConfigChange{}, false
	}
	return change, true
}

func (s *server) setConfig(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	change, ok := readConfigChange(w, r)
	if !ok {
		return
	}
	// Checked here too, against the env as it is now, so a bad change gets
	// a 400 before the streamed answer starts; SetConfig checks again
	// under the app's lock.
	if _, err := deploy.ValidateConfigChange(app.Env, change); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	streamOperation(w, r, func(ctx context.Context, out io.Writer) (any, error) {
		return s.releaseResult(s.deployer.SetConfig(ctx, app.Name, change, out))
	})
}

func (s *server) rollback(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	var body api.Rollback
	if !readJSON(w, r, &body) {
		return
	}
	if body.Version < 0 {
		writeError(w, http.StatusBadRequest, "version must be a release number like 3, or 0 for the previous release")
		return
	}
	// Refused before the streamed answer starts, so a wrong version is a
	// plain 404 (409 for a release that cannot be rolled back to);
	// Rollback checks again under the app's lock.
	if err := s.deployer.CheckRollback(r.Context(), app.Name, body.Version); err != nil {
		switch {
		case errors.Is(err, deploy.ErrUnknownRelease):
			writeError(w, http.StatusNotFound, err.Error())
		case errors.Is(err, deploy.ErrNoRelease):
			writeError(w, http.StatusConflict, err.Error())
		default:
			s.internalError(w, err)
		}
		return
	}
	streamOperation(w, r, func(ctx context.Context, out io.Writer) (any, error) {
		return releaseResult(s.deployer.Rollback(ctx, app.Name, body.Version, out))
	})
}

func (s *server) setHealth(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	// The body is an api.HealthCheck; its durations are read one by one
	// so a bad one is named. Strings ("2s"); a number is read as
	// nanoseconds, as clients before api.Duration sent them.
	var body struct {
		Path     string          `json:"path"`
		Timeout  json.RawMessage `json:"timeout"`
		Interval json.RawMessage `json:"interval"`
		Deadline json.RawMessage `json:"deadline"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	// Fields not given (or zero) keep their values: PUT and PATCH both
	// merge. Values stored before the bounds existed are brought within
	// them rather than blocking this change.
	hc := deploy.ClampHealth(app.Health)
	if body.Path != "" {
		hc.Path = body.Path
	}
	for _, f := range []struct {
		name string
		in   json.RawMessage
		out  *time.Duration
	}{{"timeout", body.Timeout, &hc.Timeout}, {"interval", body.Interval, &hc.Interval}, {"deadline", body.Deadline, &hc.Deadline}} {
		var d api.Duration
		if len(f.in) > 0 {
			if err := d.UnmarshalJSON(f.in); err != nil || d < 0 {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("health check %s %s is not a positive duration like \"2s\" or \"500ms\"", f.name, f.in))
				return
			}
		}
		if d > 0 {
			*f.out = d.D()
		}
	}
	if err := deploy.ValidateHealth(hc); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.store.UpdateApp(app.Name, func(a *store.App) error { a.Health = hc; return nil }); err != nil {
		s.internalError(w, err)
		return
	}
	app.Health = hc
	writeJSON(w, http.StatusOK, s.info(app))
}

func newScaleInfo(s store.Scale) api.Scale {
	e := deploy.EffectiveScale(s)
	return api.Scale{Min: e.Min, Max: e.Max, Idle: api.Duration(e.Idle), Target: e.Target, ColdAfter: api.Duration(max(e.ColdAfter, 0)), Description: deploy.DescribeScale(s)}
}

// scale changes an app's replica settings and applies them, streaming
// progress like a config change; the last line is the app.
func (s *server) scale(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	var body api.ScaleChange
	if !readJSON(w, r, &body) {
		return
	}
	change := deploy.ScaleChange{Replicas: body.Replicas, Min: body.Min, Max: body.Max, Target: body.Target}
	if body.Idle != nil {
		d, err := time.ParseDuration(*body.Idle)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("idle %q is not a duration like 5m or 30s", *body.Idle))
			return
		}
		change.Idle = &d
	}
	if body.ColdAfter != nil {
		d, err := time.ParseDuration(*body.ColdAfter)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("cold_after %q is not a duration like 30m or 0 (stop at once)", *body.ColdAfter))
			return
		}
		change.ColdAfter = &d
	}
	if err := change.Validate(app.Scale); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	streamResult(w, r, "app", func(ctx context.Context, out io.Writer) (any, error) {
		a, err := s.deployer.Scale(ctx, app.Name, change, out)
		if err != nil {
			return nil, err
		}
		return s.info(a), nil
	})
}

// ps lists the replicas of app's active release: the routed ones with their
// requests in flight, or the stopped ones of a sleeping app.
func (s *server) ps(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.replicas(r.Context(), app))
}

// replicas lists app's replicas for `plat ps` and the dashboard.
func (s *server) replicas(ctx context.Context, app store.App) []api.Replica {
	inFlight := map[string]int64{}
	if rt, ok := s.switcher.router.Lookup(app.Name + "." + s.cfg.Domain); ok {
		for _, b := range rt.Backends {
			inFlight[b.Addr()] = b.InFlight()
		}
		if rt.Canary != nil {
			for _, b := range rt.Canary.Backends {
				inFlight[b.Addr()] = b.InFlight()
			}
		}
	}
	out := []api.Replica{}
	for _, rep := range s.deployer.Replicas(app.Name) {
		out = append(out, apiReplica(rep, "running", inFlight[rep.Addr]))
	}
	if app.Asleep {
		for _, rep := range s.deployer.SleepingReplicas(ctx, app.Name) {
			r := apiReplica(rep, "sleeping", 0)
			r.Sleep = sleepStage(app)
			out = append(out, r)
		}
	}
	for _, rep := range s.deployer.OneOffs(ctx, app.Name) {
		out = append(out, apiReplica(rep, "running", 0))
	}
	return out
}

// logs streams app's output as text from the log hub, the same source as
// the dashboard's live view: it follows the active release's replicas
// across deploys, scaling and sleep.
func (s *server) logs(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	if app.Active == 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s has not been deployed yet; push it with git push first", app.Name))
		return
	}
	tail := defaultLogTail
	if t := r.URL.Query().Get("tail"); t != "" {
		var err error
		if tail, err = strconv.Atoi(t); err != nil {
			writeError(w, http.StatusBadRequest, "tail must be a number of lines")
			return
		}
	}
	follow := r.URL.Query().Get("follow") == "1" || r.URL.Query().Get("follow") == "true"
	// ?since=TIME (the last line's time, format=json) resumes a stream
	// that broke, e.g. when the daemon was upgraded, without repeats.
	var since time.Time
	if v := r.URL.Query().Get("since"); v != "" {
		var err error
		if since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			writeError(w, http.StatusBadRequest, "since must be an RFC 3339 time like 2026-01-02T15:04:05.123456789Z (the time of the last line seen)")
			return
		}
	}
	source := r.URL.Query().Get("source")
	if source != "" && source != logs.SourceApp && source != logs.SourceRouter {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("source %q: give app (the app's output) or router (its request lines)", source))
		return
	}
	asJSON := r.URL.Query().Get("format") == "json"
	if asJSON {
		w.Header().Set("Content-Type", "application/x-ndjson")
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	fw := newFlushWriter(w)
	enc := json.NewEncoder(fw)
	// Lines say which replica printed them when the app can run several.
	multi := deploy.EffectiveScale(app.Scale).Max > 1 || len(s.deployer.Replicas(app.Name)) > 1
	err := s.logHub.StreamSource(r.Context(), app.Name, source, since, tail, follow, func(l logs.Line) error {
		if asJSON {
			if !multi {
				l.Replica = ""
			}
			return enc.Encode(api.LogLine{Time: l.Time, Text: l.Text, Replica: l.Replica})
		}
		_, err := io.WriteString(fw, l.Format(multi)+"\n")
		return err
	})
	if err != nil && r.Context().Err() == nil {
		s.log.Warn("stream logs", "app", app.Name, "err", err)
	}
}

func (s *server) logSocket(w http.ResponseWriter, r *http.Request) {
	if app, ok := s.app(w, r); ok {
		s.web.ServeLogs(w, r, app.Name)
	}
}

// deployProgress returns the output of app's latest deploy from line ?from.
func (s *server) deployProgress(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	from, _ := strconv.Atoi(r.URL.Query().Get("from"))
	p, ok := s.deployer.Progress(app.Name, from)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s has not been deployed since the daemon started", app.Name))
		return
	}
	writeJSON(w, http.StatusOK, api.Progress{
		Version: p.Version, Running: p.Running, Started: p.Started, Lines: p.Lines, Dropped: p.Dropped, Finished: p.Finished,
	})
}

// streamOperation runs a long operation, streaming its progress as NDJSON
// lines and ending with {"release":...} or {"error":...}.
func streamOperation(w http.ResponseWriter, r *http.Request, op func(ctx context.Context, out io.Writer) (any, error)) {
	streamResult(w, r, "release", op)
}

// streamResult is streamOperation whose last line carries the result under key.
func streamResult(w http.ResponseWriter, r *http.Request, key string, op func(ctx context.Context, out io.Writer) (any, error)) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fw := newFlushWriter(w)
	enc := json.NewEncoder(fw)
	progress := &lineWriter{emit: func(line string) { enc.Encode(api.ProgressLine(line)) }}
	result, err := op(r.Context(), progress)
	progress.Flush()
	if err == nil {
		var raw []byte
		if raw, err = json.Marshal(result); err == nil {
			end := api.StreamLine{Release: raw}
			if key == "app" {
				end = api.StreamLine{App: raw}
			}
			enc.Encode(end)
			return
		}
	}
	enc.Encode(api.ErrorLine(err.Error()))
}

// readJSON decodes the request body, one JSON value (or nothing) into v.
// It answers 413 when the body is over maxJSONBody and 400 when it is not
// exactly one JSON value, and then returns false.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	err := dec.Decode(v)
	if err == nil {
		// Only white space may follow: trailing bytes mean the client sent
		// something other than what it meant.
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = terr
			if err == nil {
				err = errors.New("more than one JSON value")
			}
			err = fmt.Errorf("unexpected data after the JSON object: %w", err)
		}
	} else if errors.Is(err, io.EOF) {
		err = nil // an empty body: every field left out
	}
	if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over %d bytes; send less", tooBig.Limit))
		return false
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "request body is not valid JSON: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, api.Error{Error: msg})
}

func (s *server) internalError(w http.ResponseWriter, err error) {
	s.log.Error("request failed", "err", err)
	writeError(w, http.StatusInternalServerError, "internal error: "+err.Error()+" (see the daemon's log)")
}
