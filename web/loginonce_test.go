package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// followLink GETs a login link's path the way a browser opening it would.
func followLink(h http.Handler, path string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w
}

func TestLoginLinkMakesASession(t *testing.T) {
	d := newTestDashboard()
	h := d.Handler()
	nonce, expires, err := d.CreateLoginLink(7)
	if err != nil {
		t.Fatal(err)
	}
	if len(nonce) < 40 || time.Until(expires) > LoginLinkTTL || time.Until(expires) < LoginLinkTTL-5*time.Second {
		t.Fatalf("nonce %q expires in %s, want a long random nonce valid for %s", nonce, time.Until(expires), LoginLinkTTL)
	}
	w := followLink(h, LoginOncePath+"?n="+nonce)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
		t.Fatalf("login link: %d to %q, want 303 to /", w.Code, w.Header().Get("Location"))
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 || cs[0].Name != CookieName || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookies %+v", cs)
	}
	// The cookie is a working session, of the token that made the link.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(cs[0])
	page := httptest.NewRecorder()
	h.ServeHTTP(page, r)
	if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), "csrf-token") {
		t.Fatalf("GET / with the link's session: %d", page.Code)
	}
	if id, err := d.AuthorizeToken(r); err != nil || id != 7 {
		t.Fatalf("session's token %d, %v; want 7", id, err)
	}

	// Single use: the same link again is refused with a page that says why.
	again := followLink(h, LoginOncePath+"?n="+nonce)
	if again.Code != http.StatusGone || len(again.Result().Cookies()) != 0 || !strings.Contains(again.Body.String(), "plat dashboard") {
		t.Fatalf("reused link: %d cookies %v body %q", again.Code, again.Result().Cookies(), again.Body.String())
	}
	for _, bad := range []string{"", "?n=", "?n=not-a-nonce"} {
		if w := followLink(h, LoginOncePath+bad); w.Code != http.StatusGone || len(w.Result().Cookies()) != 0 {
			t.Errorf("link %q: %d, cookies %v", bad, w.Code, w.Result().Cookies())
		}
	}
}

func TestLoginLinkExpires(t *testing.T) {
	d := newTestDashboard()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	d.links.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(by time.Duration) { mu.Lock(); now = now.Add(by); mu.Unlock() }

	fresh, _, _ := d.CreateLoginLink(1)
	stale, _, _ := d.CreateLoginLink(1)
	advance(LoginLinkTTL - time.Second)
	if _, err := d.links.consume(fresh); err != nil {
		t.Fatalf("a link used within its minute: %v", err)
	}
	advance(time.Second)
	w := followLink(d.Handler(), LoginOncePath+"?n="+stale)
	if w.Code != http.StatusGone || len(w.Result().Cookies()) != 0 || !strings.Contains(w.Body.String(), "expired") {
		t.Fatalf("expired link: %d %q", w.Code, w.Body.String())
	}
	// Expired links are swept when new ones are made.
	for range 3 {
		d.CreateLoginLink(1)
	}
	advance(LoginLinkTTL)
	d.CreateLoginLink(1)
	if n := len(d.links.m); n != 1 {
		t.Fatalf("%d links kept, want the 1 unexpired", n)
	}
}

func TestLoginLinkOfRevokedToken(t *testing.T) {
	live := true
	d := New(Options{VerifyToken: fakeVerify, TokenLive: func(uint64) bool { return live }})
	nonce, _, _ := d.CreateLoginLink(1)
	live = false // revoked between `plat dashboard` and the click
	if w := followLink(d.Handler(), LoginOncePath+"?n="+nonce); w.Code != http.StatusGone || len(w.Result().Cookies()) != 0 {
		t.Fatalf("link of a revoked token: %d cookies %v", w.Code, w.Result().Cookies())
	}
}

func TestLoginLinksBounded(t *testing.T) {
	d := newTestDashboard()
	for range maxLoginLinks {
		if _, _, err := d.CreateLoginLink(1); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := d.CreateLoginLink(1); err != ErrTooManyLoginLinks {
		t.Fatalf("link %d: %v, want ErrTooManyLoginLinks", maxLoginLinks+1, err)
	}
}
