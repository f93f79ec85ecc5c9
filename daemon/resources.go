package daemon

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/store"
)

// maxCPUsInput bounds the cpus a request may carry before it is turned into
// nano-CPUs (an int64); the engine's host bounds it far lower.
const maxCPUsInput = 1e6

// newResourcesInfo is an app's resource settings with the defaults filled in.
func newResourcesInfo(r store.Resources) api.Resources {
	return api.Resources{
		MemoryBytes: r.MemoryBytes, CPUs: float64(r.NanoCPUs) / 1e9, NanoCPUs: r.NanoCPUs,
		ReadOnly: r.ReadOnly, Description: deploy.DescribeResources(r),
	}
}

func (s *server) getResources(w http.ResponseWriter, r *http.Request) {
	if app, ok := s.app(w, r); ok {
		writeJSON(w, http.StatusOK, newResourcesInfo(s.deployer.EffectiveResources(app)))
	}
}

// setResources changes an app's limits as a new release, streaming progress
// like a config change; the last line is the release (zero when the app was
// never deployed or nothing changed).
func (s *server) setResources(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	var body api.ResourcesChange
	if !readJSON(w, r, &body) {
		return
	}
	change := deploy.ResourcesChange{MemoryBytes: body.MemoryBytes, ReadOnly: body.ReadOnly}
	if body.CPUs != nil {
		n := int64(math.Round(min(max(*body.CPUs, 0), maxCPUsInput) * 1e9))
		change.NanoCPUs = &n
	}
	if err := s.deployer.CheckResources(r.Context(), change); err != nil {
		if errors.Is(err, deploy.ErrInvalidResources) {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.internalError(w, err)
		return
	}
	streamOperation(w, r, func(ctx context.Context, out io.Writer) (any, error) {
		rel, err := s.deployer.SetResources(ctx, app.Name, change, out)
		if err == nil && rel.Version == 0 {
			return api.Release{}, nil // never deployed, or nothing changed
		}
		return releaseResult(rel, err)
	})
}
