package api

import "encoding/json"

// StreamLine is one line of the NDJSON answer of a long operation (config,
// rollback, resources, scale, restart): any number of progress lines, then
// exactly one terminal line carrying a release, an app or an error.
type StreamLine struct {
	Progress *string `json:"progress,omitempty"`
	// Release ends a deploying operation (config, rollback, resources).
	Release json.RawMessage `json:"release,omitempty"`
	// App ends a scale or restart.
	App   json.RawMessage `json:"app,omitempty"`
	Error *string         `json:"error,omitempty"`
}

// ProgressLine is a progress line of a stream.
func ProgressLine(s string) StreamLine { return StreamLine{Progress: &s} }

// ErrorLine is the terminal line of a failed operation.
func ErrorLine(msg string) StreamLine { return StreamLine{Error: &msg} }
