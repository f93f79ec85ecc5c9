package api

import "time"

// App statuses (App.Status): what the app serves. A failed last deploy is
// not a status (the previous release keeps serving) but App.Warning.
const (
	StatusNew       = "new"       // never deployed
	StatusRunning   = "running"   // serving its active release
	StatusSleeping  = "sleeping"  // scaled to zero, wakes on the next request
	StatusDeploying = "deploying" // its latest release is being deployed
	StatusDown      = "down"      // an active release, but no replica running
)

// App is GET /api/apps/{app} and each item of GET /api/apps.
type App struct {
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	Status     string    `json:"status"`
	Active     int       `json:"active"` // active release version, 0 when none
	URL        string    `json:"url"`
	GitURL     string    `json:"git_url"`
	GitSHA     string    `json:"git_sha,omitempty"`
	ImageID    string    `json:"image_id,omitempty"`
	DeployedAt time.Time `json:"deployed_at,omitzero"`
	// Health as set; zero fields mean the default.
	Health  HealthCheck `json:"health"`
	EnvKeys []string    `json:"env_keys"`
	// Replicas running now: 0 while sleeping or before the first deploy.
	Replicas int      `json:"replicas"`
	Scale    Scale    `json:"scale"`
	HSTS     HSTS     `json:"hsts"`
	Strategy Strategy `json:"strategy"`
	// ReleaseMode is auto or manual; Staged the staged release (0: none)
	// and StagedURL its preview URL.
	ReleaseMode string `json:"release_mode"`
	Staged      int    `json:"staged,omitempty"`
	StagedURL   string `json:"staged_url,omitempty"`
	// LastFailed is the newest release when its deploy failed: a warning
	// beside Status, which says what is served.
	LastFailed *FailedDeploy `json:"last_failed,omitempty"`
	Warning    string        `json:"warning,omitempty"`
	// Sleep is the stage of a sleeping app: SleepWarm or SleepCold; empty
	// while it is not asleep.
	Sleep string `json:"sleep,omitempty"`
	// Standby is the previous release kept paused for a fast rollback;
	// nil when there is none.
	Standby *Standby `json:"standby,omitempty"`
}

// FailedDeploy is an app's newest release when its deploy failed.
type FailedDeploy struct {
	Version    int       `json:"version"`
	Reason     string    `json:"reason"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Sleep stages (App.Sleep, Replica.Sleep).
const (
	SleepWarm = "warm" // containers paused: memory kept, no CPU, wakes in milliseconds
	SleepCold = "cold" // containers stopped
)

// Standby is a release whose replicas are paused after a deploy replaced
// it: `plat rollback` to it unpauses them instead of starting containers.
type Standby struct {
	Release  int       `json:"release"`
	Replicas int       `json:"replicas"`
	Until    time.Time `json:"until"` // removed then, or earlier on the next deploy or under memory pressure
}

// CreateApp is the body of POST /api/apps.
type CreateApp struct {
	Name string `json:"name"`
}

// Destroyed is the answer of DELETE /api/apps/{app}.
type Destroyed struct {
	Destroyed string `json:"destroyed"`
}

// HealthCheck is an app's health-check settings, and the body of
// PUT /api/apps/{app}/health: fields left out (or zero) keep their value.
type HealthCheck struct {
	Path     string   `json:"path,omitempty"`
	Timeout  Duration `json:"timeout,omitzero"`  // one attempt
	Interval Duration `json:"interval,omitzero"` // between attempts
	Deadline Duration `json:"deadline,omitzero"` // whole check
}

// Scale is an app's replica settings with the defaults filled in.
type Scale struct {
	Min    int      `json:"min"`
	Max    int      `json:"max"`
	Idle   Duration `json:"idle"`
	Target int      `json:"target"`
	// ColdAfter is how long a sleeping app stays warm (paused) before its
	// containers are stopped; 0: stopped at once.
	ColdAfter   Duration `json:"cold_after"`
	Description string   `json:"description"`
}

// ScaleChange is the body of POST /api/apps/{app}/scale: only the fields
// given change. Replicas sets a fixed count (min = max).
type ScaleChange struct {
	Replicas *int    `json:"replicas,omitempty"`
	Min      *int    `json:"min,omitempty"`
	Max      *int    `json:"max,omitempty"`
	Idle     *string `json:"idle,omitempty"` // a duration like "5m"
	Target   *int    `json:"target,omitempty"`
	// ColdAfter is a duration like "1h"; "0" stops a sleeping app at once.
	ColdAfter *string `json:"cold_after,omitempty"`
}

// HSTS is an app's Strict-Transport-Security setting.
type HSTS struct {
	Enabled bool `json:"enabled"`
	// MaxAge in seconds (the header's unit); 0 when off.
	MaxAge int64 `json:"max_age"`
	// Header is the Strict-Transport-Security value sent, "" when off.
	Header string `json:"header"`
	// Note says where the header is sent.
	Note string `json:"note"`
}

// HSTSChange is the body of PUT /api/apps/{app}/hsts.
type HSTSChange struct {
	Enabled *bool  `json:"enabled"`
	MaxAge  *int64 `json:"max_age,omitempty"` // seconds; default one year
}

// Resources is GET /api/apps/{app}/resources: the limits with the defaults
// filled in.
type Resources struct {
	MemoryBytes int64   `json:"memory_bytes"`
	CPUs        float64 `json:"cpus"`
	NanoCPUs    int64   `json:"nano_cpus"`
	ReadOnly    bool    `json:"read_only"`
	Description string  `json:"description"`
}

// ResourcesChange is the body of POST /api/apps/{app}/resources: only the
// fields given change.
type ResourcesChange struct {
	MemoryBytes *int64   `json:"memory_bytes,omitempty"`
	CPUs        *float64 `json:"cpus,omitempty"`
	ReadOnly    *bool    `json:"read_only,omitempty"`
}

// ReleaseResources are the limits a release was deployed with; zero fields
// mean the default of the time.
type ReleaseResources struct {
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	NanoCPUs    int64 `json:"nano_cpus,omitempty"`
	ReadOnly    bool  `json:"read_only,omitempty"`
}

// Domains is GET /api/apps/{app}/domains and the answer of adding or
// removing one.
type Domains struct {
	App     string   `json:"app"`
	Default string   `json:"default"` // <app>.<domain>, always served
	Domains []string `json:"domains"` // custom domains
}

// AddDomain is the body of POST /api/apps/{app}/domains.
type AddDomain struct {
	Domain string `json:"domain"`
}

// Replica is one item of GET /api/apps/{app}/ps.
type Replica struct {
	Name        string `json:"name"`  // container name, e.g. plat-myapp-v3.2
	Label       string `json:"label"` // e.g. web.2
	ContainerID string `json:"container_id"`
	Index       int    `json:"index"`
	Release     int    `json:"release"`
	Addr        string `json:"addr"`            // where the router reaches it
	State       string `json:"state"`           // running, sleeping
	Sleep       string `json:"sleep,omitempty"` // a sleeping replica's stage: warm (paused) or cold (stopped)
	InFlight    int64  `json:"in_flight"`
}

// Cancelled is the answer of POST /api/apps/{app}/deploy/cancel.
type Cancelled struct {
	App       string   `json:"app"`
	By        string   `json:"by"`
	Cancelled []string `json:"cancelled"`
}

// LogLine is one line of GET /api/apps/{app}/logs?format=json.
type LogLine struct {
	Time    time.Time `json:"time"`
	Text    string    `json:"text"`
	Replica string    `json:"replica,omitempty"`
	Source  string    `json:"source,omitempty"` // "router" for the router's request lines
}
