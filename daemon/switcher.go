package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/router"
	"github.com/plat-paas/plat/store"
)

var _ deploy.SplitSwitcher = (*switcher)(nil)

// switcher adapts the router to deploy.Switcher and deploy.SplitSwitcher: it knows which host names
// belong to an app (its default host and its custom domains).
type switcher struct {
	router *router.Router
	domain string
	store  *store.Store
	// mu makes Switch and Rehost each one read-and-set of the route, so a
	// domain change cannot put back backends a deploy just switched away from.
	mu sync.Mutex
	// appURL, once the listeners are open, turns a host label
	// ("v8.myapp") into the URL users reach it at.
	appURL atomic.Pointer[func(label string) string]
	// keep, if set, reads app's release counters before a route change
	// that may end them (the metrics sampler's Keep).
	keep func(app string)
}

// keepStats runs keep for app.
func (s *switcher) keepStats(app string) {
	if s.keep != nil {
		s.keep(app)
	}
}

// defaultHost is <app>.<domain>, and <label>.<app>.<domain> for a preview.
func (s *switcher) defaultHost(app string) string { return deploy.HostLabel(app) + "." + s.domain }

// route is app's route as its record says, without backends: its default
// host and custom domains, its HSTS setting, its feature flags and whether
// its requests are logged.
func (s *switcher) route(app string) router.Route {
	rt := router.Route{App: app, Hosts: []string{s.defaultHost(app)}, LogRequests: true}
	if a, err := s.store.GetApp(app); err == nil {
		rt.Hosts = append(rt.Hosts, a.Domains...)
		rt.HSTSMaxAge = a.HSTSMaxAge
		rt.Flags = routerFlags(a.Flags)
		rt.LogRequests = !a.RouterLogsOff
	}
	return rt
}

// Switch routes app to addrs, all of one release (unlabelled), ending any
// split. A backend whose address stays (in either group) keeps its object,
// so its in-flight count carries over and it is not drained; only the
// backends that left are returned to drain.
func (s *switcher) Switch(app string, addrs []string) (func(context.Context) error, error) {
	return s.SwitchSplit(app, deploy.Split{Stable: deploy.Group{Addrs: addrs}})
}

// SwitchSplit routes app to sp's groups in one route change, carrying
// backend objects over by address across both groups.
func (s *switcher) SwitchSplit(app string, sp deploy.Split) (func(context.Context) error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.currentBackends(app)
	take := func(addrs []string) []*router.Backend {
		backends := make([]*router.Backend, len(addrs))
		for i, a := range addrs {
			if b, ok := cur[a]; ok {
				backends[i] = b
				delete(cur, a)
			} else {
				backends[i] = router.NewBackend(a)
			}
		}
		return backends
	}
	rt := s.route(app)
	rt.Release = sp.Stable.Release
	rt.Backends = take(sp.Stable.Addrs)
	if c := sp.Canary; c != nil {
		rt.Canary = &router.Group{Release: c.Release, Backends: take(c.Addrs), Weight: sp.Weight}
	}
	s.keepStats(app)
	if _, err := s.router.Set(rt); err != nil {
		return nil, fmt.Errorf("route %s: %w", app, err)
	}
	return s.retireAll(slices.Collect(maps.Values(cur))), nil
}

// currentBackends maps the address of each backend app's route has now, in
// either group, to its object.
func (s *switcher) currentBackends(app string) map[string]*router.Backend {
	cur := map[string]*router.Backend{}
	if rt, ok := s.router.Lookup(s.defaultHost(app)); ok {
		for _, b := range rt.Backends {
			cur[b.Addr()] = b
		}
		if rt.Canary != nil {
			for _, b := range rt.Canary.Backends {
				cur[b.Addr()] = b
			}
		}
	}
	return cur
}

// Hold routes app to no backend while an in-place deploy replaces it:
// requests wait up to timeout (0: router.DefaultHoldTimeout) for the next
// switch instead of getting a 503.
func (s *switcher) Hold(app string, timeout time.Duration) (func(context.Context) error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.route(app)
	rt.Hold, rt.HoldTimeout = true, timeout
	s.keepStats(app)
	prev, err := s.router.Set(rt)
	if err != nil {
		return nil, fmt.Errorf("hold %s: %w", app, err)
	}
	return s.retireAll(prev), nil
}

