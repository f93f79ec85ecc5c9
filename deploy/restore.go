package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/plat-paas/plat/builder"
	"github.com/plat-paas/plat/store"
)

// rebuildLogLines is how much of a failed rebuild's output its event keeps.
const rebuildLogLines = 10

// errImageMissing: the active release's image is not on the engine (the data
// dir was restored on another host, or someone removed the image); start-up
// leaves such an app to RebuildMissing instead of failing to start it.
var errImageMissing = errors.New("the image of the active release is missing")

// SourceFunc returns the source tree of app at commit sha as a tar stream
// (git archive). Close reports whether producing it failed.
type SourceFunc func(ctx context.Context, app, sha string) (io.ReadCloser, error)

// RebuildMissing finds the apps whose active release's image is gone, builds
// that image again from the release's git commit (source gives the tar) and
// brings the app up on it as the same release: same version, same config, no
// new release in the history. The releases that shared the old image point at
// the new one, so rolling back to them works too. Apps are rebuilt one after
// the other; a failure is logged and recorded as an event, and the others go
// on. It returns how many apps were rebuilt.
func (d *Deployer) RebuildMissing(ctx context.Context, source SourceFunc) int {
	apps, err := d.store.ListApps()
	if err != nil {
		d.log.Error("rebuild missing images: list apps", "err", err)
		return 0
	}
	// Awake apps first: they have traffic waiting; a sleeping app needs its
	// image only at its next request.
	slices.SortStableFunc(apps, func(a, b store.App) int { return cmpBool(a.Asleep, b.Asleep) })
	rebuilt := 0
	for _, a := range apps {
		if ctx.Err() != nil {
			break
		}
		if a.Active == 0 {
			continue
		}
		// Most apps have their image: look without taking the app's lock.
		if rel, err := d.store.GetRelease(a.Name, a.Active); err == nil {
			if missing, err := d.imageMissing(ctx, rel); err == nil && !missing {
				continue
			}
		}
		ok, err := d.rebuild(ctx, a.Name, source)
		if err != nil {
			d.log.Error("rebuild failed", "app", a.Name, "release", a.Active, "err", err)
			d.event(a.Name, "rebuild-failed", a.Active, "%v", err)
			continue
		}
		if ok {
			rebuilt++
		}
	}
	return rebuilt
}

// rebuild rebuilds app's active image if it is missing, under the app's lock,
// and reports whether it did.
func (d *Deployer) rebuild(ctx context.Context, appName string, source SourceFunc) (bool, error) {
	app, l, err := d.lockApp(ctx, appName, false, io.Discard)
	if err != nil {
		return false, err
	}
	defer l.Release()
	ctx = l.Context()
	if app.Active == 0 {
		return false, nil
	}
	rel, err := d.store.GetRelease(app.Name, app.Active)
	if err != nil {
		return false, fmt.Errorf("active release: %w", err)
	}
	if missing, err := d.imageMissing(ctx, rel); err != nil || !missing {
		return false, err
	}
	if rel.GitSHA == "" {
		return false, fmt.Errorf("v%d has no git commit recorded, so its image cannot be rebuilt; push the app again", rel.Version)
	}
	started := time.Now()
	d.event(app.Name, "rebuilding", rel.Version, "the image of v%d is missing: rebuilding it from commit %s", rel.Version, short(rel.GitSHA))
	src, err := source(ctx, app.Name, rel.GitSHA)
	if err != nil {
		return false, fmt.Errorf("read commit %s: %w", short(rel.GitSHA), err)
	}
	var buildLog bytes.Buffer
	imageID, err := d.builder.Build(ctx, builder.Request{
		App: app.Name, Version: rel.Version, GitSHA: rel.GitSHA, Source: src, Instance: d.cfg.Instance,
		BaseImages: d.cfg.BaseImages,
	}, &buildLog)
	if srcErr := src.Close(); err == nil && srcErr != nil {
		err = fmt.Errorf("read commit %s: %w", short(rel.GitSHA), srcErr)
	}
	if err != nil {
		return false, fmt.Errorf("build v%d from %s: %w\n%s", rel.Version, short(rel.GitSHA), err, lastLines(buildLog.String(), rebuildLogLines))
	}
	d.log.Info("rebuilt image", "app", app.Name, "release", rel.Version, "image", shortID(imageID), "took", time.Since(started).Round(time.Millisecond))
	if err := d.replaceImage(app.Name, rel.ImageID, rel.Version, imageID); err != nil {
		return false, err
	}
	unlockReplicas, err := d.locks.lockReplicas(ctx, app.Name)
	if err != nil {
		return false, err
	}
	_, err = d.adopt(ctx, app, nil)
	unlockReplicas()
	if err != nil {
		return false, fmt.Errorf("start v%d on the rebuilt image: %w", rel.Version, err)
	}
	d.event(app.Name, "rebuilt", rel.Version, "rebuilt image %s of v%d from commit %s in %s; v%d serves again",
		shortID(imageID), rel.Version, short(rel.GitSHA), time.Since(started).Round(time.Millisecond), rel.Version)
	return true, nil
}

// imageMissing reports whether rel's image is gone from the engine.
func (ct *containers) imageMissing(ctx context.Context, rel store.Release) (bool, error) {
	if rel.ImageID == "" {
		return true, nil
	}
	ok, err := ct.engine.ImageExists(ctx, rel.ImageID)
	if err != nil {
		return false, fmt.Errorf("check image of v%d: %w", rel.Version, err)
	}
	return !ok, nil
}

// replaceImage points release version, and every release of app that used
// the same (now missing) image, at the rebuilt image.
func (d *Deployer) replaceImage(app, oldID string, version int, newID string) error {
	releases, err := d.store.ListReleases(app)
	if err != nil {
		return err
	}
	for _, r := range releases {
		if r.Version != version && (oldID == "" || r.ImageID != oldID) {
			continue
		}
		if err := d.store.UpdateRelease(app, r.Version, func(r *store.Release) error {
			r.ImageID = newID
			return nil
		}); err != nil {
			return fmt.Errorf("record rebuilt image: %w", err)
		}
	}
	return nil
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
