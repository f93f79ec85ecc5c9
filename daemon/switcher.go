package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/router"
	"github.com/plat-paas/plat/store"
)

// switcher adapts the router to deploy.Switcher: it knows which host names
// belong to an app (its default host and its custom domains).
type switcher struct {
	router *router.Router
	domain string
	store  *store.Store
	// mu makes Switch and Rehost each one read-and-set of the route, so a
	// domain change cannot put back backends a deploy just switched away from.
	mu sync.Mutex
}

func (s *switcher) defaultHost(app string) string { return app + "." + s.domain }

// route is app's route as its record says, without backends: its default
// host and custom domains, and its HSTS setting.
func (s *switcher) route(app string) router.Route {
	rt := router.Route{App: app, Hosts: []string{s.defaultHost(app)}}
	if a, err := s.store.GetApp(app); err == nil {
		rt.Hosts = append(rt.Hosts, a.Domains...)
		rt.HSTSMaxAge = a.HSTSMaxAge
	}
	return rt
}

// Switch routes app to addrs. A backend whose address stays keeps its
// object, so its in-flight count carries over and it is not drained; only
// the backends that left are returned to drain.
func (s *switcher) Switch(app string, addrs []string) (func(context.Context) error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := map[string]*router.Backend{}
	if rt, ok := s.router.Lookup(s.defaultHost(app)); ok {
		for _, b := range rt.Backends {
			cur[b.Addr()] = b
		}
	}
	backends := make([]*router.Backend, len(addrs))
	for i, a := range addrs {
		if b, ok := cur[a]; ok {
			backends[i] = b
			delete(cur, a)
		} else {
			backends[i] = router.NewBackend(a)
		}
	}
	rt := s.route(app)
	rt.Backends = backends
	if _, err := s.router.Set(rt); err != nil {
		return nil, fmt.Errorf("route %s: %w", app, err)
	}
	return s.retireAll(slices.Collect(maps.Values(cur))), nil
}

// Sleep routes app to no backend; requests for it wake it.
func (s *switcher) Sleep(app string) (func(context.Context) error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.route(app)
	rt.Asleep = true
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
	rt.Backends, rt.Asleep = cur.Backends, cur.Asleep
	if _, err := s.router.Set(rt); err != nil {
		return fmt.Errorf("route %s: %w", app, err)
	}
	return nil
}

func (s *switcher) Remove(app string) func(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
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
