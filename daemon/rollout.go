package daemon

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/deploy"
)

// rolloutActionTimeout bounds how long promote and abort wait for the
// rollout to switch traffic (it acts within one check interval).
const rolloutActionTimeout = 30 * time.Second

// rolloutRoutes: the rollout in progress, and promote and abort. None of
// them waits for the release lock the rollout's push holds.
func (s *server) rolloutRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/apps/{app}/rollout", s.getRollout)
	mux.HandleFunc("POST /api/apps/{app}/rollout/promote", s.promoteRollout)
	mux.HandleFunc("POST /api/apps/{app}/rollout/abort", s.abortRollout)
}

func (s *server) getRollout(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	st, ok := s.deployer.RolloutStatus(app.Name)
	if !ok {
		writeError(w, http.StatusNotFound, "no rollout in progress for "+app.Name)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *server) promoteRollout(w http.ResponseWriter, r *http.Request) {
	s.rolloutAction(w, r, "promoted", func(ctx context.Context, app string) (api.Rollout, error) {
		return s.deployer.PromoteRollout(ctx, app)
	})
}

func (s *server) abortRollout(w http.ResponseWriter, r *http.Request) {
	s.rolloutAction(w, r, "aborted", func(ctx context.Context, app string) (api.Rollout, error) {
		return s.deployer.AbortRollout(ctx, app, "rollout:abort")
	})
}

// rolloutAction asks the rollout to act and answers once traffic switched.
func (s *server) rolloutAction(w http.ResponseWriter, r *http.Request, action string, act func(context.Context, string) (api.Rollout, error)) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), rolloutActionTimeout)
	defer cancel()
	st, err := act(ctx, app.Name)
	switch {
	case errors.Is(err, deploy.ErrNoRollout):
		writeError(w, http.StatusNotFound, "no rollout in progress for "+app.Name+"; see `plat releases "+app.Name+"`")
	case err != nil:
		s.internalError(w, err)
	default:
		writeJSON(w, http.StatusOK, api.RolloutAction{App: app.Name, Release: st.To, Action: action})
	}
}
