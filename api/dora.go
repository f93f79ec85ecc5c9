package api

import "time"

// DORA is GET /api/dora (the host: every app together) and
// GET /api/apps/{app}/dora: the four DORA metrics over the last Days days
// and their weekly trend. docs/dora.md defines each number.
type DORA struct {
	App string `json:"app,omitempty"` // absent for the host
	// Days is the window, ending now; From and To (embedded) are its ends.
	Days int `json:"days"`
	// FixWindow: a change replaced by another within it counted as failed.
	FixWindow Duration `json:"fix_window"`
	DORAPeriod
	// Trend is the window in periods of 7 days, oldest first; the oldest
	// is shorter when Days is not whole weeks.
	Trend []DORAPeriod `json:"trend"`
}

// DORAPeriod is the four metrics over [From, To).
type DORAPeriod struct {
	From                time.Time           `json:"from"`
	To                  time.Time           `json:"to"`
	DeploymentFrequency DeploymentFrequency `json:"deployment_frequency"`
	LeadTime            DORATime            `json:"lead_time"`
	ChangeFailureRate   ChangeFailureRate   `json:"change_failure_rate"`
	TimeToRestore       DORATime            `json:"time_to_restore"`
}

// DORA bands (the Band fields), best first; absent when there is nothing
// to rate.
const (
	BandElite  = "elite"
	BandHigh   = "high"
	BandMedium = "medium"
	BandLow    = "low"
)

// DeploymentFrequency counts the changes that went live.
type DeploymentFrequency struct {
	Deploys int     `json:"deploys"`
	PerDay  float64 `json:"per_day"`
	PerWeek float64 `json:"per_week"`
	Band    string  `json:"band,omitempty"`
}

// DORATime is the median of a set of durations (lead times, or times to
// restore); Median is null when there are none.
type DORATime struct {
	Median  *Duration `json:"median"`
	Samples int       `json:"samples"`
	Band    string    `json:"band,omitempty"`
}

// ChangeFailureRate is the share of changes that failed in production;
// Rate (0 to 1) is null without changes.
type ChangeFailureRate struct {
	Failed  int      `json:"failed"`
	Deploys int      `json:"deploys"`
	Rate    *float64 `json:"rate"`
	Band    string   `json:"band,omitempty"`
}
