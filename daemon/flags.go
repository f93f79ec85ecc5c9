package daemon

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/router"
	"github.com/plat-paas/plat/store"
)

// Feature flags: stored in the app's record, applied by the router
// (switcher.route puts them in the app's route), so a change needs only a
// route update: no release, no restart.

func (s *server) flagRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/apps/{app}/flags", s.getFlags)
	mux.HandleFunc("POST /api/apps/{app}/flags", s.setFlags)
	mux.HandleFunc("DELETE /api/apps/{app}/flags/{flag}", s.unsetFlag)
}

// routerFlags is an app's stored flags in the router's form, in name order.
func routerFlags(flags map[string]int) []router.Flag {
	if len(flags) == 0 {
		return nil
	}
	out := make([]router.Flag, 0, len(flags))
	for _, name := range slices.Sorted(maps.Keys(flags)) {
		out = append(out, router.Flag{Name: name, Percent: flags[name]})
	}
	return out
}

// newFlagsInfo is the API's view of an app's flags.
func newFlagsInfo(app store.App) api.Flags {
	out := api.Flags{Flags: []api.Flag{}}
	for _, f := range routerFlags(app.Flags) {
		out.Flags = append(out.Flags, api.Flag{Name: f.Name, Percent: f.Percent})
	}
	return out
}

func (s *server) getFlags(w http.ResponseWriter, r *http.Request) {
	if app, ok := s.app(w, r); ok {
		writeJSON(w, http.StatusOK, newFlagsInfo(app))
	}
}

// setFlags sets one or more flags at once, or none if any is invalid.
func (s *server) setFlags(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	var body api.FlagsChange
	if !readJSON(w, r, &body) {
		return
	}
	if len(body.Flags) == 0 {
		writeError(w, http.StatusBadRequest, `name at least one flag: {"flags": {"new-checkout": 25}}`)
		return
	}
	for _, name := range slices.Sorted(maps.Keys(body.Flags)) {
		if err := router.ValidateFlag(router.Flag{Name: name, Percent: body.Flags[name]}); err != nil {
			writeError(w, http.StatusBadRequest, err.Error()+"; nothing was changed")
			return
		}
	}
	var changes []string
	err := s.store.UpdateApp(app.Name, func(a *store.App) error {
		changes = changes[:0]
		next := maps.Clone(a.Flags)
		if next == nil {
			next = map[string]int{}
		}
		for _, name := range slices.Sorted(maps.Keys(body.Flags)) {
			p := body.Flags[name]
			if old, had := next[name]; had && old == p {
				continue
			}
			next[name] = p
			changes = append(changes, fmt.Sprintf("%s=%s", name, percentText(p)))
		}
		if len(next) > router.MaxFlags {
			return fmt.Errorf("%w: an app has at most %d flags; unset some first", errTooManyFlags, router.MaxFlags)
		}
		a.Flags = next
		app = *a
		return nil
	})
	if errors.Is(err, errTooManyFlags) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		s.internalError(w, err)
		return
	}
	if !s.applyFlags(w, app.Name, changes, "flags set: ") {
		return
	}
	writeJSON(w, http.StatusOK, newFlagsInfo(app))
}

var errTooManyFlags = errors.New("too many flags")

func (s *server) unsetFlag(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	name := r.PathValue("flag")
	if _, had := app.Flags[name]; !had {
		writeError(w, http.StatusNotFound, fmt.Sprintf("app %s has no flag %q; see `plat flags %s`", app.Name, name, app.Name))
		return
	}
	err := s.store.UpdateApp(app.Name, func(a *store.App) error {
		delete(a.Flags, name)
		app = *a
		return nil
	})
	if err != nil {
		s.internalError(w, err)
		return
	}
	if !s.applyFlags(w, app.Name, []string{name}, "flag removed: ") {
		return
	}
	writeJSON(w, http.StatusOK, newFlagsInfo(app))
}

// applyFlags puts app's stored flags in its route and records the change
// in the timeline; on failure it answers the request and returns false.
func (s *server) applyFlags(w http.ResponseWriter, app string, changes []string, prefix string) bool {
	if len(changes) == 0 {
		return true
	}
	if err := s.switcher.Rehost(app); err != nil {
		s.internalError(w, err)
		return false
	}
	msg := prefix + strings.Join(changes, ", ")
	if err := s.store.AddEvent(store.Event{App: app, Kind: "flags", Message: msg}); err != nil {
		s.log.Warn("record flags event", "app", app, "error", err)
	}
	s.log.Info("flags changed", "app", app, "change", msg)
	return true
}

// percentText shows a flag's percent the way flags:set takes it.
func percentText(p int) string {
	switch p {
	case 0:
		return "off"
	case 100:
		return "on"
	}
	return fmt.Sprintf("%d%%", p)
}
