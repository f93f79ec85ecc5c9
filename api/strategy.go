package api

// Strategy is an app's release strategy (GET/PUT /api/apps/{app}/strategy):
// the settings of its strategy, durations as strings, and a one-line
// description. In a PUT, settings left out take their defaults.
type Strategy struct {
	Name         string   `json:"name"`
	Steps        []int    `json:"steps,omitempty"`
	StepTime     string   `json:"step_time,omitempty"`
	MaxErrorRate *float64 `json:"max_error_rate,omitempty"`
	MaxP99       string   `json:"max_p99,omitempty"` // "0s": off
	MinRequests  *int     `json:"min_requests,omitempty"`
	Batch        *int     `json:"batch,omitempty"`
	Hold         string   `json:"hold,omitempty"`
	Description  string   `json:"description,omitempty"`
}
