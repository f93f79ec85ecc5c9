package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/plat-paas/plat/router"
)

// switcher adapts the router to deploy.Switcher: it knows which host names
// belong to an app.
type switcher struct {
	router *router.Router
	domain string
}

func (s *switcher) hosts(app string) []string {
	return []string{app + "." + s.domain}
}

func (s *switcher) Switch(app string, addrs []string) (func(context.Context) error, error) {
	backends := make([]*router.Backend, len(addrs))
	for i, a := range addrs {
		backends[i] = router.NewBackend(a)
	}
	prev, err := s.router.Set(router.Route{App: app, Hosts: s.hosts(app), Backends: backends})
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", app, err)
	}
	return drainAll(prev), nil
}

func (s *switcher) Remove(app string) func(context.Context) error {
	return drainAll(s.router.Remove(app))
}

func drainAll(backends []*router.Backend) func(context.Context) error {
	return func(ctx context.Context) error {
		var errs []error
		for _, b := range backends {
			if err := b.Drain(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", b.Addr(), err))
			}
		}
		return errors.Join(errs...)
	}
}
