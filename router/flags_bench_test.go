package router

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// BenchmarkFlags is the router's per-request cost with feature flags, in
// memory (ServeHTTP, no network):
//
//   - off: no flags (every app without them), a Cookie header without the id;
//
//   - flags-N: N flags at 50%, the browser sending its plat_uid cookie
//     (every request after its first): the id is taken from the Cookie
//     header and Plat-Flags computed (one hash per flag);
//
//   - flags-4-new-client: no cookie, so an id is drawn and set each time;
//
//   - shadowed-app-other: no flags, another app has a shadow (the one
//     extra map lookup every request pays then).
//
//     go test -run '^$' -bench 'Flags' -benchmem -count 10 ./router/ | benchstat -col /case -
func BenchmarkFlags(b *testing.B) {
	flags := func(n int) []Flag {
		out := make([]Flag, n)
		for i := range out {
			out[i] = Flag{Name: "flag-" + strconv.Itoa(i), Percent: 50}
		}
		return out
	}
	cases := []struct {
		name   string
		flags  []Flag
		cookie string
		shadow bool
	}{
		{"off", nil, "session=abc", false},
		{"flags-1", flags(1), "session=abc; " + UIDCookie + "=0123456789abcdef0123456789abcdef", false},
		{"flags-4", flags(4), "session=abc; " + UIDCookie + "=0123456789abcdef0123456789abcdef", false},
		{"flags-16", flags(16), "session=abc; " + UIDCookie + "=0123456789abcdef0123456789abcdef", false},
		{"flags-4-new-client", flags(4), "session=abc", false},
		{"shadowed-app-other", nil, "session=abc", true},
	}
	for _, c := range cases {
		b.Run("case="+c.name, func(b *testing.B) {
			r := New(Options{Logger: slog.New(slog.DiscardHandler), Transport: staticTransport{}})
			if _, err := r.Set(Route{App: "bench", Hosts: []string{"bench.localhost"},
				Backends: []*Backend{NewBackend("127.0.0.1:1"), NewBackend("127.0.0.1:2")}, Flags: c.flags}); err != nil {
				b.Fatal(err)
			}
			if c.shadow {
				if err := r.SetShadow("other", ShadowConfig{Release: "v2", Addrs: []string{"127.0.0.1:3"}}); err != nil {
					b.Fatal(err)
				}
				defer func() { _, _ = r.StopShadow("other") }()
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest(http.MethodGet, "http://bench.localhost:8080/", nil)
				req.Header.Set("X-Request-Id", "fixed")
				w := &discardWriter{h: http.Header{}}
				cookie := []string{c.cookie} // the router strips the id: put it back each time
				for pb.Next() {
					req.Header["Cookie"] = cookie
					clear(w.h)
					r.ServeHTTP(w, req)
				}
			})
		})
	}
}
