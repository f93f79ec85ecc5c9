package api

import "time"

// Preview is one item of GET /api/apps/{app}/previews: a branch's preview.
type Preview struct {
	Branch string `json:"branch"`
	// Label is the host label the branch slugs to: <label>.<app>.<domain>.
	Label string `json:"label"`
	// App is the preview's own app name (its releases, logs and events:
	// GET /api/apps/{app}/releases with this name).
	App      string    `json:"app"`
	Release  int       `json:"release"` // active version, 0 when none
	URL      string    `json:"url"`
	LastPush time.Time `json:"last_push"`
	// Status is running, sleeping, deploying, down or new (as App.Status).
	Status string `json:"status"`
}
