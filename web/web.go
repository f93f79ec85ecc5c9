// Package web is plat's browser dashboard: embedded pages, scripts and
// styles (no CDN, no build step), the login session, and the live log
// websocket. The pages' scripts use the same JSON API as the CLI; this
// package only adds what a browser needs on top (cookies, CSRF, sockets).
package web

import (
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/plat-paas/plat/internal/authlimit"
	"github.com/plat-paas/plat/logs"
)

//go:embed assets
var assets embed.FS

var pages = template.Must(template.ParseFS(assets, "assets/*.html"))

// maxLoginBody bounds the login form.
const maxLoginBody = 4 << 10

// Options wire the dashboard to the daemon.
type Options struct {
	// VerifyToken checks an API token at login and returns its ID; its
	// error, shown on the login page, says what to do (e.g. expired).
	// Errors wrapping ErrTokenExpired do not count as failed attempts.
	VerifyToken func(token string) (tokenID uint64, err error)
	// TokenLive reports whether a session's API token is still valid
	// (not revoked, not expired); nil: sessions are not checked.
	TokenLive func(tokenID uint64) bool
	// Limiter throttles failed logins per client address (nil: none).
	Limiter  *authlimit.Limiter
	Logs     *logs.Hub
	Sessions *Sessions // in memory only when nil
	Logger   *slog.Logger
}

// ErrTokenExpired: a login token that was valid once and has expired.
var ErrTokenExpired = errors.New("token expired")

var errNoToken = errors.New("no token")

// Dashboard serves the dashboard's pages and sockets.
type Dashboard struct {
	verify   func(string) (uint64, error)
	limiter  *authlimit.Limiter
	hub      *logs.Hub
	sessions *Sessions
	links    *loginLinks
	log      *slog.Logger
}

// New returns a dashboard.
func New(opts Options) *Dashboard {
	if opts.Sessions == nil {
		opts.Sessions = NewSessions(nil, 0, 0)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.Sessions.tokenLive = opts.TokenLive
	return &Dashboard{verify: opts.VerifyToken, limiter: opts.Limiter, hub: opts.Logs, sessions: opts.Sessions, links: newLoginLinks(), log: opts.Logger}
}

// Authorize checks a browser request to the API (see Sessions.Authorize).
func (d *Dashboard) Authorize(r *http.Request) error { return d.sessions.Authorize(r) }

// AuthorizeToken is Authorize that also returns the ID of the API token
// the session logged in with.
func (d *Dashboard) AuthorizeToken(r *http.Request) (uint64, error) {
	return d.sessions.AuthorizeToken(r)
}

// EndToken ends the dashboard sessions opened with the API token tokenID
// (it was revoked) and returns how many were live.
func (d *Dashboard) EndToken(tokenID uint64) int { return d.sessions.EndToken(tokenID) }

// Handler serves the pages: / (apps), /apps/{name}, /login, /login/once
// (a one-time login link), /logout and /static/.
func (d *Dashboard) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets/static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(filesOnly{static})))
	mux.HandleFunc("GET /login", d.loginPage)
	mux.HandleFunc("POST /login", d.login)
	mux.HandleFunc("GET "+LoginOncePath, d.loginOnce)
	mux.HandleFunc("POST /logout", d.logout)
	mux.HandleFunc("GET /{$}", d.shell)
	mux.HandleFunc("GET /apps/{name}", d.shell)
	return securityHeaders(mux)
}

// securityHeaders keeps the pages from being framed, sniffed or made to
// load anything from elsewhere.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// shell serves the page the scripts fill in, or sends the browser to log in.
func (d *Dashboard) shell(w http.ResponseWriter, r *http.Request) {
	_, csrf, _, ok := d.sessions.fromRequest(r)
	if !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	d.render(w, http.StatusOK, "app.html", map[string]string{"CSRF": csrf})
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, _, _, ok := d.sessions.fromRequest(r); ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	d.render(w, http.StatusOK, "login.html", nil)
}

// login takes the API token from the form body (never from the URL) and
// turns it into a session cookie.
func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	addr := authlimit.ClientAddr(r)
	if wait, ok := d.limiter.Allow(addr); !ok {
		w.Header().Set("Retry-After", authlimit.RetryAfter(wait))
		d.render(w, http.StatusTooManyRequests, "login.html", map[string]string{"Error": "Too many failed logins from your address. Wait " + authlimit.RetryAfter(wait) + " seconds and try again."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	token := strings.TrimSpace(r.PostFormValue("token"))
	tokenID, err := uint64(0), errNoToken
	if token != "" {
		tokenID, err = d.verify(token)
	}
	if err != nil {
		msg := "That token is not valid. Create one on the server with `plat daemon token`."
		if errors.Is(err, ErrTokenExpired) {
			msg = err.Error() // says when and how to get a new one
		} else {
			d.limiter.Fail(addr, r.URL.Path) // logs once per burst, not per attempt
		}
		d.render(w, http.StatusUnauthorized, "login.html", map[string]string{"Error": msg})
		return
	}
	id, _ := d.sessions.Create(tokenID)
	http.SetCookie(w, d.sessions.cookie(r, id, int(d.sessions.max.Seconds())))
	d.log.Info("dashboard login", "remote", r.RemoteAddr)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout ends the session; like every state change it needs the CSRF token.
func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	if err := d.sessions.Authorize(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if c, err := r.Cookie(cookieName(r)); err == nil {
		d.sessions.Delete(c.Value)
	}
	http.SetCookie(w, d.sessions.cookie(r, "", -1))
	w.WriteHeader(http.StatusNoContent)
}

func (d *Dashboard) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		d.log.Error("render page", "page", name, "err", err)
	}
}

// sameOrigin reports whether a request's Origin (when it has one) is the
// host it was sent to. Browsers always send Origin on websocket upgrades;
// non-browser clients (bearer tokens) carry no ambient credentials.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// filesOnly hides directories, so the file server answers 404 for them
// instead of listing what they hold.
type filesOnly struct{ fs.FS }

func (f filesOnly) Open(name string) (fs.File, error) {
	file, err := f.FS.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := file.Stat(); err != nil || st.IsDir() {
		file.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return file, nil
}
