package daemon

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// restartApp replaces every replica of the app with a new container of
// its active release, streaming progress like a deploy; the last line is
// the app.
func (s *server) restartApp(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	if app.Active == 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s has never been deployed, so there is nothing to restart; push it first (git push platform main)", app.Name))
		return
	}
	streamResult(w, r, "app", func(ctx context.Context, out io.Writer) (any, error) {
		if err := s.deployer.Restart(ctx, app.Name, out); err != nil {
			return nil, err
		}
		a, err := s.store.GetApp(app.Name)
		if err != nil {
			return nil, err
		}
		return s.info(a), nil
	})
}
