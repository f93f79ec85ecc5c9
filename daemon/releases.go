package daemon

import (
	"maps"
	"slices"
	"time"

	"github.com/plat-paas/plat/store"
)

// releaseInfo is the API's view of a release: its config's keys but not
// their values, which only GET /api/apps/{app}/config returns. Lists of
// releases travel further (logs, screenshots, the dashboard) than a
// request for the config does.
type releaseInfo struct {
	App         string          `json:"app"`
	Version     int             `json:"version"`
	Cause       store.Cause     `json:"cause"`
	Status      store.Status    `json:"status"`
	Reason      string          `json:"reason,omitempty"`
	ImageID     string          `json:"image_id,omitempty"`
	GitSHA      string          `json:"git_sha,omitempty"`
	ConfigKeys  []string        `json:"config_keys"`
	Resources   store.Resources `json:"resources,omitzero"`
	ContainerID string          `json:"container_id,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	FinishedAt  time.Time       `json:"finished_at"`
}

func newReleaseInfo(r store.Release) releaseInfo {
	return releaseInfo{
		App: r.App, Version: r.Version, Cause: r.Cause, Status: r.Status, Reason: r.Reason,
		ImageID: r.ImageID, GitSHA: r.GitSHA, ConfigKeys: slices.Sorted(maps.Keys(r.Env)),
		Resources: r.Resources, ContainerID: r.ContainerID, CreatedAt: r.CreatedAt, FinishedAt: r.FinishedAt,
	}
}

// releaseResult turns a release operation's result into its API view.
func releaseResult(r store.Release, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return newReleaseInfo(r), nil
}
