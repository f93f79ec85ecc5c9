package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plat-paas/plat/store"
)

func TestSessionExpiry(t *testing.T) {
	tests := []struct {
		name    string
		advance []time.Duration // time between uses
		alive   bool
	}{
		{"fresh", nil, true},
		{"used within the idle timeout", []time.Duration{50 * time.Minute, 50 * time.Minute, 50 * time.Minute}, true},
		{"idle too long", []time.Duration{61 * time.Minute}, false},
		{"older than the absolute limit though always used", []time.Duration{50 * time.Minute, 50 * time.Minute, 50 * time.Minute, 50 * time.Minute, 50 * time.Minute}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			s := NewSessions(nil, time.Hour, 4*time.Hour)
			s.now = func() time.Time { return now }
			id, csrf := s.Create(1)
			for _, d := range tt.advance {
				now = now.Add(d)
				s.Lookup(id)
			}
			got, ok := s.Lookup(id)
			if ok != tt.alive || (ok && got != csrf) {
				t.Fatalf("Lookup: ok=%v csrf match=%v, want alive=%v", ok, got == csrf, tt.alive)
			}
		})
	}
}

func TestSessionIDsAreRandomAndLogoutEndsThem(t *testing.T) {
	s := NewSessions(nil, 0, 0)
	a, csrfA := s.Create(1)
	b, _ := s.Create(1)
	if a == b || len(a) < 40 || a == csrfA {
		t.Fatalf("weak or repeated IDs: %q %q", a, b)
	}
	s.Delete(a)
	if _, ok := s.Lookup(a); ok {
		t.Fatal("session alive after Delete")
	}
	if _, ok := s.Lookup(b); !ok {
		t.Fatal("Delete ended another session")
	}
}

func TestAuthorizeCSRF(t *testing.T) {
	s := NewSessions(nil, 0, 0)
	id, csrf := s.Create(1)
	tests := []struct {
		name   string
		method string
		cookie string
		token  string
		want   error
	}{
		{"GET with session", http.MethodGet, id, "", nil},
		{"GET without session", http.MethodGet, "", "", ErrNoSession},
		{"GET with unknown session", http.MethodGet, "forged", "", ErrNoSession},
		{"POST with right token", http.MethodPost, id, csrf, nil},
		{"POST without token", http.MethodPost, id, "", ErrCSRF},
		{"POST with wrong token", http.MethodPost, id, csrf + "x", ErrCSRF},
		{"DELETE without token", http.MethodDelete, id, "", ErrCSRF},
		{"PUT with right token", http.MethodPut, id, csrf, nil},
		{"POST with token but no session", http.MethodPost, "", csrf, ErrNoSession},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/api/apps", nil)
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: CookieName, Value: tt.cookie})
			}
			if tt.token != "" {
				r.Header.Set(CSRFHeader, tt.token)
			}
			if err := s.Authorize(r); !errors.Is(err, tt.want) {
				t.Fatalf("Authorize = %v, want %v", err, tt.want)
			}
		})
	}
}

func newTestDashboard() *Dashboard {
	return New(Options{VerifyToken: fakeVerify})
}

// fakeVerify knows "good-token" (ID 1) and "old-token" (ID 2, expired).
func fakeVerify(tok string) (uint64, error) {
	switch tok {
	case "good-token":
		return 1, nil
	case "old-token":
		return 0, fmt.Errorf("token \"old\" expired yesterday: create a new one: %w", ErrTokenExpired)
	}
	return 0, errors.New("unknown token")
}

