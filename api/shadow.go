package api

import "time"

// ShadowStart (POST /api/apps/{app}/shadow) mirrors the app's live requests
// to a running release that is not the active one.
type ShadowStart struct {
	Release string   `json:"release"`           // "v8" or "8"
	Percent int      `json:"percent,omitempty"` // of eligible requests, 1..100; default 100
	Methods []string `json:"methods,omitempty"` // default GET, HEAD
}

// Shadow is an app's shadow and how its answers compare with the live ones
// (GET /api/apps/{app}/shadow; DELETE returns the final numbers).
type Shadow struct {
	App     string    `json:"app"`
	Active  bool      `json:"active"`
	Release string    `json:"release,omitempty"`
	Addrs   []string  `json:"addrs,omitempty"`
	Percent int       `json:"percent,omitempty"`
	Methods []string  `json:"methods,omitempty"`
	Started time.Time `json:"started,omitzero"`

	Mirrored uint64 `json:"mirrored"`  // copies sent to the shadow
	Dropped  uint64 `json:"dropped"`   // copies dropped: the queue was full
	TooLarge uint64 `json:"too_large"` // not mirrored: body over 1 MiB
	Errors   uint64 `json:"errors"`    // copies the shadow did not answer
	Match    uint64 `json:"match"`     // same status class as live
	Mismatch uint64 `json:"mismatch"`  // another status class
	// Pairs counts answered copies by (live, shadow) status class: "2xx→5xx".
	Pairs map[string]uint64 `json:"pairs,omitempty"`
	// Latencies of the mirrored requests, as Go durations ("12.5ms").
	LiveP50   string `json:"live_p50,omitempty"`
	LiveP99   string `json:"live_p99,omitempty"`
	ShadowP50 string `json:"shadow_p50,omitempty"`
	ShadowP99 string `json:"shadow_p99,omitempty"`
}
