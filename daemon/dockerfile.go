package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/plat-paas/plat/builder"
	"github.com/plat-paas/plat/store"
)

// releaseDockerfile serves the Dockerfile plat generated for a release
// whose push had none (GET /api/apps/{app}/releases/{version}/dockerfile),
// as text: the user can commit it and take over the build.
func (s *server) releaseDockerfile(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	v, err := strconv.Atoi(strings.TrimPrefix(r.PathValue("version"), "v"))
	if err != nil || v <= 0 {
		writeError(w, http.StatusBadRequest, "release version must be a number like 3 or v3")
		return
	}
	rel, err := s.store.GetRelease(app.Name, v)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s has no release v%d; see `plat releases %s`", app.Name, v, app.Name))
		return
	}
	if err != nil {
		s.internalError(w, err)
		return
	}
	if rel.Dockerfile == "" {
		msg := fmt.Sprintf("%s v%d was built from the repository's own Dockerfile, so plat generated none; that Dockerfile is in the commit %s", app.Name, v, rel.GitSHA)
		if rel.ImageID == "" {
			msg = fmt.Sprintf("%s v%d has no generated Dockerfile: its build failed before plat made one (see `plat releases:log %s v%d`)", app.Name, v, app.Name, v)
		}
		writeError(w, http.StatusNotFound, msg)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(rel.Dockerfile))
}

// baseImageUsage is the help of `plat daemon --base-image`.
func baseImageUsage() string {
	defaults := builder.DefaultBaseImages()
	var parts []string
	for _, stack := range builder.Stacks() {
		parts = append(parts, stack+"="+defaults[stack])
	}
	return "base image of the Dockerfiles plat generates for pushes without one, as STACK=IMAGE; repeatable (defaults: " + strings.Join(parts, ", ") + ")"
}
