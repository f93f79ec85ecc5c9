package daemon

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/deploy"
)

// cancelWait bounds how long deploy:cancel waits for the cancelled deploys
// to finish (remove their containers, record the failure).
const cancelWait = 30 * time.Second

// cancelDeploy cancels app's running deploys (pushes, config changes,
// rollbacks) at whatever step they are; each is rejected and its release
// fails with "cancelled by <token name>"; the active release keeps serving.
func (s *server) cancelDeploy(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	who := s.requester(r)
	ctx, cancel := context.WithTimeout(r.Context(), cancelWait)
	defer cancel()
	what := s.deployer.Cancel(ctx, app.Name, deploy.CancelledBy(who))
	if len(what) == 0 {
		writeError(w, http.StatusConflict, fmt.Sprintf("no deploy of %s is running; nothing to cancel", app.Name))
		return
	}
	s.log.Info("deploy cancelled", "app", app.Name, "by", who, "cancelled", strings.Join(what, ", "))
	writeJSON(w, http.StatusOK, api.Cancelled{App: app.Name, By: who, Cancelled: what})
}

// requester names who sent r: its token's name (the auth middleware put
// it in the request's context), or "a dashboard session".
func (s *server) requester(r *http.Request) string {
	if a, ok := authFromContext(r.Context()); ok && a.token.Name != "" {
		return a.token.Name
	}
	return "a dashboard session"
}
