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
	// StatusStaged: built, started and healthy, serving only its preview
	// host (vN.APP.<domain>) until promoted; at most one per app.
	StatusStaged Status = "staged"
	// StatusUnstaged: was staged, then stopped (releases:unstage, or a
	// newer release was staged) without going live.
	StatusUnstaged Status = "unstaged"
)

// ReleaseMode says whether an app's pushes and config changes go live
// (auto, the default) or stop at staged (manual: `plat promote` releases).
type ReleaseMode string

const (
	ReleaseAuto   ReleaseMode = "auto"
	ReleaseManual ReleaseMode = "manual"
)

// Cause says what made a release.
type Cause string

const (
	CausePush     Cause = "push"
	CauseConfig   Cause = "config"
	CauseRollback Cause = "rollback"
	// CauseResources: a change of memory, CPU or read-only (resources:set).
	CauseResources Cause = "resources"
)

// Resources are the limits an app's containers run with. Zero fields mean
// "use the default"; the deploy package fills them in.
type Resources struct {
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	NanoCPUs    int64 `json:"nano_cpus,omitempty"` // 1e9 = one CPU
	// ReadOnly runs the containers with a read-only root filesystem.
	ReadOnly bool `json:"read_only,omitempty"`
}

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
	// Scale says how many replicas run; the zero value means one, always.
	Scale Scale `json:"scale,omitzero"`
	// Replicas is how many replicas run while the app is awake: the
	// autoscaler's last choice within the Scale bounds (0: the minimum).
	Replicas int `json:"replicas,omitempty"`
	// Asleep: plat stopped the app's containers because nobody used it
	// (Scale.Min is 0); the next request wakes it.
	Asleep bool `json:"asleep,omitempty"`
	// Warm: the sleeping app's containers are paused (memory kept, no
	// CPU), not stopped; AsleepSince is when it fell asleep, for the step
	// to cold (Scale.ColdAfter).
	Warm        bool      `json:"warm,omitempty"`
	AsleepSince time.Time `json:"asleep_since,omitzero"`
	// Standby is the previous release's paused replicas, kept after a
	// deploy for a fast rollback; zero when there is none.
	Standby Standby `json:"standby,omitzero"`
	// Resources for the next release, like Env.
	Resources Resources `json:"resources,omitzero"`
	// HSTSMaxAge > 0: the router sends Strict-Transport-Security with this
	// max-age on the app's HTTPS responses for hosts with a public
	// certificate (opt-in: `plat hsts:set`).
	HSTSMaxAge time.Duration `json:"hsts_max_age,omitempty"`
	// Strategy is how the app's next releases go live; the zero value
	// (and every record written before it existed) is blue-green.
	Strategy Strategy `json:"strategy,omitzero"`
	// Build holds the build args, secrets and target of the next push.
	Build BuildSettings `json:"build,omitzero"`
	// ReleaseMode: "" (every record written before it existed) is auto.
	ReleaseMode ReleaseMode `json:"release_mode,omitempty"`
	// Flags are the app's feature flags: name → percent of users (0..100)
	// it is on for. The router applies them; no release needed.
	Flags map[string]int `json:"flags,omitempty"`
	// RouterLogsOff stops the router's request lines in the app's logs
	// (on by default: `plat logs:router NAME off`).
	RouterLogsOff bool `json:"router_logs_off,omitempty"`
	// Preview is set on a branch preview's record (named
	// deploy.PreviewName(app, label)): what it previews.
	Preview *Preview `json:"preview,omitempty"`
	// PreviewEnv is config only the app's previews get, over Env.
	PreviewEnv map[string]string `json:"preview_env,omitempty"`
}

// Preview says which app and branch a preview record runs.
type Preview struct {
	App    string `json:"app"`
	Branch string `json:"branch"`
	Label  string `json:"label"` // host label: <label>.<app>.<domain>
	// LastPush is when the branch was last pushed.
	LastPush time.Time `json:"last_push"`
}

// Manual reports whether the app's new releases stop at staged.
func (a App) Manual() bool { return a.ReleaseMode == ReleaseManual }

// StrategyName names a release strategy.
type StrategyName string

// The release strategies; "" means StrategyBlueGreen.
const (
	StrategyBlueGreen StrategyName = "blue-green" // start beside, switch at once (the default)
	StrategyCanary    StrategyName = "canary"     // widen a share of traffic step by step, judged by the router
	StrategyRolling   StrategyName = "rolling"    // replace Batch replicas at a time
	StrategyInPlace   StrategyName = "in-place"   // stop the old, start the new, requests held meanwhile
)

