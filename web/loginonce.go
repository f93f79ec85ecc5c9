package web

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/plat-paas/plat/internal/authlimit"
)

// Login link defaults (`plat dashboard`).
const (
	// LoginLinkTTL is how long a one-time login link works.
	LoginLinkTTL = time.Minute
	// maxLoginLinks bounds the unused links kept in memory.
	maxLoginLinks  = 1000
	loginLinkBytes = 32
	// LoginOncePath is the dashboard page that consumes a link's nonce.
	LoginOncePath = "/login/once"
)

// ErrTooManyLoginLinks: maxLoginLinks unused, unexpired links exist.
var ErrTooManyLoginLinks = errors.New("too many unused login links: wait a minute and try again")

// loginLink is an unused link: the API token it logs in as, and its end.
type loginLink struct {
	token   uint64
	expires time.Time
}

// loginLinks are single-use nonces that turn into a dashboard session, so
// the CLI can open a logged-in browser without putting its token in a URL.
// They live in memory only: a restart ends them, as a minute would.
type loginLinks struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[[32]byte]loginLink // keyed by the nonce's SHA-256
}

func newLoginLinks() *loginLinks {
	return &loginLinks{now: time.Now, m: map[[32]byte]loginLink{}}
}

// create returns a new nonce that logs in as tokenID until it expires.
func (l *loginLinks) create(tokenID uint64) (nonce string, expires time.Time, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for k, ln := range l.m {
		if !now.Before(ln.expires) {
			delete(l.m, k)
		}
	}
	if len(l.m) >= maxLoginLinks {
		return "", time.Time{}, ErrTooManyLoginLinks
	}
	nonce = randomString(loginLinkBytes)
	expires = now.Add(LoginLinkTTL)
	l.m[sha256.Sum256([]byte(nonce))] = loginLink{token: tokenID, expires: expires}
	return nonce, expires, nil
}

// Errors consume returns.
var (
	errLinkUnknown = errors.New("unknown or already used login link")
	errLinkExpired = errors.New("expired login link")
)

// consume uses up nonce: whatever the outcome, it never works again.
func (l *loginLinks) consume(nonce string) (tokenID uint64, err error) {
	key := sha256.Sum256([]byte(nonce))
	l.mu.Lock()
	defer l.mu.Unlock()
	ln, ok := l.m[key]
	if !ok {
		return 0, errLinkUnknown
	}
	delete(l.m, key)
	if !l.now().Before(ln.expires) {
		return 0, errLinkExpired
	}
	return ln.token, nil
}

// CreateLoginLink returns a one-time nonce for LoginOncePath?n=NONCE that
// logs a browser in as the API token tokenID, within LoginLinkTTL.
func (d *Dashboard) CreateLoginLink(tokenID uint64) (nonce string, expires time.Time, err error) {
	return d.links.create(tokenID)
}

// loginOnce consumes a login link's nonce and, when it is good and its
// token still live, starts a session and sends the browser to the apps.
func (d *Dashboard) loginOnce(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	addr := authlimit.ClientAddr(r)
	if wait, ok := d.limiter.Allow(addr); !ok {
		w.Header().Set("Retry-After", authlimit.RetryAfter(wait))
		d.render(w, http.StatusTooManyRequests, "login.html", map[string]string{"Error": "Too many failed logins from your address. Wait " + authlimit.RetryAfter(wait) + " seconds and try again."})
		return
	}
	tokenID, err := d.links.consume(r.URL.Query().Get("n"))
	if err == nil && d.sessions.tokenLive != nil && !d.sessions.tokenLive(tokenID) {
		err = errLinkUnknown // the token was revoked or expired since
	}
	if err != nil {
		msg := "This login link is not valid: links work once, for one minute. Run `plat dashboard` again, or log in with your token."
		if errors.Is(err, errLinkExpired) {
			msg = "This login link has expired: links work for one minute. Run `plat dashboard` again, or log in with your token."
		} else {
			d.limiter.Fail(addr, r.URL.Path)
		}
		d.render(w, http.StatusGone, "login.html", map[string]string{"Error": msg})
		return
	}
	id, _ := d.sessions.Create(tokenID)
	http.SetCookie(w, d.sessions.cookie(r, id, int(d.sessions.max.Seconds())))
	d.log.Info("dashboard login", "remote", r.RemoteAddr, "via", "login link")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
