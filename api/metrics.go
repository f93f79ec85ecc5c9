package api

import "time"

// MetricsPoint is the router's traffic of one window (or of a whole query:
// the totals).
type MetricsPoint struct {
	// Time is the end of the window.
	Time        time.Time `json:"time"`
	Requests    uint64    `json:"requests"`
	Status1xx   uint64    `json:"status_1xx"`
	Status2xx   uint64    `json:"status_2xx"`
	Status3xx   uint64    `json:"status_3xx"`
	Status4xx   uint64    `json:"status_4xx"`
	Status5xx   uint64    `json:"status_5xx"`
	NoStatus    uint64    `json:"no_status"`
	ProxyErrors uint64    `json:"proxy_errors"`
	Bytes       uint64    `json:"bytes"`
	// InFlight is the most requests in flight seen at the end of a bucket
	// of the window (the current count for the partial one).
	InFlight int64 `json:"in_flight"`
	// ErrorRate is Status5xx/Requests (0 without requests).
	ErrorRate float64 `json:"error_rate"`
	// Latency quantiles in milliseconds (within ±6.25%), 0 without requests.
	P50Ms float64 `json:"p50_ms"`
	P95Ms float64 `json:"p95_ms"`
	P99Ms float64 `json:"p99_ms"`
	// Partial marks the window that holds the current, unfinished interval.
	Partial bool `json:"partial,omitempty"`
}

// MetricsSeries is the traffic of an app or of one of its releases.
type MetricsSeries struct {
	Release string         `json:"release,omitempty"` // "" for the app's totals
	Totals  MetricsPoint   `json:"totals"`
	Points  []MetricsPoint `json:"points"`
}

// AppMetrics is the answer of GET /api/apps/{app}/metrics.
type AppMetrics struct {
	App string `json:"app"`
	// Since and Step are the window asked for and the width of a point.
	Since Duration `json:"since"`
	Step  Duration `json:"step"`
	// Interval is the sampler's bucket width, Retention how far back it keeps.
	Interval  Duration        `json:"interval"`
	Retention Duration        `json:"retention"`
	Now       time.Time       `json:"now"`
	Totals    MetricsPoint    `json:"totals"`
	Points    []MetricsPoint  `json:"points"`
	Releases  []MetricsSeries `json:"releases"`
	// RouterLogs says whether the router writes the app's request lines.
	RouterLogs bool `json:"router_logs"`
	// RouterLogsDropped counts the request lines of every app dropped
	// because the log hand-over was full (a burst beyond its buffer).
	RouterLogsDropped uint64 `json:"router_logs_dropped"`
}

// RouterLogs is the body and the answer of PUT /api/apps/{app}/router-logs.
// In the body only Enabled counts.
type RouterLogs struct {
	App     string `json:"app,omitempty"`
	Enabled bool   `json:"enabled"`
}
