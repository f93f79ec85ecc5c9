package web

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// TestStaticCaching: static files travel gzipped, carry an ETag (a repeat
// is a 304), and are cached for good only under their content-hashed URL,
// which is what the pages link to.
func TestStaticCaching(t *testing.T) {
	srv := httptest.NewServer(newTestDashboard().Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`href="(/static/style\.css\?v=[0-9a-f]{16})"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("the login page does not link style.css by its hash:\n%s", page)
	}
	hashed := string(m[1])

	get := func(path string, h map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		// A transport that does not decompress: the test sees the wire.
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b
	}
	resp, body := get(hashed, map[string]string{"Accept-Encoding": "gzip, br"})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("GET %s: %d, encoding %q, cache %q", hashed, resp.StatusCode, resp.Header.Get("Content-Encoding"), resp.Header.Get("Cache-Control"))
	}
	zr, err := gzip.NewReader(strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	css, _ := io.ReadAll(zr)
	if !strings.Contains(string(css), ":root") || resp.Header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("gzipped body is not the stylesheet (%s): %.60q", resp.Header.Get("Content-Type"), css)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("ETag %q, Vary %q", etag, resp.Header.Get("Vary"))
	}

	for _, tc := range []struct {
		name, path string
		header     map[string]string
		status     int
		encoding   string
		cache      string
	}{
		{"no gzip asked", hashed, nil, 200, "", "immutable"},
		{"gzip refused", hashed, map[string]string{"Accept-Encoding": "gzip;q=0"}, 200, "", "immutable"},
		{"unhashed URL revalidates", "/static/style.css", map[string]string{"Accept-Encoding": "gzip"}, 200, "gzip", "no-cache"},
		{"stale hash revalidates", "/static/style.css?v=0000", nil, 200, "", "no-cache"},
		{"repeat is a 304", "/static/style.css", map[string]string{"If-None-Match": etag}, 304, "", "no-cache"},
		{"missing file", "/static/nope.js", nil, 404, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := get(tc.path, tc.header)
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Encoding") != tc.encoding || !strings.Contains(resp.Header.Get("Cache-Control"), tc.cache) {
				t.Errorf("GET %s: %d, encoding %q, cache %q; want %d, %q, %q", tc.path, resp.StatusCode,
					resp.Header.Get("Content-Encoding"), resp.Header.Get("Cache-Control"), tc.status, tc.encoding, tc.cache)
			}
		})
	}
}

// TestNotFoundPage: unknown paths get the dashboard's own 404 page, not
// Go's plain text.
func TestNotFoundPage(t *testing.T) {
	srv := httptest.NewServer(newTestDashboard().Handler())
	defer srv.Close()
	for _, path := range []string{"/nope", "/apps/web/extra", "/static/", "/static/nope.js"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || !strings.Contains(string(b), "Page not found") || !strings.Contains(string(b), `href="/"`) ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %d %s %.100q", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	}
}

// TestSafeNext: after login the browser goes back to the page it asked
// for, but only to a path on this site.
func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "/",
		"/apps/web":               "/apps/web",
		"/apps/web?x=1":           "/apps/web?x=1",
		"/tokens":                 "/tokens",
		"//evil.example/x":        "/",
		"/\\evil.example":         "/",
		"https://evil.example/":   "/",
		"javascript:alert(1)":     "/",
		"apps/web":                "/",
		"/login?next=/x":          "/",
		"/apps/web\r\nSet-Cookie": "/",
		"/%2F%2Fevil.example":     "/%2F%2Fevil.example",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLoginReturnsToPage: a page asked for without a session sends the
// browser to log in and, after it, back there; a foreign next is ignored.
func TestLoginReturnsToPage(t *testing.T) {
	srv := httptest.NewServer(newTestDashboard().Handler())
	defer srv.Close()
	resp, err := noRedirect.Get(srv.URL + "/apps/web")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/login?next=%2Fapps%2Fweb" {
		t.Fatalf("GET /apps/web without session: %d %q", resp.StatusCode, loc)
	}
	for next, want := range map[string]string{"/apps/web": "/apps/web", "//evil.example": "/", "": "/"} {
		resp, err := noRedirect.PostForm(srv.URL+"/login", url.Values{"token": {"good-token"}, "next": {next}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != want {
			t.Errorf("login with next=%q: %d %q, want %q", next, resp.StatusCode, loc, want)
		}
	}
	// A failed login keeps next for the retry, and says what to run without
	// markdown backticks.
	resp, err = noRedirect.PostForm(srv.URL+"/login", url.Values{"token": {"wrong"}, "next": {"/apps/web"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || strings.Contains(string(b), "`") || !strings.Contains(string(b), `value="/apps/web"`) ||
		!strings.Contains(string(b), "<code>plat daemon token</code>.</p>") {
		t.Errorf("failed login page: %d\n%s", resp.StatusCode, b)
	}
}