func login(t *testing.T, h http.Handler, token string, tls bool) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if !tls {
		r.TLS = nil
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestLoginCookieFlags(t *testing.T) {
	for _, tls := range []bool{false, true} {
		d := newTestDashboard()
		h := d.Handler()
		r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader("token=good-token"))
		if tls {
			r = httptest.NewRequest(http.MethodPost, "https://plat.example/login", strings.NewReader("token=good-token"))
		}
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
			t.Fatalf("login: %d to %q", w.Code, w.Header().Get("Location"))
		}
		cs := w.Result().Cookies()
		if len(cs) != 1 {
			t.Fatalf("cookies %v", cs)
		}
		c := cs[0]
		wantName := CookieName
		if tls {
			wantName = SecureCookieName // __Host-: Secure, Path=/, no Domain
		}
		if c.Name != wantName || c.Domain != "" || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure != tls || c.MaxAge <= 0 {
			t.Fatalf("tls=%v cookie %+v: want HttpOnly, SameSite=Strict, Path=/, Secure only over TLS", tls, c)
		}
		if strings.Contains(w.Header().Get("Location"), "good-token") {
			t.Fatal("token in a URL")
		}
	}
}

func TestLoginRefusesBadToken(t *testing.T) {
	w := login(t, newTestDashboard().Handler(), "bad", false)
	if w.Code != http.StatusUnauthorized || len(w.Result().Cookies()) != 0 {
		t.Fatalf("bad token: %d, cookies %v", w.Code, w.Result().Cookies())
	}
}

func TestPagesNeedSessionAndLogoutNeedsCSRF(t *testing.T) {
	d := newTestDashboard()
	h := d.Handler()
	get := func(path string, c *http.Cookie) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if c != nil {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for p, want := range map[string]string{"/": "/login", "/apps/web": "/login?next=%2Fapps%2Fweb"} {
		if w := get(p, nil); w.Code != http.StatusSeeOther || w.Header().Get("Location") != want {
			t.Fatalf("GET %s without session: %d %q, want redirect to /login", p, w.Code, w.Header().Get("Location"))
		}
	}
	c := login(t, h, "good-token", false).Result().Cookies()[0]
	w := get("/apps/web", c)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `name="csrf-token"`) {
		t.Fatalf("GET /apps/web with session: %d", w.Code)
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Fatalf("CSP %q", csp)
	}
	_, csrf, _, _ := d.sessions.fromRequest(func() *http.Request { r := httptest.NewRequest("GET", "/", nil); r.AddCookie(c); return r }())

	logout := func(token string) int {
		r := httptest.NewRequest(http.MethodPost, "/logout", nil)
		r.AddCookie(c)
		if token != "" {
			r.Header.Set(CSRFHeader, token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if code := logout(""); code != http.StatusForbidden {
		t.Fatalf("logout without CSRF token: %d, want 403", code)
	}
	if code := logout(csrf); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	if w := get("/", c); w.Code != http.StatusSeeOther {
		t.Fatalf("page after logout: %d, want redirect", w.Code)
	}
}

func TestSameOrigin(t *testing.T) {
	tests := []struct {
		origin, host string
		want         bool
	}{
		{"", "plat.example:8700", true}, // not a browser
		{"http://plat.example:8700", "plat.example:8700", true},
		{"https://PLAT.example:8700", "plat.example:8700", true},
		{"http://evil.example", "plat.example:8700", false},
		{"http://plat.example:8701", "plat.example:8700", false},
		{"null", "plat.example:8700", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Host = tt.host
		if tt.origin != "" {
			r.Header.Set("Origin", tt.origin)
		}
		if got := sameOrigin(r); got != tt.want {
			t.Errorf("Origin %q to %q: %v, want %v", tt.origin, tt.host, got, tt.want)
		}
	}
}

func TestSessionsSurviveRestartWithStore(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "plat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	before := NewSessions(st, time.Hour, 0)
	before.now = clock
	id, csrf := before.Create(1)
	gone, _ := before.Create(1)
	before.Delete(gone)

	after := NewSessions(st, time.Hour, 0) // the daemon restarted
	after.now = clock
	if got, ok := after.Lookup(id); !ok || got != csrf {
		t.Fatalf("session lost across a restart: ok=%v", ok)
	}
	if _, ok := after.Lookup(gone); ok {
		t.Fatal("a logged-out session came back after a restart")
	}
	now = now.Add(2 * time.Hour)
	again := NewSessions(st, time.Hour, 0)
	again.now = clock
	if _, ok := again.Lookup(id); ok {
		t.Fatal("an expired session came back after a restart")
	}
}
