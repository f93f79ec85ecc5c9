// Package web is plat's browser dashboard: embedded pages, scripts and
// styles (no CDN, no build step), the login session, and the live log
// websocket. The pages' scripts use the same JSON API as the CLI; this
// package only adds what a browser needs on top (cookies, CSRF, sockets).
package web

import (
	"embed"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/plat-paas/plat/internal/authlimit"
	"github.com/plat-paas/plat/logs"
)

//go:embed assets
var assets embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{"asset": assetURL}).ParseFS(assets, "assets/*.html"))

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
	mux.HandleFunc("GET /static/{file}", d.serveStatic)
	mux.HandleFunc("GET /login", d.loginPage)
	mux.HandleFunc("POST /login", d.login)
	mux.HandleFunc("GET "+LoginOncePath, d.loginOnce)
	mux.HandleFunc("POST /logout", d.logout)
	mux.HandleFunc("GET /{$}", d.shell)
	mux.HandleFunc("GET /apps/{name}", d.shell)
	mux.HandleFunc("GET /tokens", d.shell)
	mux.HandleFunc("/", d.notFound)
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
		to := "/login"
		if r.URL.Path != "/" { // come back here after logging in
			to += "?next=" + url.QueryEscape(r.URL.RequestURI())
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	d.render(w, http.StatusOK, "app.html", map[string]string{"CSRF": csrf})
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if _, _, _, ok := d.sessions.fromRequest(r); ok {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	d.render(w, http.StatusOK, "login.html", loginData{Next: next})
}

// login takes the API token from the form body (never from the URL) and
// turns it into a session cookie.
func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	addr := authlimit.ClientAddr(r)
	if wait, ok := d.limiter.Allow(addr); !ok {
		w.Header().Set("Retry-After", authlimit.RetryAfter(wait))
		d.render(w, http.StatusTooManyRequests, "login.html", loginData{Error: "Too many failed logins from your address. Wait " + authlimit.RetryAfter(wait) + " seconds and try again.", Next: safeNext(r.URL.Query().Get("next"))})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	token := strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(r.PostFormValue("next"))
	tokenID, err := uint64(0), errNoToken
	if token != "" {
		tokenID, err = d.verify(token)
	}
	if err != nil {
		data := loginData{Error: "That token is not valid.", Command: "plat daemon token", Next: next}
		if errors.Is(err, ErrTokenExpired) {
			data.Error, data.Command = err.Error(), "" // says when and how to get a new one
		} else {
			d.limiter.Fail(addr, r.URL.Path) // logs once per burst, not per attempt
		}
		d.render(w, http.StatusUnauthorized, "login.html", data)
		return
	}
	id, _ := d.sessions.Create(tokenID)
	http.SetCookie(w, d.sessions.cookie(r, id, int(d.sessions.max.Seconds())))
	d.log.Info("dashboard login", "remote", r.RemoteAddr)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// loginData fills the login page.
type loginData struct {
	Error   string
	Command string // the command that makes a token, shown as code
	Next    string // where to go after logging in
}

// safeNext is next when it is a path on this site, else "/": a login link
// must not send the browser elsewhere (an open redirect).
func safeNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.HasPrefix(u.Path, "/login") {
		return "/"
	}
	return u.RequestURI()
}

// notFound is the dashboard's 404 page.
func (d *Dashboard) notFound(w http.ResponseWriter, r *http.Request) {
	d.render(w, http.StatusNotFound, "notfound.html", map[string]string{"Path": r.URL.Path})
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
