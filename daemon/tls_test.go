package daemon

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestByHost(t *testing.T) {
	named := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, name) })
	}
	h := byHost("plat.localhost", named("api"), named("apps"))
	for _, tc := range []struct{ host, want string }{
		{"plat.localhost", "api"},
		{"plat.localhost:8443", "api"},
		{"PLAT.localhost.", "api"},
		{"web.localhost", "apps"},
		{"plat.localhost.evil.com", "apps"},
		{"", "apps"},
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Host = tc.host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Body.String() != tc.want {
			t.Errorf("Host %q went to %s, want %s", tc.host, rec.Body.String(), tc.want)
		}
	}
}
