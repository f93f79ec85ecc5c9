package daemon

import (
	"fmt"
	"net/http"
	"time"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/router"
	"github.com/plat-paas/plat/store"
)

// HSTS settings.
const (
	// DefaultHSTSMaxAge is the max-age an app gets when it turns HSTS on
	// without one, and the one the API host sends over HTTPS.
	DefaultHSTSMaxAge = 365 * 24 * time.Hour
	// maxHSTSMaxAge bounds what an app may ask for: two years, what the
	// browsers' preload lists accept at most.
	maxHSTSMaxAge = 2 * 365 * 24 * time.Hour
)

// newHSTSInfo is the API's view of an app's HSTS setting.
func newHSTSInfo(app store.App) api.HSTS {
	return api.HSTS{
		Enabled: app.HSTSMaxAge > 0,
		MaxAge:  int64(app.HSTSMaxAge / time.Second),
		Header:  router.HSTSValue(app.HSTSMaxAge),
		Note:    "sent over HTTPS for hosts with a public (ACME) certificate only, never for local names",
	}
}

// setHSTS turns an app's Strict-Transport-Security header on or off.
func (s *server) setHSTS(w http.ResponseWriter, r *http.Request) {
	app, ok := s.app(w, r)
	if !ok {
		return
	}
	var body api.HSTSChange // max_age in seconds; default DefaultHSTSMaxAge
	if !readJSON(w, r, &body) {
		return
	}
	if body.Enabled == nil {
		writeError(w, http.StatusBadRequest, `say whether HSTS is on: {"enabled": true} or {"enabled": false}`)
		return
	}
	maxAge := time.Duration(0)
	if *body.Enabled {
		maxAge = DefaultHSTSMaxAge
		if body.MaxAge != nil {
			maxAge = time.Duration(*body.MaxAge) * time.Second
			if *body.MaxAge <= 0 || maxAge > maxHSTSMaxAge {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("HSTS max_age %d is out of range: give 1 to %d seconds (2 years)", *body.MaxAge, int64(maxHSTSMaxAge/time.Second)))
				return
			}
		}
	}
	if err := s.store.UpdateApp(app.Name, func(a *store.App) error { a.HSTSMaxAge = maxAge; return nil }); err != nil {
		s.internalError(w, err)
		return
	}
	if err := s.switcher.Rehost(app.Name); err != nil {
		s.internalError(w, err)
		return
	}
	app.HSTSMaxAge = maxAge
	s.log.Info("HSTS set", "app", app.Name, "max_age", maxAge)
	writeJSON(w, http.StatusOK, newHSTSInfo(app))
}

// withHSTS sends Strict-Transport-Security on every response of h: for
// the API and dashboard at plat.<domain>, which the HTTPS listener serves
// with a certificate of its own.
func withHSTS(h http.Handler) http.Handler {
	value := router.HSTSValue(DefaultHSTSMaxAge)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", value)
		}
		h.ServeHTTP(w, r)
	})
}
