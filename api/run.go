package api

// RunControl is a JSON (text) message of the `plat run` websocket
// (GET /api/apps/{app}/run); binary messages carry the streams.
type RunControl struct {
	EOF   bool    `json:"eof,omitempty"`   // client: stdin ended
	Exit  *int    `json:"exit,omitempty"`  // server: the command's exit code, last message
	Error *string `json:"error,omitempty"` // server: the run failed, last message
}
