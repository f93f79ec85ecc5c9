// Package web is plat's browser dashboard: embedded pages, scripts and
// styles (no CDN, no build step), the login session, and the live log
// websocket. The pages' scripts use the same JSON API as the CLI; this
// package only adds what a browser needs on top (cookies, CSRF, sockets).
package web

import (
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/plat-paas/plat/logs"
)

//go:embed assets
var assets embed.FS

var pages = template.Must(template.ParseFS(assets, "assets/*.html"))

// maxLoginBody bounds the login form.
const maxLoginBody = 4 << 10

// Options wire the dashboard to the daemon.
type Options struct {
	// VerifyToken reports whether token is a valid API token.
	VerifyToken func(token string) bool
	Logs        *logs.Hub
	Sessions    *Sessions // in memory only when nil
	Logger      *slog.Logger
}

// Dashboard serves the dashboard's pages and sockets.
type Dashboard struct {
	verify   func(string) bool
	hub      *logs.Hub
	sessions *Sessions
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
	return &Dashboard{verify: opts.VerifyToken, hub: opts.Logs, sessions: opts.Sessions, log: opts.Logger}
}

// Authorize checks a browser request to the API (see Sessions.Authorize).
func (d *Dashboard) Authorize(r *http.Request) error { return d.sessions.Authorize(r) }

// Handler serves the pages: / (apps), /apps/{name}, /login, /logout and /static/.
func (d *Dashboard) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets/static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(filesOnly{static})))
	mux.HandleFunc("GET /login", d.loginPage)
	mux.HandleFunc("POST /login", d.login)
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
	_, csrf, ok := d.sessions.fromRequest(r)
	if !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	d.render(w, http.StatusOK, "app.html", map[string]string{"CSRF": csrf})
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := d.sessions.fromRequest(r); ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	d.render(w, http.StatusOK, "login.html", nil)
}

// login takes the API token from the form body (never from the URL) and
// turns it into a session cookie.
func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" || !d.verify(token) {
		d.log.Warn("dashboard login refused", "remote", r.RemoteAddr)
		d.render(w, http.StatusUnauthorized, "login.html", map[string]string{"Error": "That token is not valid. Create one on the server with `plat daemon token`."})
		return
	}
	id, _ := d.sessions.Create()
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
	if c, err := r.Cookie(CookieName); err == nil {
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
