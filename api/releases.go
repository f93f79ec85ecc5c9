package api

import "time"

// Release causes (Release.Cause).
const (
	CausePush      = "push"
	CauseConfig    = "config"
	CauseRollback  = "rollback"
	CauseResources = "resources"
)

// Release statuses (Release.Status).
const (
	ReleaseDeploying  = "deploying"  // being built, started or health-checked
	ReleaseActive     = "active"     // the one release the router serves
	ReleaseSuperseded = "superseded" // was active, replaced by a newer release
	ReleaseFailed     = "failed"     // never went live; Reason says why
	ReleaseStaged     = "staged"     // running at its preview URL only, until promoted
	ReleaseUnstaged   = "unstaged"   // was staged, stopped without going live
)

// Release modes (App.ReleaseMode, PUT /api/apps/{app}/release-mode).
const (
	ReleaseModeAuto   = "auto"   // pushes and config changes go live (the default)
	ReleaseModeManual = "manual" // they stop at staged; promote releases them
)

// ReleaseMode is GET and the body of PUT /api/apps/{app}/release-mode.
type ReleaseMode struct {
	Mode string `json:"mode"`
}

// Release is one numbered version of an app: each item of
// GET /api/apps/{app}/releases and the result of a deploying operation. It
// carries its config's keys, never their values (GET .../config has them).
type Release struct {
	App     string `json:"app"`
	Version int    `json:"version"`
	Cause   string `json:"cause"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"` // why it failed, or "rollback to v3"
	// RolledBackTo is the version a rollback release brought back (Cause
	// rollback), 0 otherwise.
	RolledBackTo int    `json:"rolled_back_to,omitempty"`
	ImageID      string `json:"image_id,omitempty"`
	GitSHA       string `json:"git_sha,omitempty"`
	// CommittedAt is the commit time of GitSHA, read at push time; zero when
	// unknown (releases made before plat recorded it).
	CommittedAt time.Time        `json:"committed_at,omitzero"`
	ConfigKeys  []string         `json:"config_keys"`
	Resources   ReleaseResources `json:"resources,omitzero"`
	// Procfile is the commands of the pushed commit's Procfile by process
	// type; config, resources and rollback releases carry the one of the
	// release whose image they run.
	Procfile    map[string]string `json:"procfile,omitempty"`
	ContainerID string            `json:"container_id,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	// FinishedAt is when it went live or failed; zero while deploying.
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// PreviewURL is where a running release (staged or active) answers on
	// its own: https://vN.APP.<domain>/.
	PreviewURL string `json:"preview_url,omitempty"`
}

// Rollback is the body of POST /api/apps/{app}/rollback; Version 0 means
// the release before the active one.
type Rollback struct {
	Version int `json:"version"`
}

// Config is GET /api/apps/{app}/config: the config vars of the next
// release, by key.
type Config map[string]string

// ConfigChange is the body of POST /api/apps/{app}/config.
type ConfigChange struct {
	Set   map[string]string `json:"set,omitempty"`
	Unset []string          `json:"unset,omitempty"`
}

// Event is one entry of an app's deploy timeline (GET .../events).
type Event struct {
	App     string    `json:"app"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Release int       `json:"release,omitempty"`
	Message string    `json:"message"`
}

// Progress is GET /api/apps/{app}/deploy: the output of the app's latest
// deploy, from line ?from on.
type Progress struct {
	Version  int       `json:"version"`
	Running  bool      `json:"running"`
	Started  time.Time `json:"started"`
	Lines    []string  `json:"lines"`
	Dropped  int       `json:"dropped,omitempty"` // lines cut from the front
	Finished time.Time `json:"finished,omitzero"`
}
