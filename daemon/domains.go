package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/store"
)

// domainsInfo is the API's view of an app's host names.
func (s *server) domainsInfo(app store.App) api.Domains {
	d := api.Domains{App: app.Name, Default: s.switcher.defaultHost(app.Name), Domains: app.Domains}
	if d.Domains == nil {
		d.Domains = []string{}
	}
	return d
}

func (s *server) listDomains(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.domainsInfo(app))
}

func (s *server) addDomain(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	var body api.AddDomain
	if !readJSON(w, r, &body) {
		return
	}
	host, err := deploy.ValidateDomain(body.Domain, s.cfg.Domain, app.Name)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	app, err = s.store.AddDomain(app.Name, host)
	if taken := (*store.DomainTakenError)(nil); errors.As(err, &taken) {
		owner, existing := taken.App, taken.Existing
		if existing != host {
			writeError(w, http.StatusConflict, fmt.Sprintf("%s overlaps %s of app %s: a host under another app's host could read or set its cookies; choose a name outside %s, or remove it there first with `plat domains:remove %s %s`", host, existing, owner, existing, owner, existing))
			return
		}
		writeError(w, http.StatusConflict, fmt.Sprintf("%s already belongs to app %s; remove it there first with `plat domains:remove %s %s`", host, owner, owner, host))
		return
	}
	if err != nil {
		s.internalError(w, err)
		return
	}
	if err := s.switcher.Rehost(app.Name); err != nil {
		_, _ = s.store.RemoveDomain(app.Name, host) // keep store and router in agreement
		writeError(w, http.StatusConflict, fmt.Sprintf("cannot route %s to %s: %v", host, app.Name, err))
		return
	}
	s.log.Info("domain added", "app", app.Name, "domain", host)
	writeJSON(w, http.StatusCreated, s.domainsInfo(app))
}

func (s *server) removeDomain(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	host := strings.ToLower(strings.TrimSuffix(r.PathValue("domain"), "."))
	updated, err := s.store.RemoveDomain(app.Name, host)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s is not a domain of app %s; see `plat domains %s`", host, app.Name, app.Name))
		return
	}
	if err != nil {
		s.internalError(w, err)
		return
	}
	if err := s.switcher.Rehost(app.Name); err != nil {
		s.internalError(w, err)
		return
	}
	s.log.Info("domain removed", "app", app.Name, "domain", host)
	writeJSON(w, http.StatusOK, s.domainsInfo(updated))
}
