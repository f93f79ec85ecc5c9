package router_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/plat-paas/plat/logs"
	"github.com/plat-paas/plat/router"
)

// hubSource is a log hub source without containers: only router lines.
type hubSource struct{}

func (hubSource) ActiveContainers(string) ([]logs.Container, error) { return nil, nil }
func (hubSource) TimedLogs(context.Context, string, time.Time, int, bool, io.Writer) error {
	return nil
}

// staticTransport answers every request in memory.
type staticTransport struct{}

func (staticTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"text/plain"}}, Body: http.NoBody, Request: req}, nil
}

// discard is a ResponseWriter that keeps nothing.
type discard struct{ h http.Header }

func (w *discard) Header() http.Header         { return w.h }
func (w *discard) Write(p []byte) (int, error) { return len(p), nil }
func (w *discard) WriteHeader(int)             {}

// BenchmarkRequestLog is the router's per-request cost with request lines
// on (log=on: a record handed over per request, formatted and added to a
// real log hub by a reader goroutine, as the daemon does) and off, in
// memory (ServeHTTP) and over loopback (Proxy). Issue 14: within 5%.
//
//	go test -run '^$' -bench RequestLog -benchmem ./router/
func BenchmarkRequestLog(b *testing.B) {
	for _, path := range []string{"ServeHTTP", "Proxy"} {
		for _, on := range []bool{false, true} {
			mode := "off"
			if on {
				mode = "on"
			}
			b.Run("path="+path+"/log="+mode, func(b *testing.B) {
				benchRequestLog(b, path == "Proxy", on)
			})
		}
	}
}

func benchRequestLog(b *testing.B, loopback, on bool) {
	var tr http.RoundTripper = staticTransport{}
	addr := "127.0.0.1:1"
	if loopback {
		tr = nil
		backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, strings.Repeat("x", 512))
		}))
		b.Cleanup(backend.Close)
		addr = backend.Listener.Addr().String()
	}
	// A buffer that holds 50ms of the in-memory path's rate: dropped records
	// would make "on" look cheaper than it is.
	r := router.New(router.Options{Logger: slog.New(slog.DiscardHandler), Transport: tr, RequestLogBuffer: 1 << 16})
	if _, err := r.Set(router.Route{App: "bench", Hosts: []string{"bench.localhost"}, Release: "v1",
		Backends: []*router.Backend{router.NewBackend(addr)}, LogRequests: on}); err != nil {
		b.Fatal(err)
	}
	if on {
		hub := logs.NewHub(hubSource{}, logs.Options{})
		ch := r.RequestLog()
		done := make(chan struct{})
		go func() { // as the daemon does (daemon.runRequestLog): a batch every 50ms
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			var batch []logs.RouterLine
			for {
				select {
				case <-done:
					return
				case <-t.C:
				}
				batch = batch[:0]
			more:
				for range cap(ch) {
					select {
					case rec := <-ch:
						batch = append(batch, logs.RouterLine{App: rec.App, Time: rec.Time, Text: rec.Format("web.1")})
					default:
						break more
					}
				}
				hub.AddRouterLines(batch)
			}
		}()
		b.Cleanup(func() { close(done) })
	}
	b.ReportAllocs()
	if !loopback {
		b.RunParallel(func(pb *testing.PB) {
			req := httptest.NewRequest(http.MethodGet, "http://bench.localhost:8080/some/path", nil)
			req.Header.Set("X-Request-Id", "fixed")
			w := &discard{h: http.Header{}}
			for pb.Next() {
				clear(w.h)
				r.ServeHTTP(w, req)
			}
		})
		b.ReportMetric(float64(r.RequestLogDropped()), "dropped")
		return
	}
	front := httptest.NewServer(r)
	b.Cleanup(func() { front.Close(); r.CloseIdleConnections() })
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}
	defer client.CloseIdleConnections()
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest(http.MethodGet, front.URL+"/some/path", nil)
		req.Host = "bench.localhost"
		for pb.Next() {
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	b.ReportMetric(float64(r.RequestLogDropped()), "dropped")
}
