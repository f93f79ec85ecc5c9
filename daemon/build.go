package daemon

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/builder"
	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/store"
)

// maxBuildSettingsBytes bounds an app's build args and secrets together.
const maxBuildSettingsBytes = deploy.MaxEnvBytes

var (
	// buildArgRE is what a Dockerfile ARG name may be.
	buildArgRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// secretIDRE is what plat accepts as a secret id (RUN --mount=type=secret,id=ID).
	secretIDRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	// stageRE is a Dockerfile stage name (FROM ... AS name).
	stageRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
)

var errBuildSettings = errors.New("invalid build settings")

func newBuildInfo(b store.BuildSettings) api.BuildSettings {
	args := b.Args
	if args == nil {
		args = map[string]string{}
	}
	secrets := slices.Sorted(maps.Keys(b.Secrets))
	if secrets == nil {
		secrets = []string{}
	}
	return api.BuildSettings{
		Args:    args,
		Secrets: secrets,
		Target:  b.Target,
		Note:    "build settings take effect with the next push; they do not change the running release",
	}
}

// applyBuildChange returns b changed by c, or why c is not valid.
func applyBuildChange(b store.BuildSettings, c api.BuildChange) (store.BuildSettings, error) {
	if c.Empty() {
		return b, fmt.Errorf("%w: nothing to change: give --build-arg, --build-secret or --build-target", errBuildSettings)
	}
	out := store.BuildSettings{Args: maps.Clone(b.Args), Secrets: maps.Clone(b.Secrets), Target: b.Target}
	for _, k := range slices.Concat(slices.Collect(maps.Keys(c.SetArgs)), c.UnsetArgs) {
		if !buildArgRE.MatchString(k) {
			return b, fmt.Errorf("%w: build arg %q: names are letters, digits and _, not starting with a digit (as in ARG NODE_ENV)", errBuildSettings, k)
		}
		if err := builder.CheckBuildArg(k); err != nil {
			return b, fmt.Errorf("%w: %v", errBuildSettings, err)
		}
	}
	for _, k := range slices.Concat(slices.Collect(maps.Keys(c.SetSecrets)), c.UnsetSecrets) {
		if !secretIDRE.MatchString(k) {
			return b, fmt.Errorf("%w: build secret %q: ids are letters, digits, _, . and - (as in RUN --mount=type=secret,id=NPM_TOKEN)", errBuildSettings, k)
		}
	}
	if out.Args == nil {
		out.Args = map[string]string{}
	}
	if out.Secrets == nil {
		out.Secrets = map[string]string{}
	}
	maps.Copy(out.Args, c.SetArgs)
	maps.Copy(out.Secrets, c.SetSecrets)
	for _, k := range c.UnsetArgs {
		delete(out.Args, k)
	}
	for _, k := range c.UnsetSecrets {
		delete(out.Secrets, k)
	}
	if c.Target != nil {
		if *c.Target != "" && !stageRE.MatchString(*c.Target) {
			return b, fmt.Errorf("%w: build target %q is not a stage name (FROM image AS name)", errBuildSettings, *c.Target)
		}
		out.Target = *c.Target
	}
	total := 0
	for _, m := range []map[string]string{out.Args, out.Secrets} {
		for k, v := range m {
			total += len(k) + len(v)
		}
	}
	if total > maxBuildSettingsBytes {
		return b, fmt.Errorf("%w: build args and secrets would hold %d bytes; the limit is %d: unset some first", errBuildSettings, total, maxBuildSettingsBytes)
	}
	if len(out.Args) == 0 {
		out.Args = nil
	}
	if len(out.Secrets) == 0 {
		out.Secrets = nil
	}
	return out, nil
}

func (s *server) getBuild(w http.ResponseWriter, r *http.Request) {
	if app, ok := s.app(w, r); ok {
		writeJSON(w, http.StatusOK, newBuildInfo(app.Build))
	}
}

// setBuild changes an app's build settings. It makes no release: they
// change nothing that runs, and the next push builds with them.
func (s *server) setBuild(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	var change api.BuildChange
	if !readJSON(w, r, &change) {
		return
	}
	var after store.BuildSettings
	err := s.store.UpdateApp(app.Name, func(a *store.App) error {
		b, err := applyBuildChange(a.Build, change)
		if err != nil {
			return err
		}
		a.Build, after = b, b
		return nil
	})
	switch {
	case errors.Is(err, errBuildSettings):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case err != nil:
		s.internalError(w, err)
		return
	}
	s.log.Info("build settings changed", "app", app.Name, "args", len(after.Args), "secrets", len(after.Secrets), "target", after.Target)
	writeJSON(w, http.StatusOK, newBuildInfo(after))
}
