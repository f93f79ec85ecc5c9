package cli

import (
	"time"

	"github.com/plat-paas/plat/api"
)

// statusString is an app's status with its sleep stage: "sleeping (warm)".
func statusString(a api.App) string {
	if a.Status == api.StatusSleeping && a.Sleep != "" {
		return a.Status + " (" + a.Sleep + ")"
	}
	return orDash(a.Status)
}

// replicaState is a replica's STATE column: "sleeping (cold)".
func replicaState(r api.Replica) string {
	if r.Sleep != "" {
		return r.State + " (" + r.Sleep + ")"
	}
	return orDash(r.State)
}

// standbyString describes an app's standby: "v3, 2 replicas paused until
// 14:05:00".
func standbyString(a api.App) string {
	sb := a.Standby
	if sb == nil {
		return "none"
	}
	return vstr(sb.Release) + ", " + plural(sb.Replicas, "replica") + " paused until " + sb.Until.Local().Format(time.TimeOnly) + " (plat rollback to it takes milliseconds)"
}

// parseColdAfter checks --cold-after: a duration, 0 to stop at once.
func parseColdAfter(s string) (*string, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return nil, usagef("--cold-after %q: give a duration like 30m or 1h, or 0 to stop a sleeping app at once", s)
	}
	return &s, nil
}