func (s *switcher) ReleaseStats(app, release string) (deploy.ReleaseStats, bool) {
	st, ok := s.router.ReleaseStats(app, release)
	if !ok {
		return deploy.ReleaseStats{}, false
	}
	return deploy.ReleaseStats{
		Requests:  st.Requests,
		Status1xx: st.Status1xx, Status2xx: st.Status2xx, Status3xx: st.Status3xx,
		Status4xx: st.Status4xx, Status5xx: st.Status5xx,
		NoStatus: st.NoStatus, ProxyErrors: st.ProxyErrors, BytesWritten: st.BytesWritten,
		InFlight: st.InFlight, Latency: st.Latency,
	}, true
}

// Sleep routes app to no backend; requests for it wake it.
func (s *switcher) Sleep(app string) (func(context.Context) error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.route(app)
	rt.Asleep = true
	s.keepStats(app)
	prev, err := s.router.Set(rt)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", app, err)
	}
	return s.retireAll(prev), nil
}

func (s *switcher) Stats(app string) (deploy.TrafficStats, bool) {
	st, ok := s.router.Stats(app)
	return deploy.TrafficStats{Backends: st.Backends, InFlight: st.InFlight, Requests: st.Requests}, ok
}

// Rehost re-installs app's route with its current hosts and the backends
// it has now, so a domain change applies without a restart. An app that
// was never routed gets a route without backends (503 until deployed).
func (s *switcher) Rehost(app string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cur router.Route
	if rt, ok := s.router.Lookup(s.defaultHost(app)); ok {
		cur = rt
	}
	rt := s.route(app)
	rt.Backends, rt.Asleep, rt.Release, rt.Canary = cur.Backends, cur.Asleep, cur.Release, cur.Canary
	rt.Hold, rt.HoldTimeout = cur.Hold, cur.HoldTimeout
	if _, err := s.router.Set(rt); err != nil {
		return fmt.Errorf("route %s: %w", app, err)
	}
	return nil
}

func (s *switcher) Remove(app string) func(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keepStats(app)
	return s.retireAll(s.router.Remove(app))
}

// retireAll drains backends that left the router and closes the router's
// idle connections to them.
func (s *switcher) retireAll(backends []*router.Backend) func(context.Context) error {
	return func(ctx context.Context) error {
		var errs []error
		for _, b := range backends {
			if err := s.router.Retire(ctx, b); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", b.Addr(), err))
			}
		}
		return errors.Join(errs...)
	}
}

var _ deploy.PreviewSwitcher = (*switcher)(nil)

// previewHost is the host at which release of app answers on its own.
func (s *switcher) previewHost(app string, release int) string {
	return "v" + strconv.Itoa(release) + "." + app + "." + s.domain
}

// SwitchPreview routes release's preview host, a route of its own (keyed
// deploy.PreviewKey) so the app's production route never sees it. A
// backend whose address stays keeps its object.
func (s *switcher) SwitchPreview(app string, release int, addrs []string, asleep bool) (func(context.Context) error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	host := s.previewHost(app, release)
	cur := map[string]*router.Backend{}
	if rt, ok := s.router.Lookup(host); ok {
		for _, b := range rt.Backends {
			cur[b.Addr()] = b
		}
	}
	rt := router.Route{App: deploy.PreviewKey(app, release), Hosts: []string{host}, Release: "v" + strconv.Itoa(release), Asleep: asleep}
	for _, a := range addrs {
		b, ok := cur[a]
		if ok {
			delete(cur, a)
		} else {
			b = router.NewBackend(a)
		}
		rt.Backends = append(rt.Backends, b)
	}
	if _, err := s.router.Set(rt); err != nil {
		return nil, fmt.Errorf("route %s: %w", host, err)
	}
	return s.retireAll(slices.Collect(maps.Values(cur))), nil
}

func (s *switcher) RemovePreview(app string, release int) func(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retireAll(s.router.Remove(deploy.PreviewKey(app, release)))
}

func (s *switcher) PreviewStats(app string, release int) (deploy.TrafficStats, bool) {
	return s.Stats(deploy.PreviewKey(app, release))
}

// PreviewURL is https://vN.APP.<domain>[:port]/ (http:// without HTTPS).
func (s *switcher) PreviewURL(app string, release int) string {
	if u := s.appURL.Load(); u != nil {
		return (*u)("v" + strconv.Itoa(release) + "." + app)
	}
	return "http://" + s.previewHost(app, release) + "/"
}
