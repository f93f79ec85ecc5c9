package router

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkRouterProxy compares requests sent straight to a backend with the
// same requests sent through the router, over real loopback connections:
// with the router's own transport, and with a plain net/http.Transport (what
// the router used before its lean GET/HEAD path).
//
//	go test -run '^$' -bench RouterProxy -benchmem ./router/
func BenchmarkRouterProxy(b *testing.B) {
	body := strings.Repeat("x", 512)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, body)
	}))
	defer backend.Close()

	newFront := func(tr http.RoundTripper, fast bool) *httptest.Server {
		r := New(Options{Logger: slog.New(slog.DiscardHandler), Transport: tr})
		if _, err := r.Set(Route{App: "bench", Hosts: []string{"bench.localhost"},
			Backends: []*Backend{NewBackend(backend.Listener.Addr().String())}}); err != nil {
			b.Fatal(err)
		}
		front := httptest.NewUnstartedServer(r)
		var fl *FastListener
		if fast {
			fl = r.FastListener(front.Listener, FastOptions{})
			front.Listener = fl
		}
		front.Start()
		b.Cleanup(func() {
			front.Close()
			if fl != nil {
				_ = fl.Shutdown(context.Background())
			}
			r.CloseIdleConnections()
		})
		return front
	}
	front := newFront(nil, false)
	fastFront := newFront(nil, true)
	stdFront := newFront(&http.Transport{MaxIdleConnsPerHost: DefaultMaxIdleConnsPerHost, DisableCompression: true}, false)

	for _, bc := range []struct {
		name string
		url  string
	}{
		{"direct", backend.URL + "/"},
		{"router", front.URL + "/"},
		{"router-fast", fastFront.URL + "/"},
		{"router-std-transport", stdFront.URL + "/"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}
			defer client.CloseIdleConnections()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req, err := http.NewRequest(http.MethodGet, bc.url, nil)
				if err != nil {
					b.Error(err)
					return
				}
				req.Host = "bench.localhost"
				for pb.Next() {
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}

// staticTransport answers every request in memory, so BenchmarkServeHTTP
// measures the router's own work without any network.
type staticTransport struct{}

func (staticTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode:    http.StatusOK,
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"text/plain"}},
		Body:          http.NoBody,
		ContentLength: 0,
		Request:       req,
	}, nil
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkServeHTTP is the router's hot path alone: host normalization,
// table lookup, in-flight accounting and ReverseProxy, in memory.
func BenchmarkServeHTTP(b *testing.B) {
	r := New(Options{Logger: slog.New(slog.DiscardHandler), Transport: staticTransport{}})
	if _, err := r.Set(Route{App: "bench", Hosts: []string{"bench.localhost"},
		Backends: []*Backend{NewBackend("127.0.0.1:1"), NewBackend("127.0.0.1:2")}}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "http://bench.localhost:8080/", nil)
		req.Header.Set("X-Request-Id", "fixed")
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			r.ServeHTTP(w, req)
		}
	})
}

// BenchmarkSplit is the router's per-request cost with a weighted split
// active (issue 12: within 5% of a single backend group), in memory
// (ServeHTTP, no network) and over real loopback connections (Proxy):
//
//   - single: one group of two backends (what every app has today);
//
//   - split: stable and canary of one backend each at 50%, the client
//     sending its bucket cookie (every request after a client's first);
//
//   - split-new-client: the same without the cookie, so the router draws a
//     bucket and sets the cookie on every response (a client's first).
//
//     go test -run '^$' -bench 'Split' -benchmem -count 10 ./router/ | benchstat -col /route -
func BenchmarkSplit(b *testing.B) {
	routes := []struct {
		name   string
		cookie string
		route  func(a, c *Backend) Route
	}{
		{"single", "", func(a, c *Backend) Route {
			return Route{App: "bench", Hosts: []string{"bench.localhost"}, Release: "v1", Backends: []*Backend{a, c}}
		}},
		{"split", BucketCookie + "=42", func(a, c *Backend) Route {
			return Route{App: "bench", Hosts: []string{"bench.localhost"}, Release: "v1", Backends: []*Backend{a},
				Canary: &Group{Release: "v2", Backends: []*Backend{c}, Weight: 50}}
		}},
		{"split-new-client", "", func(a, c *Backend) Route {
			return Route{App: "bench", Hosts: []string{"bench.localhost"}, Release: "v1", Backends: []*Backend{a},
				Canary: &Group{Release: "v2", Backends: []*Backend{c}, Weight: 50}}
		}},
	}
	b.Run("path=ServeHTTP", func(b *testing.B) {
		for _, rc := range routes {
			b.Run("route="+rc.name, func(b *testing.B) {
				r := New(Options{Logger: slog.New(slog.DiscardHandler), Transport: staticTransport{}})
				if _, err := r.Set(rc.route(NewBackend("127.0.0.1:1"), NewBackend("127.0.0.1:2"))); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					req := httptest.NewRequest(http.MethodGet, "http://bench.localhost:8080/", nil)
					req.Header.Set("X-Request-Id", "fixed")
					w := &discardWriter{h: http.Header{}}
					cookie := []string{rc.cookie} // the router strips it: put it back each time
					for pb.Next() {
						if rc.cookie != "" {
							req.Header["Cookie"] = cookie
						}
						clear(w.h)
						r.ServeHTTP(w, req)
					}
				})
			})
		}
	})
	b.Run("path=Proxy", func(b *testing.B) {
		backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, strings.Repeat("x", 512))
		}))
		defer backend.Close()
		other := httptest.NewServer(backend.Config.Handler)
		defer other.Close()
		for _, rc := range routes {
			b.Run("route="+rc.name, func(b *testing.B) {
				r := New(Options{Logger: slog.New(slog.DiscardHandler)})
				if _, err := r.Set(rc.route(NewBackend(backend.Listener.Addr().String()), NewBackend(other.Listener.Addr().String()))); err != nil {
					b.Fatal(err)
				}
				front := httptest.NewServer(r)
				defer func() { front.Close(); r.CloseIdleConnections() }()
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}
				defer client.CloseIdleConnections()
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					req, err := http.NewRequest(http.MethodGet, front.URL+"/", nil)
					if err != nil {
						b.Error(err)
						return
					}
					req.Host = "bench.localhost"
					if rc.cookie != "" {
						req.Header.Set("Cookie", rc.cookie)
					}
					for pb.Next() {
						resp, err := client.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							b.Errorf("status %d", resp.StatusCode)
							return
						}
					}
				})
			})
		}
	})
}
