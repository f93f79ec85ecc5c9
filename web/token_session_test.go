package web

import (
	"crypto/sha256"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plat-paas/plat/internal/authlimit"
	"github.com/plat-paas/plat/store"
)

// TestSessionEndsWithItsToken: a session lives only as long as the API
// token it logged in with: revoked (EndToken, or the token check says no)
// or expired, the session is over; other tokens' sessions stay.
func TestSessionEndsWithItsToken(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "plat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var mu sync.Mutex
	live := map[uint64]bool{1: true, 2: true, 3: true}
	s := NewSessions(st, 0, 0)
	New(Options{Sessions: s, TokenLive: func(id uint64) bool { mu.Lock(); defer mu.Unlock(); return live[id] }})

	one, _ := s.Create(1)
	two, _ := s.Create(2)
	three, _ := s.Create(3)
	mu.Lock()
	live[1] = false // expired, say
	mu.Unlock()
	if _, ok := s.Lookup(one); ok {
		t.Error("session of an expired token is alive")
	}
	if n := s.EndToken(2); n != 1 {
		t.Errorf("EndToken ended %d sessions, want 1", n)
	}
	if _, ok := s.Lookup(two); ok {
		t.Error("session of a revoked token is alive")
	}
	if _, ok := s.Lookup(three); !ok {
		t.Error("another token's session ended")
	}
	// The revoked token's session is gone from the store too: a restarted
	// daemon does not bring it back.
	after := NewSessions(st, 0, 0)
	if _, ok := after.Lookup(two); ok {
		t.Error("revoked token's session came back after a restart")
	}
	if _, ok := after.Lookup(three); !ok {
		t.Error("another token's session lost across a restart")
	}
}

// TestSessionFromBeforeUpgrade: a session stored before sessions knew
// their token cannot be ended by revoking one, so it is refused.
func TestSessionFromBeforeUpgrade(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "plat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id := "old-session-id"
	key := sha256Key(id)
	if err := st.PutSession(key[:], store.Session{CSRF: "c", Created: time.Now(), LastSeen: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, ok := NewSessions(st, 0, 0).Lookup(id); ok {
		t.Fatal("a session without a token was accepted")
	}
}

func TestLoginWithExpiredTokenSaysSo(t *testing.T) {
	l := authlimit.New(authlimit.Options{MaxFailures: 2, Logger: slog.New(slog.DiscardHandler)})
	h := New(Options{VerifyToken: fakeVerify, Limiter: l}).Handler()
	for range 3 { // an expired token is not a guess: it does not count
		w := login(t, h, "old-token", false)
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "expired yesterday") || len(w.Result().Cookies()) != 0 {
			t.Fatalf("expired token: %d %q", w.Code, w.Body)
		}
	}
	if w := login(t, h, "good-token", false); w.Code != http.StatusSeeOther {
		t.Fatalf("good token after expired ones: %d, want 303", w.Code)
	}
}

// TestLoginThrottled: after too many bad tokens from one address, the
// login form answers 429 with Retry-After even for a good token from that
// address; another address logs in.
func TestLoginThrottled(t *testing.T) {
	l := authlimit.New(authlimit.Options{MaxFailures: 3, Lockout: time.Minute, Logger: slog.New(slog.DiscardHandler)})
	h := New(Options{VerifyToken: fakeVerify, Limiter: l}).Handler()
	post := func(token, remote string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader("token="+token))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for range 3 {
		if w := post("guess", "192.0.2.1:1000"); w.Code != http.StatusUnauthorized {
			t.Fatalf("bad token: %d, want 401", w.Code)
		}
	}
	w := post("good-token", "192.0.2.1:1001")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "60" || len(w.Result().Cookies()) != 0 {
		t.Fatalf("good token from a throttled address: %d Retry-After %q, want 429 with 60", w.Code, w.Header().Get("Retry-After"))
	}
	if w := post("good-token", "192.0.2.2:1000"); w.Code != http.StatusSeeOther {
		t.Fatalf("good token from another address: %d, want 303", w.Code)
	}
}

// TestHTTPSSessionCookieIsHostPrefixed: over HTTPS only the __Host-
// cookie is a session; a plain-named cookie (which a sibling host could
// set for the parent domain) is ignored. Over HTTP the plain one is used.
func TestHTTPSSessionCookieIsHostPrefixed(t *testing.T) {
	d := newTestDashboard()
	h := d.Handler()
	id, _ := d.sessions.Create(1)
	get := func(url, cookie string) int {
		r := httptest.NewRequest(http.MethodGet, url, nil)
		r.AddCookie(&http.Cookie{Name: cookie, Value: id})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	tests := []struct {
		url, cookie string
		want        int
	}{
		{"https://plat.example/", SecureCookieName, http.StatusOK},
		{"https://plat.example/", CookieName, http.StatusSeeOther},
		{"http://plat.example/", CookieName, http.StatusOK},
		{"http://plat.example/", SecureCookieName, http.StatusSeeOther},
	}
	for _, tt := range tests {
		if got := get(tt.url, tt.cookie); got != tt.want {
			t.Errorf("GET %s with cookie %s: %d, want %d", tt.url, tt.cookie, got, tt.want)
		}
	}
}

func sha256Key(id string) [32]byte { return sha256.Sum256([]byte(id)) }
