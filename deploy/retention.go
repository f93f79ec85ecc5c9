package deploy

import (
	"context"
	"errors"

	"github.com/plat-paas/plat/builder"
	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

// pruneImages removes the images of releases older than the newest
// cfg.Retain, unless a kept release (or the active one) uses the same image.
// It removes the tags the builds gave them, not the image IDs: an image
// another app's build shares (same source, same ID) keeps that app's tag
// and stays; an image goes with its last tag.
func (rl *Releases) pruneImages(ctx context.Context, app string) {
	releases, err := rl.store.ListReleases(app)
	if err != nil {
		return
	}
	a, err := rl.store.GetApp(app)
	if err != nil {
		return
	}
	keep := map[string]bool{}
	cut := len(releases) - rl.cfg.Retain
	for i, r := range releases {
		if i >= cut || r.Version == a.Active || r.Status == store.StatusStaged {
			keep[r.ImageID] = true
		}
	}
	for i, r := range releases {
		if i >= cut || r.Status == store.StatusStaged || r.Cause != store.CausePush || r.ImageID == "" || keep[r.ImageID] {
			continue
		}
		tag := builder.InstanceTag(rl.cfg.Instance, app, r.Version)
		if err := rl.engine.RemoveImage(ctx, tag); err != nil {
			if !errors.Is(err, engine.ErrNotFound) {
				rl.log.Warn("remove old image", "app", app, "release", r.Version, "tag", tag, "err", err)
			}
			continue
		}
		rl.log.Info("removed old image", "app", app, "release", r.Version, "tag", tag, "image", shortID(r.ImageID))
	}
}
