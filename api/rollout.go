package api

import "time"

// Rollout is a rollout in progress (GET /api/apps/{app}/rollout): which
// step it is at, the weights, and the router's numbers of each release in
// the current step. A 404 means no rollout is in progress.
type Rollout struct {
	App      string `json:"app"`
	Strategy string `json:"strategy"` // "canary"
	// From is the stable release, To the one being rolled out.
	From int `json:"from"`
	To   int `json:"to"`
	// State is "starting" (the new replicas start and are health-checked),
	// "step" (a step runs), "promoting" or "aborting".
	State string `json:"state"`
	// Step is the current step, 1-based (0 while starting), of Steps
	// (percent of requests to To).
	Step  int   `json:"step"`
	Steps []int `json:"steps"`
	// Weight is the percent of requests To gets now.
	Weight      int       `json:"weight"`
	Started     time.Time `json:"started"`
	StepStarted time.Time `json:"step_started,omitzero"`
	// StepEnds is when the step is judged (later if it is extended).
	StepEnds time.Time `json:"step_ends,omitzero"`
	// Extensions counts how often the step was extended for too few requests.
	Extensions int `json:"extensions,omitempty"`
	// Releases are the stable release then the canary, with their numbers
	// in the current step.
	Releases []RolloutRelease `json:"releases"`
}

// RolloutRelease is one release's share of a rollout's step.
type RolloutRelease struct {
	Version int    `json:"version"`
	Role    string `json:"role"` // "stable" or "canary"
	Weight  int    `json:"weight"`
	// Requests and Errors (5xx answers and proxy errors) in the step.
	Requests  uint64  `json:"requests"`
	Errors    uint64  `json:"errors"`
	ErrorRate float64 `json:"error_rate"` // percent of Requests
	// P50 and P99 latency in the step ("0s" without requests).
	P50 Duration `json:"p50"`
	P99 Duration `json:"p99"`
	// TotalRequests counts the release's requests since the rollout began.
	TotalRequests uint64 `json:"total_requests"`
}

// RolloutAction is the answer of POST .../rollout/promote and
// .../rollout/abort once the rollout acted on it.
type RolloutAction struct {
	App     string `json:"app"`
	Release int    `json:"release"`
	Action  string `json:"action"` // "promoted" or "aborted"
}
