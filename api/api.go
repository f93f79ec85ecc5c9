// Package api is plat's wire format: the request and response bodies of the
// daemon's HTTP API (docs/api.md), shared by the daemon, the CLI and the
// dashboard's documentation. It imports only the standard library, so the
// CLI depends on the wire format and nothing server-side.
//
// Conventions: times are RFC 3339 in UTC; durations are Go duration strings
// ("2s", "5m0s", see Duration); release versions are integers (3 for v3).
package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Error is the body of every error answer (4xx, 5xx) and the terminal line
// of a failed stream.
type Error struct {
	Error string `json:"error"`
	// Expired: a 401 because the API token expired; Error says what to do.
	Expired bool `json:"expired,omitempty"`
}

// OK is the answer of GET /api/whoami.
type OK struct {
	OK bool `json:"ok"`
}

// Duration is a time.Duration that travels as a Go duration string ("2s",
// "1m30s"). It also reads a bare number of nanoseconds, which daemons before
// this package wrote for health-check durations.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String is the Go duration string, e.g. "2s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	switch {
	case s == "null":
		return nil
	case strings.HasPrefix(s, `"`):
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		if str == "" {
			*d = 0
			return nil
		}
		v, err := time.ParseDuration(str)
		if err != nil {
			return fmt.Errorf("duration %q: give a Go duration like 2s or 500ms", str)
		}
		*d = Duration(v)
		return nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("duration %s: give a string like \"2s\"", s)
	}
	*d = Duration(int64(n))
	return nil
}
