package router

import (
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

	newFront := func(tr http.RoundTripper) *httptest.Server {
		r := New(Options{Logger: slog.New(slog.DiscardHandler), Transport: tr})
		if _, err := r.Set(Route{App: "bench", Hosts: []string{"bench.localhost"},
			Backends: []*Backend{NewBackend(backend.Listener.Addr().String())}}); err != nil {
			b.Fatal(err)
		}
		front := httptest.NewServer(r)
		b.Cleanup(func() { front.Close(); r.CloseIdleConnections() })
		return front
	}
	front := newFront(nil)
	stdFront := newFront(&http.Transport{MaxIdleConnsPerHost: DefaultMaxIdleConnsPerHost, DisableCompression: true})

	for _, bc := range []struct {
		name string
		url  string
	}{
		{"direct", backend.URL + "/"},
		{"router", front.URL + "/"},
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
