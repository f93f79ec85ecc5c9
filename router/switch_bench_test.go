package router

import (
	"fmt"
	"log/slog"
	"testing"
)

// BenchmarkSwitch measures one blue-green flip: replacing an app's backends
// in the routing table, with 1 and 50 apps routed. After Set returns every
// new request goes to the new backend.
//
//	go test -run '^$' -bench Switch -benchmem ./router/
func BenchmarkSwitch(b *testing.B) {
	for _, apps := range []int{1, 50} {
		b.Run(fmt.Sprintf("apps=%d", apps), func(b *testing.B) {
			r := New(Options{Logger: slog.New(slog.DiscardHandler)})
			for i := range apps {
				name := fmt.Sprintf("app%d", i)
				if _, err := r.Set(Route{App: name, Hosts: []string{name + ".localhost"}, Backends: []*Backend{NewBackend("127.0.0.1:1")}}); err != nil {
					b.Fatal(err)
				}
			}
			blue, green := []*Backend{NewBackend("127.0.0.1:2")}, []*Backend{NewBackend("127.0.0.1:3")}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				next := blue
				if i%2 == 1 {
					next = green
				}
				if _, err := r.Set(Route{App: "app0", Hosts: []string{"app0.localhost"}, Backends: next}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
