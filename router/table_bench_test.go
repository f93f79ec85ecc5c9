package router

import (
	"fmt"
	"log/slog"
	"testing"
)

// tableSizes are the numbers of apps the table benchmarks run with.
var tableSizes = []int{1, 50, 500}

// newBenchRouter returns a router serving apps app0…app{n-1}, each with one
// host and one backend.
func newBenchRouter(b *testing.B, n int) *Router {
	b.Helper()
	r := New(Options{Logger: slog.New(slog.DiscardHandler), Transport: staticTransport{}})
	for i := range n {
		app := fmt.Sprintf("app%d", i)
		if _, err := r.Set(Route{App: app, Hosts: []string{app + ".localhost"},
			Backends: []*Backend{NewBackend(fmt.Sprintf("127.0.0.1:%d", 10000+i))}}); err != nil {
			b.Fatal(err)
		}
	}
	return r
}

// BenchmarkSet is the cost of one deploy's table swap (copy-on-write of the
// whole table) as a function of the number of apps.
//
//	go test -run '^$' -bench 'Set$' -benchmem ./router/
func BenchmarkSet(b *testing.B) {
	for _, n := range tableSizes {
		b.Run(fmt.Sprintf("apps=%d", n), func(b *testing.B) {
			r := newBenchRouter(b, n)
			backends := []*Backend{NewBackend("127.0.0.1:9999")}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Set(Route{App: "app0", Hosts: []string{"app0.localhost"}, Backends: backends}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPick is the request path's table lookup (host → route → backend,
// with in-flight accounting) as a function of the number of apps.
//
//	go test -run '^$' -bench 'Pick$' -benchmem ./router/
func BenchmarkPick(b *testing.B) {
	for _, n := range tableSizes {
		b.Run(fmt.Sprintf("apps=%d", n), func(b *testing.B) {
			r := newBenchRouter(b, n)
			host := fmt.Sprintf("app%d.localhost", n/2)
			b.ReportAllocs()
			for b.Loop() {
				_, g, i := r.pick(normalizeHost(host), selector{bucket: -1}, nil)
				if i < 0 {
					b.Fatal("no backend")
				}
				g.backends[i].release()
			}
		})
	}
}

// BenchmarkPickReplicas is the same lookup for an app with several
// backends (replicas): least requests in flight, round-robin among equals.
//
//	go test -run '^$' -bench 'PickReplicas' -benchmem ./router/
func BenchmarkPickReplicas(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("backends=%d", n), func(b *testing.B) {
			r := New(Options{Logger: slog.New(slog.DiscardHandler), Transport: staticTransport{}})
			backends := make([]*Backend, n)
			for i := range backends {
				backends[i] = NewBackend(fmt.Sprintf("127.0.0.1:%d", 10000+i))
			}
			if _, err := r.Set(Route{App: "app", Hosts: []string{"app.localhost"}, Backends: backends}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				_, g, i := r.pick("app.localhost", selector{bucket: -1}, nil)
				if i < 0 {
					b.Fatal("no backend")
				}
				g.backends[i].release()
			}
		})
	}
}
