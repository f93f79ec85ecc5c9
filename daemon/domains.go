package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"

	"github.com/plat-paas/plat/store"
)

// maxHostLen is the longest DNS name (RFC 1035), without the trailing dot.
const maxHostLen = 253

var hostLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// validateDomain checks a custom domain and returns it normalized (lower
// case, no trailing dot). Names directly under the base domain are refused:
// they are the default hosts of apps and of plat itself.
func validateDomain(host, base string) (string, error) {
	h := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(host), "."))
	switch {
	case h == "":
		return "", errors.New("empty domain: give a host name like www.example.com")
	case len(h) > maxHostLen:
		return "", fmt.Errorf("domain %q is longer than %d characters", h, maxHostLen)
	case net.ParseIP(strings.Trim(h, "[]")) != nil:
		return "", fmt.Errorf("%q is an IP address: give a host name like www.example.com", h)
	case strings.Contains(h, "*"):
		return "", fmt.Errorf("%q: wildcard domains are not supported; add each host name", h)
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if !hostLabelRE.MatchString(l) {
			return "", fmt.Errorf("%q is not a valid host name: each dot-separated part must be 1-63 letters, digits or dashes, not starting or ending with a dash", h)
		}
	}
	if len(labels) < 2 {
		return "", fmt.Errorf("%q is not a full host name: give one like www.example.com", h)
	}
	if h == base || (strings.HasSuffix(h, "."+base) && !strings.Contains(strings.TrimSuffix(h, "."+base), ".")) {
		return "", fmt.Errorf("%q is reserved: names directly under %s are the default hosts of apps and of plat", h, base)
	}
	return h, nil
}

// domainsInfo is the API's view of an app's host names.
type domainsInfo struct {
	App     string   `json:"app"`
	Default string   `json:"default"` // <app>.<domain>, always served
	Domains []string `json:"domains"` // custom domains
}

func (s *server) domainsInfo(app store.App) domainsInfo {
	d := domainsInfo{App: app.Name, Default: s.switcher.defaultHost(app.Name), Domains: app.Domains}
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
	var body struct {
		Domain string `json:"domain"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	host, err := validateDomain(body.Domain, s.cfg.Domain)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	app, err = s.store.AddDomain(app.Name, host)
	if taken := (*store.DomainTakenError)(nil); errors.As(err, &taken) {
		owner := taken.App
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
