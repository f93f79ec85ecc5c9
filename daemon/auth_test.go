package daemon

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plat-paas/plat/store"
	"github.com/plat-paas/plat/web"
)

// TestAuthenticate checks who may call the API: token holders (no CSRF
// token needed: they carry no ambient credentials) and dashboard sessions
// (CSRF token needed on state changes).
func TestAuthenticate(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "plat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	token, tok, err := st.CreateTokenExpiring("test", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	expired, _, err := st.CreateTokenExpiring("old", time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	_, revoked, err := st.CreateTokenExpiring("gone", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	tokens := newTokenManager(st, log)
	sessions := web.NewSessions(st, 0, 0)
	sid, csrf := sessions.Create(tok.ID)
	goneSID, _ := sessions.Create(revoked.ID)
	if _, err := st.RevokeToken("gone", false, time.Now()); err != nil {
		t.Fatal(err)
	}
	s := &server{store: st, log: log, tokens: tokens, web: web.New(web.Options{
		Sessions: sessions, TokenLive: func(id uint64) bool { _, ok := tokens.live(id); return ok },
	})}
	h := s.authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))

	tests := []struct {
		name            string
		method          string
		bearer, basic   string
		cookie, csrfHdr string
		want            int
	}{
		{"nothing", "GET", "", "", "", "", http.StatusUnauthorized},
		{"bearer token", "GET", token, "", "", "", http.StatusTeapot},
		{"bearer token POST needs no CSRF token", "POST", token, "", "", "", http.StatusTeapot},
		{"wrong bearer token", "POST", "nope", "", "", "", http.StatusUnauthorized},
		{"git basic auth", "POST", "", token, "", "", http.StatusTeapot},
		{"session GET", "GET", "", "", sid, "", http.StatusTeapot},
		{"session POST without CSRF token", "POST", "", "", sid, "", http.StatusForbidden},
		{"session POST with wrong CSRF token", "POST", "", "", sid, "x" + csrf, http.StatusForbidden},
		{"session DELETE with CSRF token", "DELETE", "", "", sid, csrf, http.StatusTeapot},
		{"forged session", "GET", "", "", "forged", "", http.StatusUnauthorized},
		{"expired bearer token", "GET", expired, "", "", "", http.StatusUnauthorized},
		{"expired token for git", "POST", "", expired, "", "", http.StatusUnauthorized},
		{"session of a revoked token", "GET", "", "", goneSID, "", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/api/apps", strings.NewReader("{}"))
			if tt.bearer != "" {
				r.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			if tt.basic != "" {
				r.SetBasicAuth("plat", tt.basic)
			}
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: web.CookieName, Value: tt.cookie})
			}
			if tt.csrfHdr != "" {
				r.Header.Set(web.CSRFHeader, tt.csrfHdr)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("%s: %d, want %d (%s)", tt.name, w.Code, tt.want, w.Body)
			}
			// An expired token's holder learns that it expired and what to
			// do; a wrong one learns nothing.
			if strings.Contains(tt.name, "expired") && !strings.Contains(w.Body.String(), `token \"old\" expired at`) {
				t.Errorf("%s: body %s does not say the token expired", tt.name, w.Body)
			}
			if strings.Contains(tt.name, "wrong") && strings.Contains(w.Body.String(), "expired") {
				t.Errorf("%s: body %s", tt.name, w.Body)
			}
		})
	}
}
