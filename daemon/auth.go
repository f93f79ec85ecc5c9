package daemon

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/internal/authlimit"
	"github.com/plat-paas/plat/store"
	"github.com/plat-paas/plat/web"
)

// authenticate admits requests that carry a valid token: as a bearer token
// (API) or as the basic-auth password (git); or a dashboard session cookie,
// with the session's CSRF token on state changes. A wrong token says
// nothing about why, to the client or the log; an expired one says it
// expired and how to get a new one (its holder knew it once).
//
// Refused tokens are counted per client address (authlimit): past the
// limit, every request from that address that carries a token gets 429
// without being checked, a good token too: otherwise the answer would
// tell a guesser which guess was right. Session cookies are not counted:
// a stale one after a revocation is not a guess, and a session ID is as
// unguessable as a token.
//
// Admitted requests run under a context that ends when their token is
// revoked or expires, so streams (websockets, `plat logs -f`) close then.
func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := ""
		if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
			secret = strings.TrimPrefix(h, "Bearer ")
		} else if _, pw, ok := r.BasicAuth(); ok {
			secret = pw
		}
		if secret == "" {
			id, err := s.web.AuthorizeToken(r)
			switch {
			case err == nil:
				tok, ok := s.tokens.live(id)
				if !ok {
					unauthorized(w, r)
					return
				}
				s.serveAs(tok, next, w, r)
			case errors.Is(err, web.ErrCSRF):
				writeError(w, http.StatusForbidden, "this change needs the dashboard's CSRF token (X-CSRF-Token header); reload the page")
			default:
				unauthorized(w, r)
			}
			return
		}
		addr := authlimit.ClientAddr(r)
		if wait, ok := s.limiter.Allow(addr); !ok {
			tooManyFailures(w, r, wait)
			return
		}
		tok, err := s.tokens.verify(secret)
		var expired *tokenExpiredError
		switch {
		case errors.As(err, &expired):
			authError(w, r, api.Error{Error: expired.Error(), Expired: true})
		case err != nil:
			s.limiter.Fail(addr, r.URL.Path) // logs once per burst, not per attempt
			unauthorized(w, r)
		default:
			s.serveAs(tok, next, w, r)
		}
	})
}

// serveAs serves r as the holder of tok, under a context the token's
// revocation or expiry cancels.
func (s *server) serveAs(tok store.Token, next http.Handler, w http.ResponseWriter, r *http.Request) {
	ctx, done, ok := s.tokens.track(r.Context(), tok)
	if !ok { // revoked between the check and now
		unauthorized(w, r)
		return
	}
	defer done()
	next.ServeHTTP(w, r.WithContext(ctx))
}

func unauthorized(w http.ResponseWriter, r *http.Request) {
	authError(w, r, api.Error{Error: "authentication required: log in with `plat login URL --token TOKEN`"})
}

// authError answers 401 with body.
func authError(w http.ResponseWriter, r *http.Request, body api.Error) {
	if strings.HasPrefix(r.URL.Path, "/git/") {
		w.Header().Set("WWW-Authenticate", `Basic realm="plat"`)
	}
	writeJSON(w, http.StatusUnauthorized, body)
}

func tooManyFailures(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	secs := authlimit.RetryAfter(wait)
	w.Header().Set("Retry-After", secs)
	writeError(w, http.StatusTooManyRequests, "too many failed authentications from your address: wait "+secs+"s and try again with a valid token")
}
