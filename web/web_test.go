package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestStaticListsNoDirectory: files under /static/ are served, the
// directory itself is not listed.
func TestStaticListsNoDirectory(t *testing.T) {
	srv := httptest.NewServer(newTestDashboard().Handler())
	defer srv.Close()
	for _, tc := range []struct {
		path string
		want int
		body string
	}{
		{"/static/app.js", http.StatusOK, "function"},
		{"/static/style.css", http.StatusOK, "{"},
		{"/static/", http.StatusNotFound, ""},
		{"/static/.", http.StatusNotFound, ""},
		{"/static/nope.js", http.StatusNotFound, ""},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || !strings.Contains(string(b), tc.body) {
			t.Errorf("GET %s: %d %.80q; want %d", tc.path, resp.StatusCode, b, tc.want)
		}
		if strings.Contains(string(b), "app.js") && tc.want == http.StatusNotFound {
			t.Errorf("GET %s lists the directory: %.200q", tc.path, b)
		}
	}
}
