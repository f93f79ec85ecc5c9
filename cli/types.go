package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// These mirror the daemon's JSON (docs/api.md, store/types.go) without importing
// server code, so the CLI only depends on the wire format.

// AppInfo is what the daemon answers for an app.
type AppInfo struct {
	Name       string      `json:"name"`
	CreatedAt  time.Time   `json:"created_at"`
	Status     string      `json:"status"`   // what it serves: new, running, sleeping, deploying, down
	Warning    string      `json:"warning"`  // e.g. the last deploy failed, with what is still served
	Active     int         `json:"active"`   // active release version, 0 when none
	Replicas   int         `json:"replicas"` // running now; 0 while sleeping
	Scale      Scale       `json:"scale"`
	URL        string      `json:"url"`
	GitURL     string      `json:"git_url"`
	GitSHA     string      `json:"git_sha"`
	ImageID    string      `json:"image_id"`
	DeployedAt time.Time   `json:"deployed_at"`
	Health     HealthCheck `json:"health"`
	EnvKeys    []string    `json:"env_keys"`
	HSTS       HSTS        `json:"hsts"`
}

// HealthCheck is an app's health-check settings; zero fields mean "the default".
type HealthCheck struct {
	Path     string   `json:"path,omitempty"`
	Timeout  Duration `json:"timeout,omitempty"`
	Interval Duration `json:"interval,omitempty"`
	Deadline Duration `json:"deadline,omitempty"`
}

// Scale is how many replicas an app runs: between Min and Max, adding
// replicas when in-flight requests per replica stay above Target; with Min 0
// it sleeps after Idle without requests and wakes on the next one.
type Scale struct {
	Min    int      `json:"min"`
	Max    int      `json:"max"`
	Idle   Duration `json:"idle,omitempty"`
	Target int      `json:"target,omitempty"`
}

// Replica is one container of an app (GET /api/apps/{app}/ps).
type Replica struct {
	Name        string `json:"name"`
	Label       string `json:"label"` // web.1
	ContainerID string `json:"container_id"`
	Release     int    `json:"release"`
	State       string `json:"state"` // running, starting, sleeping, exited
	Addr        string `json:"addr"`
	InFlight    int    `json:"in_flight"`
}

// Release is one numbered version of an app.
type Release struct {
	App         string    `json:"app"`
	Version     int       `json:"version"`
	Cause       string    `json:"cause"`  // push, config, rollback
	Status      string    `json:"status"` // deploying, active, superseded, failed
	Reason      string    `json:"reason,omitempty"`
	ImageID     string    `json:"image_id,omitempty"`
	GitSHA      string    `json:"git_sha,omitempty"`
	ConfigKeys  []string  `json:"config_keys"` // values: GET .../config
	ContainerID string    `json:"container_id,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	FinishedAt  time.Time `json:"finished_at,omitempty"`
}

// Duration reads both encodings a daemon may use: a Go duration string ("2s")
// or an integer count of nanoseconds (how encoding/json writes time.Duration).
// It writes the string form.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	switch {
	case s == "null" || s == `""`:
		*d = 0
		return nil
	case strings.HasPrefix(s, `"`):
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		v, err := time.ParseDuration(str)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*d = Duration(n)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("duration: cannot parse %s", s)
	}
	*d = Duration(int64(f))
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// Event is one entry of an app's deploy timeline.
type Event struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Release int       `json:"release,omitempty"`
	Message string    `json:"message"`
}
