package daemon

import (
	"fmt"
	"maps"
	"slices"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/store"
)

// This file turns store and deploy values into their wire form (package
// api): store types never reach a response, so a field added to the
// database is not published by accident.

// apiRelease is the API's view of a release: its config's keys but not
// their values, which only GET /api/apps/{app}/config returns. Lists of
// releases travel further (logs, screenshots, the dashboard) than a
// request for the config does.
func apiRelease(r store.Release) api.Release {
	return api.Release{
		App: r.App, Version: r.Version, Cause: string(r.Cause), Status: string(r.Status), Reason: r.Reason,
		RolledBackTo: rolledBackTo(r), ImageID: r.ImageID, GitSHA: r.GitSHA, CommittedAt: r.CommittedAt,
		ConfigKeys: slices.Sorted(maps.Keys(r.Env)),
		Resources: api.ReleaseResources{
			MemoryBytes: r.Resources.MemoryBytes, NanoCPUs: r.Resources.NanoCPUs, ReadOnly: r.Resources.ReadOnly,
		},
		Procfile: r.Procfile, ContainerID: r.ContainerID, CreatedAt: r.CreatedAt, FinishedAt: r.FinishedAt,
	}
}

// rolledBackTo is the version a rollback release brought back. Rollbacks
// recorded before the field existed have it only in their reason, which
// plat itself wrote as "rollback to vN".
func rolledBackTo(r store.Release) int {
	if r.Cause != store.CauseRollback {
		return 0
	}
	if r.RolledBackTo > 0 {
		return r.RolledBackTo
	}
	var v int
	if _, err := fmt.Sscanf(r.Reason, "rollback to v%d", &v); err == nil {
		return v
	}
	return 0
}

// releaseResult turns a release operation's result into its API view.
func releaseResult(r store.Release, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return apiRelease(r), nil
}

func apiHealth(h store.HealthCheck) api.HealthCheck {
	return api.HealthCheck{
		Path: h.Path, Timeout: api.Duration(h.Timeout), Interval: api.Duration(h.Interval), Deadline: api.Duration(h.Deadline),
	}
}

func apiReplica(r deploy.Replica, state string, inFlight int64) api.Replica {
	return api.Replica{
		Name: r.Name, Label: r.Label, ContainerID: r.ID, Index: r.Index, Release: r.Release, Addr: r.Addr,
		State: state, InFlight: inFlight,
	}
}

// apiEvents is the API's view of events, never null.
func apiEvents(events []store.Event) []api.Event {
	out := make([]api.Event, len(events))
	for i, e := range events {
		out[i] = api.Event{App: e.App, Time: e.Time, Kind: e.Kind, Release: e.Release, Message: e.Message}
	}
	return out
}
