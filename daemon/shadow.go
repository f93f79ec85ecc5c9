package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/router"
	"github.com/plat-paas/plat/store"
)

// Shadow traffic: the router mirrors an app's live requests to a release
// that runs but is not active (a staged one) and compares the answers. The
// shadow lives in the router's memory: a daemon restart ends it.

// shadowMethods are the methods a shadow may mirror.
var shadowMethods = []string{"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"}

func (s *server) shadowRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/apps/{app}/shadow", s.getShadow)
	mux.HandleFunc("POST /api/apps/{app}/shadow", s.startShadow)
	mux.HandleFunc("DELETE /api/apps/{app}/shadow", s.stopShadow)
}

// releaseAddrs returns where app's release version runs outside the live
// route: the published addresses of its running app containers. A staged
// release's replicas are such containers.
func (s *server) releaseAddrs(ctx context.Context, app string, version int) ([]string, error) {
	cs, err := s.engine.List(ctx, map[string]string{
		engine.LabelRole: engine.RoleApp, engine.LabelInstance: s.cfg.Deploy.Instance,
		engine.LabelApp: app, engine.LabelRelease: strconv.Itoa(version),
	})
	if err != nil {
		return nil, fmt.Errorf("list containers of %s v%d: %w", app, version, err)
	}
	var addrs []string
	for _, c := range cs {
		if c.Running && c.HostAddr != "" {
			addrs = append(addrs, c.HostAddr)
		}
	}
	slices.Sort(addrs)
	return addrs, nil
}

// parseVersion reads "v8" or "8".
func parseVersion(v string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(strings.ToLower(v), "v"))
	return n, err == nil && n > 0
}

func (s *server) startShadow(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	var body api.ShadowStart
	if !readJSON(w, r, &body) {
		return
	}
	version, ok := parseVersion(body.Release)
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf(`say which release to shadow, like {"release": "v8"}, not %q`, body.Release))
		return
	}
	if body.Percent < 0 || body.Percent > 100 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("shadow percent %d: give 1 to 100 (default 100)", body.Percent))
		return
	}
	methods := make([]string, 0, len(body.Methods))
	for _, m := range body.Methods {
		m = strings.ToUpper(strings.TrimSpace(m))
		if !slices.Contains(shadowMethods, m) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("method %q cannot be mirrored; use some of %s", m, strings.Join(shadowMethods, ",")))
			return
		}
		methods = append(methods, m)
	}
	rel, err := s.store.GetRelease(app.Name, version)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("app %s has no release v%d; see `plat releases %s`", app.Name, version, app.Name))
		return
	}
	if err != nil {
		s.internalError(w, err)
		return
	}
	if rel.Version == app.Active {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("v%d is %s's active release: it already gets the live traffic; shadow a release that runs beside it (a staged one)", version, app.Name))
		return
	}
	addrs, err := s.releaseAddrs(r.Context(), app.Name, version)
	if err != nil {
		s.internalError(w, err)
		return
	}
	if len(addrs) == 0 {
		writeError(w, http.StatusConflict, fmt.Sprintf("v%d of %s is not running (it is %s); stage it first so that it runs beside the active release", version, app.Name, rel.Status))
		return
	}
	cfg := router.ShadowConfig{Release: "v" + strconv.Itoa(version), Addrs: addrs, Percent: body.Percent, Methods: methods}
	if err := s.switcher.router.SetShadow(app.Name, cfg); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st, _ := s.switcher.router.Shadow(app.Name)
	msg := fmt.Sprintf("shadow started: %d%% of %s requests mirrored to %s", st.Percent, strings.Join(st.Methods, ","), st.Release)
	s.shadowEvent(app.Name, version, msg)
	writeJSON(w, http.StatusOK, newShadowInfo(app.Name, st, true))
}

func (s *server) getShadow(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	st, active := s.switcher.router.Shadow(app.Name)
	writeJSON(w, http.StatusOK, newShadowInfo(app.Name, st, active))
}

func (s *server) stopShadow(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	st, err := s.switcher.router.StopShadow(app.Name)
	if errors.Is(err, router.ErrNoShadow) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("app %s has no shadow; start one with `plat shadow %s vN`", app.Name, app.Name))
		return
	}
	if err != nil {
		s.internalError(w, err)
		return
	}
	version, _ := parseVersion(st.Release)
	s.shadowEvent(app.Name, version, fmt.Sprintf("shadow of %s stopped: %d mirrored, %d dropped, %d match, %d mismatch, %d errors",
		st.Release, st.Mirrored, st.Dropped, st.Match, st.Mismatch, st.Errors))
	writeJSON(w, http.StatusOK, newShadowInfo(app.Name, st, false))
}

func (s *server) shadowEvent(app string, version int, msg string) {
	if err := s.store.AddEvent(store.Event{App: app, Kind: "shadow", Release: version, Message: msg}); err != nil {
		s.log.Warn("record shadow event", "app", app, "error", err)
	}
	s.log.Info(msg, "app", app)
}

// newShadowInfo is the API's view of a shadow's stats.
func newShadowInfo(app string, st router.ShadowStats, active bool) api.Shadow {
	out := api.Shadow{
		App: app, Active: active, Release: st.Release, Addrs: st.Addrs, Percent: st.Percent, Methods: st.Methods,
		Started: st.Started, Mirrored: st.Mirrored, Dropped: st.Dropped, TooLarge: st.TooLarge, Errors: st.Errors,
		Match: st.Match, Mismatch: st.Mismatch, Pairs: st.Pairs,
	}
	q := func(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }
	if st.Live.Count() > 0 {
		out.LiveP50, out.LiveP99 = q(st.Live.Quantile(0.5)), q(st.Live.Quantile(0.99))
	}
	if st.Shadow.Count() > 0 {
		out.ShadowP50, out.ShadowP99 = q(st.Shadow.Quantile(0.5)), q(st.Shadow.Quantile(0.99))
	}
	return out
}

// endShadowOf stops app's shadow when it mirrors to release version: a
// release about to go live must not also get copies of the live requests
// (they would reach it twice, once marked Plat-Shadow).
func (s *server) endShadowOf(app string, version int) {
	st, ok := s.switcher.router.Shadow(app)
	if !ok || st.Release != "v"+strconv.Itoa(version) {
		return
	}
	if st, err := s.switcher.router.StopShadow(app); err == nil {
		s.shadowEvent(app, version, fmt.Sprintf("shadow of %s stopped: it is being promoted (%d mirrored, %d match, %d mismatch)",
			st.Release, st.Mirrored, st.Match, st.Mismatch))
	}
}
