package router

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestHSTS: an app that opted in gets Strict-Transport-Security on its
// responses over real TLS for hosts with a public certificate only: not
// over plain HTTP, not for local names (whose certificates come from the
// local CA), not for apps that did not opt in; an app's own header wins.
func TestHSTS(t *testing.T) {
	const year = 365 * 24 * time.Hour
	r := New(Options{})
	_, plain := newBackendServer(t, textHandler("ok"))
	_, own := newBackendServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=60")
	}))
	mustSet(t, r, Route{App: "shop", Hosts: []string{"shop.example.com", "shop.localhost"}, Backends: []*Backend{plain}, HSTSMaxAge: year})
	mustSet(t, r, Route{App: "blog", Hosts: []string{"blog.example.com"}, Backends: []*Backend{plain}})
	mustSet(t, r, Route{App: "own", Hosts: []string{"own.example.com"}, Backends: []*Backend{own}, HSTSMaxAge: year})
	if rt, _ := r.Lookup("shop.example.com"); rt.HSTSMaxAge != year {
		t.Errorf("Lookup lost the HSTS setting: %v", rt.HSTSMaxAge)
	}

	tlsFront := httptest.NewTLSServer(r)
	t.Cleanup(tlsFront.Close)
	plainFront := newFront(t, r)
	tests := []struct {
		front  *httptest.Server
		host   string
		method string
		want   string
	}{
		{tlsFront, "shop.example.com", http.MethodGet, "max-age=31536000"},
		{tlsFront, "shop.example.com", http.MethodPost, "max-age=31536000"}, // net/http transport path
		{tlsFront, "shop.localhost", http.MethodGet, ""},
		{plainFront, "shop.example.com", http.MethodGet, ""},
		{tlsFront, "blog.example.com", http.MethodGet, ""},
		{tlsFront, "own.example.com", http.MethodGet, "max-age=60"},
	}
	for _, tc := range tests {
		req, err := http.NewRequest(tc.method, tc.front.URL+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.method == http.MethodPost {
			req.Body = io.NopCloser(http.NoBody)
			req.ContentLength = -1
		}
		req.Host = tc.host
		resp, err := tc.front.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Values("Strict-Transport-Security"); len(got) > 1 || resp.Header.Get("Strict-Transport-Security") != tc.want {
			t.Errorf("%s %s over TLS=%v: Strict-Transport-Security %q, want %q", tc.method, tc.host, resp.TLS != nil, got, tc.want)
		}
	}
}
