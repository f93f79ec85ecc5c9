package daemon

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

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
	token, err := st.CreateToken("test")
	if err != nil {
		t.Fatal(err)
	}
	sessions := web.NewSessions(nil, 0, 0)
	sid, csrf := sessions.Create()
	s := &server{store: st, log: slog.New(slog.DiscardHandler), web: web.New(web.Options{Sessions: sessions})}
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
		})
	}
}
