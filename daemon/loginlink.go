package daemon

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/web"
)

// createLoginLink makes a one-time dashboard login link for the request's
// API token (`plat dashboard`). Dashboard sessions cannot make one: a
// link is how a token holder gets a session, not how a session spreads.
func (s *server) createLoginLink(w http.ResponseWriter, r *http.Request) {
	a, ok := authFromContext(r.Context())
	if !ok {
		unauthorized(w, r)
		return
	}
	if r.Header.Get("Authorization") == "" {
		writeError(w, http.StatusForbidden, "login links are made with an API token (`plat dashboard`), not from a dashboard session")
		return
	}
	nonce, expires, err := s.web.CreateLoginLink(a.token.ID)
	if errors.Is(err, web.ErrTooManyLoginLinks) {
		writeError(w, http.StatusTooManyRequests, err.Error())
		return
	}
	if err != nil {
		s.internalError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, api.LoginLink{
		Path:      web.LoginOncePath + "?n=" + url.QueryEscape(nonce),
		ExpiresAt: expires.UTC(),
	})
}