// Strategy is an app's release strategy and its settings, as
// deploy.ParseStrategy stores them: every setting of Name is filled in
// (zero is a real value, e.g. MaxErrorRate 0 aborts on any error), and the
// settings of other strategies are zero. Like Scale it belongs to the app,
// not to a release.
type Strategy struct {
	Name StrategyName `json:"name,omitempty"`
	// Canary: traffic percentages, strictly increasing, the last 100.
	Steps []int `json:"steps,omitempty"`
	// Canary: how long each step lasts before it is judged.
	StepTime time.Duration `json:"step_time,omitempty"`
	// Canary: the highest share (percent) of the canary's requests of a
	// step that may fail (5xx answers and proxy errors).
	MaxErrorRate float64 `json:"max_error_rate,omitempty"`
	// Canary: the highest p99 latency of a step; 0 turns the check off.
	MaxP99 time.Duration `json:"max_p99,omitempty"`
	// Canary: fewer requests than this in a step leave it inconclusive.
	MinRequests int `json:"min_requests,omitempty"`
	// Rolling: replicas replaced at a time (and the surge above the count).
	Batch int `json:"batch,omitempty"`
	// In-place: how long the router holds requests while the new release starts.
	Hold time.Duration `json:"hold,omitempty"`
}

// Standby is a release's replicas paused after a deploy replaced it: a
// rollback to Release unpauses them instead of starting new containers.
type Standby struct {
	Release int       `json:"release"`
	IDs     []string  `json:"ids"`   // the paused containers
	Until   time.Time `json:"until"` // dropped (removed) then
}

// Scale is an app's replica settings. They belong to the app, not to a
// release: a rollback brings back code and config, and keeps the scale.
type Scale struct {
	// Min replicas always running; 0 lets the app sleep after Idle.
	Min int `json:"min"`
	// Max replicas; Max > max(Min, 1) turns on autoscaling. 0 means the
	// settings were never set: one replica, no sleeping, no autoscaling.
	Max int `json:"max"`
	// Idle is how long an app with Min 0 may go without requests before it
	// sleeps (0: the default).
	Idle time.Duration `json:"idle,omitempty"`
	// ColdAfter is how long a sleeping app stays warm (paused) before its
	// containers are stopped: 0 means the default, negative means at once
	// (no warm stage).
	ColdAfter time.Duration `json:"cold_after,omitempty"`
	// Target is the number of in-flight requests per replica the
	// autoscaler aims at (0: the default).
	Target int `json:"target,omitempty"`
}

// Release is one numbered, immutable-once-finished version of an app:
// an image plus a config snapshot.
type Release struct {
	App     string `json:"app"`
	Version int    `json:"version"`
	Cause   Cause  `json:"cause"`
	Status  Status `json:"status"`
	Reason  string `json:"reason,omitempty"` // why it failed, or "rollback to v3"
	// RolledBackTo is the version a rollback release brought back (0 for
	// other causes, and for rollbacks recorded before the field existed).
	RolledBackTo int `json:"rolled_back_to,omitempty"`
	// ContainersOf is the earlier release whose containers serve this one
	// (a rollback that unpaused a standby): they carry its version in their
	// labels. 0: the release's own containers.
	ContainersOf int    `json:"containers_of,omitempty"`
	ImageID      string `json:"image_id,omitempty"`
	GitSHA       string `json:"git_sha,omitempty"`
	// CommittedAt is the commit time of GitSHA, read from the repository
	// when it was pushed (DORA lead time); zero when unknown.
	CommittedAt time.Time         `json:"committed_at,omitzero"`
	Env         map[string]string `json:"env,omitempty"`
	Resources   Resources         `json:"resources,omitzero"`
	// Procfile is the commands of the pushed commit's Procfile by process
	// type (web, release); config, resources and rollback releases carry
	// the Procfile of the release whose image they run.
	Procfile    map[string]string `json:"procfile,omitempty"`
	ContainerID string            `json:"container_id,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	FinishedAt  time.Time         `json:"finished_at,omitempty"`

	// Dockerfile is the Dockerfile plat generated for a push without one
	// (config, resources and rollback releases carry that of their image);
	// empty when the repository's own Dockerfile was built.
	Dockerfile string `json:"dockerfile,omitempty"`
}
