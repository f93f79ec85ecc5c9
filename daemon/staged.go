package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/router"
	"github.com/plat-paas/plat/store"
)

// Staged releases: an app in manual release mode stages its pushes and
// config changes at vN.APP.<domain>; promote releases one, unstage stops it.

func (s *server) stagedRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/apps/{app}/release-mode", s.getReleaseMode)
	mux.HandleFunc("PUT /api/apps/{app}/release-mode", s.setReleaseMode)
	mux.HandleFunc("POST /api/apps/{app}/releases/{version}/promote", s.promote)
	mux.HandleFunc("POST /api/apps/{app}/releases/{version}/unstage", s.unstage)
}

// releaseMode is the API's name of app's release mode.
func releaseMode(app store.App) string {
	if app.Manual() {
		return api.ReleaseModeManual
	}
	return api.ReleaseModeAuto
}

// withPreview adds the preview URL of a release that runs on its own host.
func (s *server) withPreview(r api.Release) api.Release {
	if r.Status == api.ReleaseStaged || r.Status == api.ReleaseActive {
		r.PreviewURL = s.switcher.PreviewURL(r.App, r.Version)
	}
	return r
}

// releaseResult is releaseResult with the preview URL.
func (s *server) releaseResult(r store.Release, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return s.withPreview(apiRelease(r)), nil
}

func (s *server) getReleaseMode(w http.ResponseWriter, r *http.Request) {
	if app, ok := s.app(w, r); ok {
		writeJSON(w, http.StatusOK, api.ReleaseMode{Mode: releaseMode(app)})
	}
}

// setReleaseMode stores the mode for the app's next releases; a staged
// release stays staged either way.
func (s *server) setReleaseMode(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	var body api.ReleaseMode
	if !readJSON(w, r, &body) {
		return
	}
	var mode store.ReleaseMode
	switch strings.ToLower(body.Mode) {
	case api.ReleaseModeAuto:
		mode = store.ReleaseAuto
	case api.ReleaseModeManual:
		mode = store.ReleaseManual
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf(`release mode %q is not one plat knows: use "auto" (pushes go live) or "manual" (pushes are staged; plat promote releases them)`, body.Mode))
		return
	}
	if err := s.store.UpdateApp(app.Name, func(a *store.App) error { a.ReleaseMode = mode; return nil }); err != nil {
		s.internalError(w, err)
		return
	}
	s.log.Info("release mode set", "app", app.Name, "mode", mode)
	if err := s.store.AddEvent(store.Event{App: app.Name, Kind: "release-mode", Message: "release mode set to " + string(mode)}); err != nil {
		s.log.Warn("record event", "app", app.Name, "err", err)
	}
	writeJSON(w, http.StatusOK, api.ReleaseMode{Mode: string(mode)})
}

// stagedVersion reads the {version} of a promote or unstage ("8" or "v8").
func stagedVersion(w http.ResponseWriter, r *http.Request) (int, bool) {
	raw := r.PathValue("version")
	v, err := strconv.Atoi(strings.TrimPrefix(raw, "v"))
	if err != nil || v <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad release version %q: use a release number like 8; see plat releases", raw))
		return 0, false
	}
	return v, true
}

// refuseNotStaged answers a promote or unstage of a release that is not
// staged: 404 for an unknown one, 409 for one in another state.
func (s *server) refuseNotStaged(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, deploy.ErrUnknownRelease):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, deploy.ErrNoRelease):
		writeError(w, http.StatusConflict, err.Error())
	default:
		s.internalError(w, err)
	}
}

func (s *server) promote(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	v, ok := stagedVersion(w, r)
	if !ok {
		return
	}
	// Refused before the streamed answer starts; Promote checks again
	// under the app's lock.
	if err := s.deployer.CheckPromote(app.Name, v); err != nil {
		s.refuseNotStaged(w, err)
		return
	}
	s.endShadowOf(app.Name, v)
	streamOperation(w, r, func(ctx context.Context, out io.Writer) (any, error) {
		return s.releaseResult(s.deployer.Promote(ctx, app.Name, v, out))
	})
}

func (s *server) unstage(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	v, ok := stagedVersion(w, r)
	if !ok {
		return
	}
	if err := s.deployer.CheckPromote(app.Name, v); err != nil {
		s.refuseNotStaged(w, err)
		return
	}
	rel, err := s.deployer.Unstage(r.Context(), app.Name, v, io.Discard)
	if err != nil {
		if errors.Is(err, deploy.ErrNoRelease) {
			s.refuseNotStaged(w, err)
			return
		}
		s.internalError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, apiRelease(rel))
}

// appsOnly is the router without the routes of release hosts
// (deploy.PreviewKey): the metrics count apps, and a vN.APP host's
// requests are not another app.
type appsOnly struct{ *router.Router }

func (a appsOnly) Apps() []string {
	return slices.DeleteFunc(a.Router.Apps(), func(key string) bool {
		_, _, ok := deploy.ParsePreviewKey(key)
		return ok
	})
}

// routeApp is the app a router route belongs to: a release host's route
// (deploy.PreviewKey) logs into its app's feed.
func routeApp(key string) string {
	if app, _, ok := deploy.ParsePreviewKey(key); ok {
		return app
	}
	return key
}
