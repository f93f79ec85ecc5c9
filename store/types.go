package store

import (
	"errors"
	"time"
)

// Sentinel errors; callers test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrInvalidState: the release's status does not allow the change
	// (e.g. activating a failed release, failing an active one).
	ErrInvalidState = errors.New("invalid release state")
)

// Status of a release.
type Status string

const (
	StatusDeploying  Status = "deploying"  // being built, started or health-checked
	StatusActive     Status = "active"     // the one release the router serves
	StatusSuperseded Status = "superseded" // was active, replaced by a newer release
	StatusFailed     Status = "failed"     // never went live; Reason says why
)

// Cause says what made a release.
type Cause string

const (
	CausePush     Cause = "push"
	CauseConfig   Cause = "config"
	CauseRollback Cause = "rollback"
)

// HealthCheck is an app's health-check settings. Zero fields mean "use the default".
type HealthCheck struct {
	Path     string        `json:"path,omitempty"`
	Timeout  time.Duration `json:"timeout,omitempty"`  // one attempt
	Interval time.Duration `json:"interval,omitempty"` // between attempts
	Deadline time.Duration `json:"deadline,omitempty"` // whole check
}

// App is a deployable application.
type App struct {
	Name      string            `json:"name"`
	CreatedAt time.Time         `json:"created_at"`
	Env       map[string]string `json:"env,omitempty"` // config for the next release
	Health    HealthCheck       `json:"health"`
	// Active is the version of the active release, 0 when none.
	Active int `json:"active"`
	// Domains are custom host names served besides <name>.<base domain>;
	// one host belongs to one app at most (AddDomain).
	Domains []string `json:"domains,omitempty"`
}

// Release is one numbered, immutable-once-finished version of an app:
// an image plus a config snapshot.
type Release struct {
	App         string            `json:"app"`
	Version     int               `json:"version"`
	Cause       Cause             `json:"cause"`
	Status      Status            `json:"status"`
	Reason      string            `json:"reason,omitempty"` // why it failed, or "rollback to v3"
	ImageID     string            `json:"image_id,omitempty"`
	GitSHA      string            `json:"git_sha,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	ContainerID string            `json:"container_id,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	FinishedAt  time.Time         `json:"finished_at,omitempty"`
}
